/**
 * DNS discovery against a real UDP DNS server on 127.0.0.1 (test/support/dns-server.ts), queried
 * through node:dns's Resolver. The refresh schedule runs on a ManualClock; every DNS round trip
 * is real.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BackendPool,
  DiscoveryBinding,
  type DiscoveryBindingOptions,
  type DiscoveryEvents,
  RoundRobin,
} from '../../src/index.js';
import {
  DnsDiscovery,
  type DnsDiscoveryOptions,
  DnsSrvDiscovery,
  type DnsSrvDiscoveryOptions,
} from '../../src/node/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { expectConfigErrors } from '../support/config-errors.js';
import { onEveryEvent } from '../support/discovery.js';
import { startDnsServer, type TestDnsServer, TYPE_A, TYPE_SRV } from '../support/dns-server.js';

let dns: TestDnsServer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dns = await startDnsServer({ defaultTtl: 30 });
});
afterAll(async () => {
  await dns.close();
});
beforeEach(() => {
  dns.clear();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const HOST = 'api.svc.test';

/** The `code` of the error in a `refresh-failed` event (undefined when there is none). */
function errorCode(event: Record<string, unknown> | undefined): unknown {
  return (event?.['error'] as { code?: unknown } | undefined)?.code;
}
const SRV = '_http._tcp.api.svc.test';

function common(clock: ManualClock) {
  return {
    servers: [dns.address],
    resolverOptions: { timeout: 300, tries: 1 },
    clock,
    minRefreshMs: 1_000,
    maxRefreshMs: 120_000,
    intervalMs: 20_000,
  };
}

function harness<S extends DnsDiscovery | DnsSrvDiscovery>(
  make: (clock: ManualClock) => S,
  bindingOptions: DiscoveryBindingOptions = {},
) {
  const clock = new ManualClock();
  const pool = new BackendPool({
    clock,
    random: seededRandom(1),
    skew: false,
    algorithm: new RoundRobin(),
  });
  const source = make(clock);
  const binding = new DiscoveryBinding(pool, source, bindingOptions);
  const events: Partial<Record<keyof DiscoveryEvents, Record<string, unknown>[]>> = {};
  onEveryEvent(binding, (name, payload) => {
    const list = events[name] ?? [];
    list.push(payload as Record<string, unknown>);
    events[name] = list;
  });
  cleanups.push(async () => {
    await pool.close();
    await binding.close();
  });
  const ids = (): string[] =>
    pool
      .backends()
      .map((b) => b.id)
      .sort();
  /** Moves the clock to the next scheduled refresh and waits for its real DNS round trip. */
  const nextRefresh = async (): Promise<number> => {
    const due = source.nextRefreshAt;
    if (due === undefined) throw new Error('no refresh scheduled');
    const wait = due - clock.now();
    await clock.advanceAsync(wait);
    await source.settled();
    await binding.settled();
    return wait;
  };
  const begin = async (): Promise<void> => {
    binding.start();
    await source.settled();
    await binding.settled();
  };
  return { clock, pool, source, binding, events, ids, nextRefresh, begin };
}

const aSource =
  (extra: Partial<DnsDiscoveryOptions> = {}) =>
  (clock: ManualClock) =>
    new DnsDiscovery({ hostname: HOST, port: 8080, ...common(clock), ...extra });
const srvSource =
  (extra: Partial<DnsSrvDiscoveryOptions> = {}) =>
  (clock: ManualClock) =>
    new DnsSrvDiscovery({ service: SRV, ...common(clock), ...extra });

describe('DnsDiscovery (A/AAAA)', () => {
  it('turns every address into a backend address:port with the configured scheme and base path', async () => {
    dns.setAddresses(HOST, ['10.1.0.1', '10.1.0.2', 'fd00::7']);
    const h = harness(aSource({ scheme: 'https', basePath: '/v1', zone: 'z1', weight: 2 }));
    await h.begin();
    const views = h.pool.backends().map((b) => ({
      id: b.id,
      url: b.url,
      weight: b.weight,
      zone: b.zone,
      state: b.state,
    }));
    expect(views).toEqual([
      {
        id: '10.1.0.1:8080',
        url: 'https://10.1.0.1:8080/v1',
        weight: 2,
        zone: 'z1',
        state: 'healthy',
      },
      {
        id: '10.1.0.2:8080',
        url: 'https://10.1.0.2:8080/v1',
        weight: 2,
        zone: 'z1',
        state: 'healthy',
      },
      {
        id: '[fd00::7]:8080',
        url: 'https://[fd00::7]:8080/v1',
        weight: 2,
        zone: 'z1',
        state: 'healthy',
      },
    ]);
    expect(h.pool.get('10.1.0.1:8080')?.metadata).toEqual({ discovery: 'dns', hostname: HOST });
  });

  it.each([
    [4, ['10.1.0.1:8080']],
    [6, ['[fd00::7]:8080']],
  ] as const)('family %s asks for one record type only', async (family, expected) => {
    dns.setAddresses(HOST, ['10.1.0.1', 'fd00::7']);
    const h = harness(aSource({ family }));
    await h.begin();
    expect(h.ids()).toEqual(expected);
  });

  it('refreshes when the shortest TTL runs out, adding and draining backends', async () => {
    dns.setAddresses(HOST, [
      { address: '10.1.0.1', ttl: 45 },
      { address: '10.1.0.2', ttl: 30 },
      { address: '10.1.0.3', ttl: 60 },
    ]);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    expect(h.ids()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080']);
    expect(h.source.lastTtlMs).toBe(30_000);
    expect(h.source.nextRefreshAt).toBe(30_000);
    const lease = h.pool.acquire({ affinity: { id: '10.1.0.3:8080' } });

    dns.setAddresses(HOST, [
      { address: '10.1.0.1', ttl: 45 },
      { address: '10.1.0.2', ttl: 30 },
      { address: '10.1.0.4', ttl: 30 },
    ]);
    const queries = dns.count(HOST, TYPE_A);
    await h.clock.advanceAsync(29_999);
    await h.source.settled();
    expect(dns.count(HOST, TYPE_A)).toBe(queries);
    expect(h.ids()).not.toContain('10.1.0.4:8080');

    await h.clock.advanceAsync(1);
    await h.source.settled();
    expect(dns.count(HOST, TYPE_A)).toBe(queries + 1);
    expect(h.ids()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.3:8080', '10.1.0.4:8080']);
    expect(h.pool.get('10.1.0.3:8080')?.state).toBe('draining');
    expect(h.events.applied?.at(-1)).toMatchObject({
      added: ['10.1.0.4:8080'],
      removing: ['10.1.0.3:8080'],
    });

    expect(lease.release({ ok: true })).toBe(true);
    await h.binding.settled();
    expect(h.ids()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080', '10.1.0.4:8080']);
    expect(h.events.removed).toEqual([
      { source: `dns:${HOST}`, id: '10.1.0.3:8080', completed: true, remaining: 0 },
    ]);
  });

  it.each([
    [1, 1_000],
    [0, 1_000],
    [600, 120_000],
    [90, 90_000],
  ])('a TTL of %s s schedules the next refresh after %s ms (clamped)', async (ttl, expected) => {
    dns.setAddresses(HOST, [{ address: '10.1.0.1', ttl }]);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    expect(h.source.nextRefreshAt).toBe(expected);
    expect(await h.nextRefresh()).toBe(expected);
    expect(dns.count(HOST, TYPE_A)).toBe(2);
  });

  it('keeps the last good set on SERVFAIL, retries soon with back-off, and recovers', async () => {
    dns.setAddresses(HOST, ['10.1.0.1', '10.1.0.2']);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    dns.setMode(HOST, 'servfail');
    await h.nextRefresh();
    expect(h.ids()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080']);
    expect(h.events['refresh-failed']).toHaveLength(1);
    expect(h.events['refresh-failed']?.[0]).toMatchObject({ consecutiveFailures: 1, kept: 2 });
    expect(errorCode(h.events['refresh-failed']?.[0])).toBe('ESERVFAIL');
    expect(await h.nextRefresh()).toBe(1_000);
    expect(await h.nextRefresh()).toBe(2_000);
    expect(h.events['refresh-failed']).toHaveLength(3);

    dns.setMode(HOST, 'normal');
    dns.setAddresses(HOST, ['10.1.0.2', '10.1.0.3']);
    expect(await h.nextRefresh()).toBe(4_000);
    expect(h.ids()).toEqual(['10.1.0.2:8080', '10.1.0.3:8080']);
    expect(h.events.removed?.map((e) => e['id'])).toEqual(['10.1.0.1:8080']);
    expect(h.binding.consecutiveFailures).toBe(0);
    expect(h.source.nextRefreshAt! - h.clock.now()).toBe(30_000);
  });

  it.each([
    ['nodata', 'an empty NOERROR answer'],
    ['nxdomain', 'NXDOMAIN'],
  ] as const)('never empties the pool on %s (%s)', async (mode, _label) => {
    dns.setAddresses(HOST, ['10.1.0.1', '10.1.0.2']);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    dns.setMode(HOST, mode);
    await h.nextRefresh();
    await h.nextRefresh();
    expect(h.ids()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080']);
    expect(h.pool.backends().every((b) => b.state === 'healthy')).toBe(true);
    expect(h.events['empty-answer']).toHaveLength(2);
    expect(h.events['empty-answer']?.[0]).toMatchObject({ kept: 2, invalid: 0 });
    expect(h.events['refresh-failed']).toBeUndefined();
  });

  it('reports a server that does not answer as a failed refresh (ETIMEOUT)', async () => {
    dns.setAddresses(HOST, ['10.1.0.1']);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    dns.setMode(HOST, 'drop');
    await h.nextRefresh();
    expect(h.ids()).toEqual(['10.1.0.1:8080']);
    expect(errorCode(h.events['refresh-failed']?.[0])).toBe('ETIMEOUT');
  });

  it('holds back an answer that removes most backends until the next refresh confirms it', async () => {
    dns.setAddresses(HOST, ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4']);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    dns.setAddresses(HOST, ['10.1.0.4']);
    await h.nextRefresh();
    expect(h.ids()).toHaveLength(4);
    expect(h.pool.backends().every((b) => b.state === 'healthy')).toBe(true);
    expect(h.events['held-back']?.[0]).toMatchObject({ share: 0.75, maxRemovalShare: 0.5 });
    await h.nextRefresh();
    expect(h.ids()).toEqual(['10.1.0.4:8080']);
  });

  it('close() stops the refresh timer: no timer remains and no query follows', async () => {
    dns.setAddresses(HOST, ['10.1.0.1']);
    const h = harness(aSource({ family: 4 }));
    await h.begin();
    expect(h.clock.pendingTimers()).toBe(1);
    await h.binding.close();
    expect(h.source.closed).toBe(true);
    expect(h.clock.pendingTimers()).toBe(0);
    const queries = dns.queries.length;
    await h.clock.advanceAsync(300_000);
    expect(dns.queries.length).toBe(queries);
  });

  it('close() during a query cancels it and publishes nothing', async () => {
    dns.setAddresses(HOST, ['10.1.0.1']);
    dns.setMode(HOST, 'drop');
    const h = harness(aSource({ family: 4, resolverOptions: { timeout: 5_000, tries: 1 } }));
    h.binding.start();
    await h.source.close();
    await h.source.settled();
    expect(h.events['refresh-failed']).toBeUndefined();
    expect(h.ids()).toEqual([]);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it('rejects bad options with LoadBalancerConfigError naming the field', () => {
    const clock = new ManualClock();
    const base = { hostname: HOST, port: 80, clock };
    const cases: [() => unknown, string][] = [
      [() => new DnsDiscovery({ ...base, port: 0 }), 'port'],
      [() => new DnsDiscovery({ ...base, hostname: '' }), 'hostname'],
      [() => new DnsDiscovery({ ...base, family: 5 as 4 }), 'family'],
      [() => new DnsDiscovery({ ...base, scheme: 'ht tp' }), 'scheme'],
      [() => new DnsDiscovery({ ...base, basePath: 'v1' }), 'basePath'],
      [() => new DnsDiscovery({ ...base, basePath: '/v1\r\nX: y' }), 'basePath'],
      [() => new DnsDiscovery({ ...base, servers: ['not an ip'] }), 'servers'],
      [() => new DnsDiscovery({ ...base, weight: 0 }), 'weight'],
      [() => new DnsDiscovery({ ...base, minRefreshMs: -5 }), 'minRefreshMs'],
      [() => new DnsSrvDiscovery({ service: SRV, zeroWeight: 0 }), 'zeroWeight'],
      [() => new DnsSrvDiscovery({ service: SRV, resolver: {} as never }), 'resolver'],
    ];
    expectConfigErrors(cases);
  });
});

describe('DnsSrvDiscovery (SRV)', () => {
  function zone(): void {
    dns.setSrv(SRV, [
      { priority: 10, weight: 60, port: 9001, target: 'a.svc.test', ttl: 120 },
      { priority: 10, weight: 0, port: 9002, target: 'b.svc.test', ttl: 120 },
      { priority: 20, weight: 5, port: 9003, target: 'c.svc.test', ttl: 120 },
      { priority: 50, weight: 1, port: 9004, target: 'd.svc.test', ttl: 120 },
      { priority: 0, weight: 1, port: 9005, target: '.', ttl: 120 },
    ]);
    dns.setAddresses('a.svc.test', [{ address: '10.2.0.1', ttl: 300 }]);
    dns.setAddresses('b.svc.test', [{ address: '10.2.0.2', ttl: 300 }]);
    dns.setAddresses('c.svc.test', [
      { address: '10.2.0.3', ttl: 40 },
      { address: 'fd00::3', ttl: 300 },
    ]);
    dns.setAddresses('d.svc.test', [{ address: '10.2.0.4', ttl: 300 }]);
  }

  it('maps ports, weights and dense priority ranks from the records', async () => {
    zone();
    const h = harness(srvSource());
    await h.begin();
    const views = h.pool.backends().map((b) => [b.id, b.url, b.priority, b.weight]);
    expect(views).toEqual([
      ['10.2.0.1:9001', 'http://10.2.0.1:9001', 0, 60],
      ['10.2.0.2:9002', 'http://10.2.0.2:9002', 0, 0.01],
      ['10.2.0.3:9003', 'http://10.2.0.3:9003', 1, 2.5],
      ['[fd00::3]:9003', 'http://[fd00::3]:9003', 1, 2.5],
      ['10.2.0.4:9004', 'http://10.2.0.4:9004', 2, 1],
    ]);
    expect(h.pool.get('10.2.0.3:9003')?.metadata).toEqual({
      discovery: 'dns-srv',
      service: SRV,
      target: 'c.svc.test',
    });
    expect(dns.count(SRV, TYPE_SRV)).toBe(1);
    // The SRV TTL is not reported by node:dns: the shortest target TTL (40 s) or intervalMs.
    expect(h.source.nextRefreshAt).toBe(20_000);
  });

  it('spills calls from a degraded priority to the next ones in order', async () => {
    zone();
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    const picked = (n: number): Set<string> => {
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const lease = h.pool.acquire();
        seen.add(lease.backend.id);
        lease.release();
      }
      return seen;
    };
    const loads = () => h.pool.explain().tiers.map((t) => t.load);
    expect(loads()).toEqual([100, 0, 0]);
    expect(picked(40)).toEqual(new Set(['10.2.0.1:9001', '10.2.0.2:9002']));
    // Priority 10 at 1 of 2 healthy keeps 70% of the calls (Envoy's factor 1.4), 20 takes 30%.
    h.pool.setHealthy('10.2.0.1:9001', false);
    expect(loads()).toEqual([70, 30, 0]);
    expect(picked(100)).toEqual(new Set(['10.2.0.2:9002', '10.2.0.3:9003']));
    h.pool.setHealthy('10.2.0.2:9002', false);
    expect(loads()).toEqual([0, 100, 0]);
    expect(picked(10)).toEqual(new Set(['10.2.0.3:9003']));
    h.pool.setHealthy('10.2.0.3:9003', false);
    expect(loads()).toEqual([0, 0, 100]);
    expect(picked(10)).toEqual(new Set(['10.2.0.4:9004']));
    h.pool.setHealthy('10.2.0.1:9001', true);
    expect(loads()).toEqual([70, 0, 30]);
    expect(picked(100)).toEqual(new Set(['10.2.0.1:9001', '10.2.0.4:9004']));
  });

  it('applies changed weights in place, keeping statistics, and picks up added and removed targets', async () => {
    zone();
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    const a = h.pool.get('10.2.0.1:9001');
    for (let i = 0; i < 5; i++) h.pool.acquire().release();
    const requests = a!.requests;
    dns.setSrv(SRV, [
      { priority: 10, weight: 30, port: 9001, target: 'a.svc.test' },
      { priority: 10, weight: 10, port: 9002, target: 'b.svc.test' },
      { priority: 20, weight: 5, port: 9003, target: 'c.svc.test' },
      { priority: 20, weight: 5, port: 9006, target: 'e.svc.test' },
    ]);
    dns.setAddresses('e.svc.test', ['10.2.0.6']);
    await h.nextRefresh();
    expect(h.pool.get('10.2.0.1:9001')).toBe(a);
    expect(a!.weight).toBe(30);
    expect(a!.requests).toBe(requests);
    expect(h.pool.get('10.2.0.2:9002')?.weight).toBe(10);
    expect(h.pool.get('10.2.0.6:9006')?.priority).toBe(1);
    expect(h.pool.get('10.2.0.4:9004')).toBeUndefined();
    expect(h.events.applied?.at(-1)).toMatchObject({
      added: ['10.2.0.6:9006'],
      removing: ['10.2.0.4:9004'],
      updated: ['10.2.0.1:9001', '10.2.0.2:9002'],
      replaced: [],
    });
  });

  it('replaces a backend whose SRV priority rank changed', async () => {
    zone();
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    dns.setSrv(SRV, [
      { priority: 10, weight: 60, port: 9001, target: 'a.svc.test' },
      { priority: 10, weight: 1, port: 9002, target: 'b.svc.test' },
      { priority: 10, weight: 5, port: 9003, target: 'c.svc.test' },
      { priority: 50, weight: 1, port: 9004, target: 'd.svc.test' },
    ]);
    await h.nextRefresh();
    expect(h.pool.get('10.2.0.3:9003')?.priority).toBe(0);
    expect(h.pool.get('10.2.0.4:9004')?.priority).toBe(1);
    expect(h.events.applied?.at(-1)?.['replaced']).toEqual(['10.2.0.3:9003', '10.2.0.4:9004']);
  });

  it('fails the whole answer when a target cannot be resolved, and keeps the set', async () => {
    zone();
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    dns.setMode('c.svc.test', 'servfail');
    dns.setSrv(SRV, [{ priority: 10, weight: 1, port: 9003, target: 'c.svc.test' }]);
    await h.nextRefresh();
    expect(h.ids()).toHaveLength(4);
    expect(errorCode(h.events['refresh-failed']?.[0])).toBe('ESERVFAIL');
  });

  it.each([
    ['SERVFAIL on the SRV name', 'servfail', 'refresh-failed'],
    ['no SRV records', 'nodata', 'empty-answer'],
    ['NXDOMAIN', 'nxdomain', 'empty-answer'],
  ] as const)('keeps the last good set on %s', async (_label, mode, event) => {
    zone();
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    dns.setMode(SRV, mode);
    await h.nextRefresh();
    expect(h.ids()).toHaveLength(4);
    expect(h.events[event]).toHaveLength(1);
  });

  it('treats a service whose only target is "." as an empty answer', async () => {
    zone();
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    dns.setSrv(SRV, [{ priority: 0, weight: 0, port: 0, target: '.' }]);
    await h.nextRefresh();
    expect(h.ids()).toHaveLength(4);
    expect(h.events['empty-answer']).toHaveLength(1);
  });
});

describe('address policy on DNS answers', () => {
  it('refuses unspecified, metadata, link-local and IPv4-mapped metadata addresses, each with an invalid-endpoint event', async () => {
    dns.setAddresses(HOST, [
      '10.1.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '169.254.10.20',
      'fd00::7',
      '::',
      '::ffff:a9fe:a9fe',
      'fe80::1',
      'fd00:ec2::254',
    ]);
    const h = harness(aSource());
    await h.begin();
    expect(h.ids()).toEqual(['10.1.0.1:8080', '[fd00::7]:8080']);
    const refused = (h.events['invalid-endpoint'] ?? []).map((e) => [
      (e['endpoint'] as { url: string }).url,
      e['reason'],
    ]);
    expect(refused.sort()).toEqual(
      [
        ['http://0.0.0.0:8080', expect.stringContaining('unspecified')],
        ['http://169.254.10.20:8080', expect.stringContaining('(link-local)')],
        ['http://169.254.169.254:8080', expect.stringContaining('(metadata)')],
        ['http://[::]:8080', expect.stringContaining('unspecified')],
        ['http://[::ffff:169.254.169.254]:8080', expect.stringContaining('(metadata)')],
        ['http://[fd00:ec2::254]:8080', expect.stringContaining('(metadata)')],
        ['http://[fe80::1]:8080', expect.stringContaining('(link-local)')],
      ].sort(),
    );
    expect(h.events['invalid-endpoint']?.every((e) => e['source'] === `dns:${HOST}`)).toBe(true);
  });

  it('refuses SRV records with port 0 and keeps the others', async () => {
    dns.setSrv(SRV, [
      { priority: 10, weight: 1, port: 0, target: 'a.svc.test' },
      { priority: 10, weight: 1, port: 9002, target: 'b.svc.test' },
    ]);
    dns.setAddresses('a.svc.test', ['10.2.0.1']);
    dns.setAddresses('b.svc.test', ['10.2.0.2']);
    const h = harness(srvSource({ family: 4 }));
    await h.begin();
    expect(h.ids()).toEqual(['10.2.0.2:9002']);
    expect(h.events['invalid-endpoint']).toHaveLength(1);
    expect(h.events['invalid-endpoint']?.[0]).toMatchObject({
      source: `dns-srv:${SRV}`,
      endpoint: { url: 'http://10.2.0.1:0' },
      reason: expect.stringContaining('port 0'),
    });
  });

  it('applies an allow list of CIDRs to every answer, refresh after refresh', async () => {
    dns.setAddresses(HOST, ['10.1.0.1', '10.9.0.1', '127.0.0.1']);
    const h = harness(aSource({ family: 4 }), { addressPolicy: { allow: ['10.1.0.0/16'] } });
    await h.begin();
    const refused = (): string[] =>
      (h.events['invalid-endpoint'] ?? []).map((e) => (e['endpoint'] as { url: string }).url);
    expect(h.ids()).toEqual(['10.1.0.1:8080']);
    expect(refused().sort()).toEqual(['http://10.9.0.1:8080', 'http://127.0.0.1:8080']);
    dns.setAddresses(HOST, ['10.1.0.1', '10.1.0.2', '169.254.169.254']);
    await h.nextRefresh();
    expect(h.ids()).toEqual(['10.1.0.1:8080', '10.1.0.2:8080']);
    expect(refused()).toContain('http://169.254.169.254:8080');
  });
});
