/**
 * A real single-member `etcd` for integration tests: on free ports of 127.0.0.1, with its data
 * directory in a fresh temporary folder (on /dev/shm when there is one, so fsync costs nothing),
 * stopped (or killed, and restarted on the same ports and data) by the test. The folder is
 * removed by `stop()`.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unusedPort } from './servers.js';
import { type ServiceProcess, startServiceProcess } from './service-process.js';
import { requireCommand } from './services.js';

export interface EtcdServer extends ServiceProcess {
  readonly clientPort: number;
  /** `127.0.0.1:<clientPort>`, as etcd3's `hosts` takes it. */
  readonly host: string;
  /** `http://127.0.0.1:<clientPort>` */
  readonly url: string;
  readonly dataDir: string;
}

/** Whether `etcd` is there; throws in CI when it is missing (see services.ts). */
export function hasEtcd(): boolean {
  return requireCommand('etcd');
}

/**
 * Starts `etcd` and waits until it answers `/health`. Heartbeat and election timeouts are made
 * short so that the smallest lease (1 s) is honoured and a restarted member elects itself
 * quickly: etcd's minimum lease TTL is 1.5 election timeouts (lessor `minLeaseTTL`). `restart()`
 * starts it on the same ports and data; `stop()` removes the data.
 */
export async function startEtcd(): Promise<EtcdServer> {
  const clientPort = await unusedPort();
  let peerPort = await unusedPort();
  while (peerPort === clientPort) peerPort = await unusedPort();
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dataDir = await mkdtemp(join(base, 'loadwise-etcd-'));
  const url = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const server = await startServiceProcess({
    command: 'etcd',
    args: [
      '--name',
      'loadwise-test',
      '--data-dir',
      dataDir,
      '--listen-client-urls',
      url,
      '--advertise-client-urls',
      url,
      '--listen-peer-urls',
      peerUrl,
      '--initial-advertise-peer-urls',
      peerUrl,
      '--initial-cluster',
      `loadwise-test=${peerUrl}`,
      '--heartbeat-interval',
      '20',
      '--election-timeout',
      '200',
      '--log-level',
      'error',
      '--logger',
      'zap',
    ],
    ready: () => healthy(url),
    readyWhat: `GET ${url}/health`,
    readyWithinMs: 10_000,
    pollMs: 25,
    cleanup: () => rm(dataDir, { recursive: true, force: true }),
  });
  return Object.assign(server, { clientPort, host: `127.0.0.1:${clientPort}`, url, dataDir });
}

/** Whether etcd answers `GET /health` with `"health":"true"` (within 500 ms). */
async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true' || body.health === true;
  } catch {
    return false;
  }
}
