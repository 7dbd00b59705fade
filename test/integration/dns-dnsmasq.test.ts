/**
 * DNS discovery against a real dnsmasq (Debian's package; `.ci/run` installs it), started by
 * this suite on 127.0.0.1 with its own configuration and nothing from the system.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachDiscovery, BackendPool, DiscoveryBinding } from '../../src/index.js';
import { DnsDiscovery, DnsSrvDiscovery } from '../../src/node/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { requireCommand } from '../support/services.js';

const ZONE = 'dnsmasq.test';
const SRV = `_http._tcp.${ZONE}`;

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Resolves once `check` passes against the server, polling for at most `ms` (real time). */
async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('dnsmasq did not reach the expected state in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.runIf(requireCommand('dnsmasq'))('DNS discovery against dnsmasq', () => {
  let dir: string;
  let hostsFile: string;
  let child: ChildProcess | undefined;
  let server: string;
  let probe: Resolver;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loadwise-dnsmasq-'));
    hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, `10.3.0.1 api.${ZONE}\n10.3.0.2 api.${ZONE}\n`);
    // Answers an attacker who controls the zone could give: a cloud metadata address, the
    // unspecified addresses (0.0.0.0 reaches the local host), an IPv4-mapped metadata address.
    await writeFile(
      join(dir, 'hostile'),
      [
        `169.254.169.254 hostile.${ZONE}`,
        `0.0.0.0 hostile.${ZONE}`,
        `10.3.2.1 hostile.${ZONE}`,
        `::ffff:169.254.169.254 hostile.${ZONE}`,
        `:: hostile.${ZONE}`,
        '',
      ].join('\n'),
    );
    for (let attempt = 0; attempt < 3 && child === undefined; attempt++) {
      const port = await freeUdpPort();
      const proc = spawn(
        'dnsmasq',
        [
          '--no-daemon',
          `--port=${port}`,
          '--listen-address=127.0.0.1',
          '--bind-interfaces',
          '--no-resolv',
          '--no-hosts',
          '--conf-file=/dev/null',
          '--pid-file=',
          '--user=',
          '--local-ttl=45',
          `--local=/${ZONE}/`,
          `--addn-hosts=${hostsFile}`,
          `--addn-hosts=${join(dir, 'hostile')}`,
          `--host-record=a.${ZONE},10.3.1.1`,
          `--host-record=b.${ZONE},10.3.1.2,fd00::3:2`,
          `--srv-host=${SRV},a.${ZONE},9001,10,5`,
          `--srv-host=${SRV},b.${ZONE},9002,20,0`,
          `--srv-host=_port0._tcp.${ZONE},a.${ZONE},0,10,5`,
          `--srv-host=_port0._tcp.${ZONE},a.${ZONE},9003,10,5`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      server = `127.0.0.1:${port}`;
      probe = new Resolver({ timeout: 200, tries: 1 });
      probe.setServers([server]);
      const up = until(async () => (await probe.resolve4(`a.${ZONE}`)).length > 0, 5_000).then(
        () => true,
        () => false,
      );
      if (await Promise.race([up, exited.then(() => false)])) child = proc;
      else proc.kill();
    }
    if (child === undefined) throw new Error('dnsmasq did not start');
  });

  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('follows A records, their TTL, and a change reloaded by dnsmasq', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({ clock, skew: false });
    const source = new DnsDiscovery({
      hostname: `api.${ZONE}`,
      port: 8080,
      family: 4,
      servers: [server],
      resolverOptions: { timeout: 500, tries: 2 },
      clock,
      minRefreshMs: 1_000,
    });
    const binding = attachDiscovery(pool, source);
    try {
      await source.settled();
      expect(pool.backends().map((b) => b.id)).toEqual(['10.3.0.1:8080', '10.3.0.2:8080']);
      expect(source.lastTtlMs).toBe(45_000);
      expect(source.nextRefreshAt).toBe(45_000);

      await writeFile(hostsFile, `10.3.0.2 api.${ZONE}\n10.3.0.3 api.${ZONE}\n`);
      child!.kill('SIGHUP');
      await until(async () => {
        const answer = await probe.resolve4(`api.${ZONE}`);
        return answer.includes('10.3.0.3') && !answer.includes('10.3.0.1');
      }, 5_000);

      await clock.advanceAsync(45_000);
      await source.settled();
      await binding.settled();
      expect(pool.backends().map((b) => b.id)).toEqual(['10.3.0.2:8080', '10.3.0.3:8080']);
    } finally {
      await pool.close();
    }
    expect(clock.pendingTimers()).toBe(0);
  });

  it('follows SRV records: ports, weights and priority tiers', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({ clock, skew: false });
    const source = new DnsSrvDiscovery({
      service: SRV,
      servers: [server],
      resolverOptions: { timeout: 500, tries: 2 },
      clock,
    });
    attachDiscovery(pool, source);
    try {
      await source.settled();
      const views = pool.backends().map((b) => [b.id, b.priority, b.weight]);
      expect(views).toEqual([
        ['10.3.1.1:9001', 0, 5],
        ['10.3.1.2:9002', 1, 0.005],
        ['[fd00::3:2]:9002', 1, 0.005],
      ]);
      expect(pool.eligible().map((b) => b.id)).toEqual(['10.3.1.1:9001']);
    } finally {
      await pool.close();
    }
  });

  it('refuses metadata, unspecified and port-0 answers, each reported as invalid-endpoint', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({ clock, skew: false });
    const hostile = new DnsDiscovery({
      hostname: `hostile.${ZONE}`,
      port: 8080,
      servers: [server],
      resolverOptions: { timeout: 500, tries: 2 },
      clock,
    });
    const port0 = new DnsSrvDiscovery({
      service: `_port0._tcp.${ZONE}`,
      family: 4,
      servers: [server],
      resolverOptions: { timeout: 500, tries: 2 },
      clock,
    });
    const refused: [string, string, string][] = [];
    for (const source of [hostile, port0]) {
      const binding = new DiscoveryBinding(pool, source);
      binding.on('invalid-endpoint', (e) =>
        refused.push([e.source, (e.endpoint as { url: string }).url, e.reason]),
      );
      binding.start();
    }
    try {
      await hostile.settled();
      await port0.settled();
      expect(
        pool
          .backends()
          .map((b) => b.id)
          .sort(),
      ).toEqual(['10.3.1.1:9003', '10.3.2.1:8080']);
      expect(refused.sort()).toEqual([
        [`dns-srv:_port0._tcp.${ZONE}`, 'http://10.3.1.1:0', expect.stringContaining('port 0')],
        [`dns:hostile.${ZONE}`, 'http://0.0.0.0:8080', expect.stringContaining('unspecified')],
        [`dns:hostile.${ZONE}`, 'http://169.254.169.254:8080', expect.stringContaining('metadata')],
        [`dns:hostile.${ZONE}`, 'http://[::]:8080', expect.stringContaining('unspecified')],
        [
          `dns:hostile.${ZONE}`,
          'http://[::ffff:169.254.169.254]:8080',
          expect.stringContaining('metadata'),
        ],
      ]);
    } finally {
      await pool.close();
    }
  });
});
