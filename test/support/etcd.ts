/**
 * A real single-member `etcd` for integration tests: on free ports of 127.0.0.1, with its data
 * directory in a fresh temporary folder (on /dev/shm when there is one, so fsync costs nothing),
 * stopped (or killed, and restarted on the same ports and data) by the test. The folder is
 * removed by `stop()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unusedPort } from './servers.js';
import { requireCommand } from './services.js';

export interface EtcdServer {
  readonly clientPort: number;
  /** `127.0.0.1:<clientPort>`, as etcd3's `hosts` takes it. */
  readonly host: string;
  /** `http://127.0.0.1:<clientPort>` */
  readonly url: string;
  readonly dataDir: string;
  /** Whether the process runs now. */
  readonly running: boolean;
  /** Kills the process at once (SIGKILL, as a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts etcd again on the same ports and data (after `kill`). */
  restart(): Promise<void>;
  /** Stops etcd for good and removes its data. Idempotent. */
  stop(): Promise<void>;
}

/** Whether `etcd` is there; throws in CI when it is missing (see services.ts). */
export function hasEtcd(): boolean {
  return requireCommand('etcd');
}

/**
 * Starts `etcd` and waits until it answers `/health`. Heartbeat and election timeouts are made
 * short so that the smallest lease (1 s) is honoured and a restarted member elects itself
 * quickly: etcd's minimum lease TTL is 1.5 election timeouts (lessor `minLeaseTTL`).
 */
export async function startEtcd(): Promise<EtcdServer> {
  const clientPort = await unusedPort();
  let peerPort = await unusedPort();
  while (peerPort === clientPort) peerPort = await unusedPort();
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dataDir = await mkdtemp(join(base, 'loadwise-etcd-'));
  const url = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  let proc: ChildProcess | undefined;
  let stopped = false;

  const launch = async (): Promise<void> => {
    const child = spawn(
      'etcd',
      [
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
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    proc = child;
    const deadline = Date.now() + 10_000;
    while (!(await healthy(url))) {
      if (child.exitCode !== null) {
        throw new Error(`etcd exited with ${child.exitCode}: ${stderr}`);
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`etcd did not become healthy on ${url} within 10 s: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const kill = async (): Promise<void> => {
    const child = proc;
    proc = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };

  try {
    await launch();
  } catch (error) {
    await kill();
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    clientPort,
    host: `127.0.0.1:${clientPort}`,
    url,
    dataDir,
    get running() {
      return proc !== undefined && proc.exitCode === null && proc.signalCode === null;
    },
    kill,
    async restart() {
      if (stopped) throw new Error('etcd was stopped for good');
      await kill();
      await launch();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await kill();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
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
