/**
 * Zone-aware routing: the split alone (src/pool/zone-routing.ts), checked against the cases of
 * Envoy's tests and comments (test/extensions/load_balancing_policies/common/
 * load_balancer_impl_test.cc: ZoneAwareResidualsMismatched, ZoneAwareZonesMismatched,
 * ZoneAwareSmallCluster; source load_balancer_impl.cc: the residual-capacity example in
 * `regenerateLocalityRoutingStructures`), then the pool: draws, every algorithm within the drawn
 * zone, retries, tiers, panic, explain(), events and the skew monitor. ManualClock and seeded
 * random throughout.
 */
import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  type BackendPool,
  type BackendSpec,
  ConsistentHash,
  LoadBalancerConfigError,
  Maglev,
  PowerOfTwoChoices,
  RoundRobin,
  type TierZoneLoad,
  type ZoneAwareOptions,
} from '../../src/index.js';
import {
  parseZoneAware,
  splitZones,
  type ZoneCounts,
  type ZoneRules,
  zoneDraws,
} from '../../src/pool/zone-routing.js';
import { seededRandom } from '../../src/testing/index.js';
import { EVERY_ALGORITHM } from '../support/algorithms.js';
import { testPool } from '../support/pools.js';

// ------------------------------------------------------------------ the split alone

const rules = (localZone: string, more: Partial<ZoneRules> = {}): ZoneRules => ({
  localZone,
  minClusterSize: 6,
  routingEnabled: 100,
  callerZones: undefined,
  ...more,
});
const callers = (counts: Record<string, number>) => new Map(Object.entries(counts));
/** `'A:1 C:3/4'`: zone A with 1 healthy of 1, zone C with 3 healthy of 4. */
const zones = (spec: string): ZoneCounts[] =>
  spec.split(' ').map((part) => {
    const [zone, n] = part.split(':') as [string, string];
    const [healthy, members = healthy] = n.split('/').map(Number) as [number, number?];
    return { zone, members, backends: members, healthy };
  });
/** The loads by zone, e.g. { A: 37.5, C: 24.04 }, leaving out zones that get nothing. */
const loadsOf = (t: TierZoneLoad) =>
  Object.fromEntries(
    t.zones.filter((z) => z.load !== undefined && z.load > 0).map((z) => [z.zone, z.load]),
  );

describe('splitZones: Envoy cases', () => {
  it.each([
    {
      case: 'ZoneAwareResidualsMismatched: A takes 3/8, the rest by residual capacity of C, D, E',
      counts: 'A:1 C:3 D:3 E:1',
      rules: rules('A', { callerZones: callers({ A: 2, B: 2, C: 1, D: 1 }) }),
      mode: 'residual',
      // Envoy samples local below 3750 of 10000, then C, D, E over residuals 2084, 2084, 1250.
      loads: { A: 37.5, C: 24.04, D: 24.04, E: 14.42 },
    },
    {
      case: 'regenerateLocalityRoutingStructures comment: local 40/40/20, upstream 25/50/25',
      counts: 'A:2 B:4 C:2',
      rules: rules('A', { callerZones: callers({ A: 2, B: 2, C: 1 }) }),
      mode: 'residual',
      // 25 / 40 stays local; residual capacity B 10, C 5 takes the other 37.5% two to one.
      loads: { A: 62.5, B: 25, C: 12.5 },
    },
    {
      case: 'the comment "local 20% and upstream 10%: we can route only 50% directly"',
      counts: 'A:1 B:9',
      rules: rules('A', { callerZones: callers({ A: 1, B: 4 }) }),
      mode: 'residual',
      loads: { A: 50, B: 50 },
    },
    {
      case: 'ZoneAwareZonesMismatched, from zone A: upstream 50% ≥ local 50%, all direct',
      counts: 'A:1 C:1',
      rules: rules('A', { minClusterSize: 2, callerZones: callers({ A: 1, B: 1 }) }),
      mode: 'direct',
      loads: { A: 100 },
    },
    {
      case: 'ZoneAwareSmallCluster with min_cluster_size 1: direct',
      counts: 'A:1 B:1 C:1',
      rules: rules('B', { minClusterSize: 1 }),
      mode: 'direct',
      loads: { B: 100 },
    },
  ])('$case', ({ counts, rules: r, mode, loads }) => {
    const split = splitZones(0, zones(counts), r, false);
    expect(split.figures.mode).toBe(mode);
    expect(loadsOf(split.figures)).toEqual(loads);
    const total = split.routed.reduce((s, z) => s + z.points, 0);
    expect(total).toBe(10_000);
  });

  it('reports Envoy’s percentages: healthy share (upstream) and caller share (local), local zone first', () => {
    const split = splitZones(
      0,
      zones('C:3 A:1 D:3 E:1'),
      rules('A', { callerZones: callers({ A: 2, B: 2, C: 1, D: 1 }) }),
      false,
    );
    expect(
      split.figures.zones.map((z) => [z.zone, z.local, z.healthyShare, z.callerShare]),
    ).toEqual([
      ['A', true, 12.5, 33.33],
      ['C', false, 37.5, 16.66],
      ['D', false, 37.5, 16.66],
      ['E', false, 12.5, 0],
    ]);
  });

  it.each([
    {
      case: 'ZoneAwareSmallCluster: 3 healthy backends, min_cluster_size 7',
      counts: 'A:1 B:1 C:1',
      rules: rules('B', { minClusterSize: 7 }),
      panic: false,
      why: 'tier 0 has 3 healthy backends, fewer than minClusterSize (7)',
    },
    {
      case: 'the default min_cluster_size 6',
      counts: 'A:2 B:3',
      rules: rules('A'),
      panic: false,
      why: 'tier 0 has 5 healthy backends, fewer than minClusterSize (6)',
    },
    {
      case: 'a tier in panic routes over all its hosts (hostSourceToUse)',
      counts: 'A:1/4 B:1/4 C:1/4',
      rules: rules('A', { minClusterSize: 0 }),
      panic: true,
      why: 'tier 0 is in panic, so every backend of it that is not draining takes calls, in every zone',
    },
    {
      case: 'fewer than two upstream zones',
      counts: 'A:8',
      rules: rules('A'),
      panic: false,
      why: 'the backends of tier 0 are in one zone',
    },
    {
      case: 'callers in fewer than two zones',
      counts: 'A:4 B:4',
      rules: rules('A', { callerZones: callers({ A: 3 }) }),
      panic: false,
      why: 'callerZones counts callers in fewer than two zones',
    },
    {
      case: 'no backend in the local zone',
      counts: 'A:4 B:4',
      rules: rules('Z'),
      panic: false,
      why: 'no backend of tier 0 is in the local zone Z',
    },
    {
      case: 'the local zone down (older Envoy: lb_local_cluster_not_ok)',
      counts: 'A:0/4 B:4 C:4',
      rules: rules('A'),
      panic: false,
      why: 'no backend in the local zone A is healthy, so calls go to every zone',
    },
  ])('off: $case', ({ counts, rules: r, panic, why }) => {
    const split = splitZones(0, zones(counts), r, panic);
    expect(split.figures.mode).toBe('off');
    expect(split.figures.why).toBe(why);
    expect(split.routed).toEqual([]);
    expect(split.figures.zones.every((z) => z.load === undefined)).toBe(true);
  });

  it('differs from current Envoy on purpose: callers in a zone without backends go to every zone', () => {
    // ZoneAwareZonesMismatched from zone B: Envoy now routes all of B's calls to C (A has no
    // residual); loadwise turns zone routing off, as Envoy did before, and the algorithm spreads
    // the calls over A and C.
    const split = splitZones(
      0,
      zones('A:1 C:1'),
      rules('B', { minClusterSize: 2, callerZones: callers({ A: 1, B: 1 }) }),
      false,
    );
    expect(split.figures.mode).toBe('off');
  });
});

describe('splitZones: callers spread like the backends (the default)', () => {
  // Three zones of four backends; the caller shares follow every member of the tier.
  it.each([
    ['all healthy', 'a:4 b:4 c:4', 'direct', { a: 100 }],
    ['one of a lost', 'a:3/4 b:4 c:4', 'residual', { a: 81.81, b: 9.1, c: 9.09 }],
    ['half of a lost', 'a:2/4 b:4 c:4', 'residual', { a: 60, b: 20, c: 20 }],
    // b has no spare capacity left (33.33% of the healthy backends for 33.33% of the callers).
    ['half of a and one of b lost', 'a:2/4 b:3/4 c:4', 'residual', { a: 66.66, c: 33.34 }],
    ['one of b lost: a still has its share', 'a:4 b:3/4 c:4', 'direct', { a: 100 }],
    ['a larger local zone', 'a:6 b:3 c:3', 'direct', { a: 100 }],
  ] as const)('%s: %s → %s', (_name, counts, mode, loads) => {
    const split = splitZones(0, zones(counts), rules('a'), false);
    expect(split.figures.mode).toBe(mode);
    expect(loadsOf(split.figures)).toEqual(loads);
  });

  it('keeps every healthy backend of the fleet equally loaded when each zone routes so', () => {
    // One caller pool per zone, callers spread like the backends: summing what each sends to
    // each zone, every healthy backend gets the same share, whatever the losses.
    for (const counts of [
      'a:2/4 b:4 c:4',
      'a:1/4 b:3/4 c:4',
      'a:3/4 b:2/4 c:1/4',
      'a:4/6 b:3 c:2/3',
    ]) {
      const z = zones(counts);
      const members = z.reduce((s, c) => s + c.members, 0);
      const healthy = z.reduce((s, c) => s + c.healthy, 0);
      const perBackend = new Map<string, number>();
      for (const local of z) {
        const split = splitZones(0, z, rules(local.zone!, { minClusterSize: 0 }), false);
        for (const zone of split.figures.zones) {
          const fromHere = (local.members / members) * ((zone.load ?? 0) / 100);
          const c = z.find((x) => x.zone === zone.zone)!;
          if (c.healthy > 0)
            perBackend.set(c.zone!, (perBackend.get(c.zone!) ?? 0) + fromHere / c.healthy);
        }
      }
      for (const [zone, share] of perBackend) {
        expect(share, `${counts}: a backend of ${zone}`).toBeCloseTo(1 / healthy, 3);
      }
    }
  });
});

describe('zoneDraws (PointDraws)', () => {
  it('takes points from 0 to 9999 from the random source, 64 at a time and in order', () => {
    const values = [0, 0.00005, 0.0001, 0.5, 0.99999];
    let calls = 0;
    const draws = zoneDraws(() => values[calls++ % values.length]!);
    expect(Array.from({ length: 5 }, () => draws.next())).toEqual([0, 0, 1, 5000, 9999]);
    expect(calls).toBe(64);
    for (let i = 5; i < 64; i++) draws.next();
    expect(calls).toBe(64);
    draws.next();
    expect(calls).toBe(128);
  });
});

// ------------------------------------------------------------------ the pool

const ZONES = ['a', 'b', 'c'] as const;
/** Four backends per zone, named a0..c3. */
const fleet = (perZone = 4, extra: Partial<BackendSpec & object> = {}): BackendSpec[] =>
  ZONES.flatMap((zone) =>
    Array.from({ length: perZone }, (_, i) => ({
      url: `http://${zone}${i}.test:80`,
      id: `${zone}${i}`,
      zone,
      ...extra,
    })),
  );

function zonePool(
  zoneAware: ZoneAwareOptions | false = { localZone: 'a' },
  algorithm: Algorithm = new RoundRobin({ startIndex: 0 }),
  backends: BackendSpec[] = fleet(),
  seed = 7,
) {
  return testPool(backends, { algorithm, zoneAware, random: seededRandom(seed) });
}

/** Calls per zone (and per backend) over `n` acquires, each released at once. */
function spread(pool: BackendPool, n: number, key = false) {
  const byZone: Record<string, number> = {};
  const byBackend: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const lease = pool.acquire(key ? { key: `user-${i}` } : undefined);
    const b = lease.backend;
    byZone[b.zone ?? '-'] = (byZone[b.zone ?? '-'] ?? 0) + 1;
    byBackend[b.id] = (byBackend[b.id] ?? 0) + 1;
    lease.release();
  }
  return { byZone, byBackend };
}

describe('BackendPool zoneAware', () => {
  it('keeps every call in the local zone while it has its share of the healthy backends', () => {
    const { pool } = zonePool();
    const { byZone, byBackend } = spread(pool, 400);
    expect(byZone).toEqual({ a: 400 });
    expect(byBackend).toEqual({ a0: 100, a1: 100, a2: 100, a3: 100 });
  });

  it('spills over in proportion when the local zone loses half its backends', () => {
    const { pool } = zonePool();
    pool.setHealthy('a0', false);
    pool.setHealthy('a1', false);
    const n = 20_000;
    const { byZone } = spread(pool, n);
    expect(byZone.a! / n).toBeCloseTo(0.6, 1);
    expect(Math.abs(byZone.a! / n - 0.6)).toBeLessThan(0.015);
    expect(Math.abs(byZone.b! / n - 0.2)).toBeLessThan(0.015);
    expect(Math.abs(byZone.c! / n - 0.2)).toBeLessThan(0.015);
  });

  it('falls back to every zone when the local zone is down, and comes back when it recovers', () => {
    const { pool } = zonePool();
    for (const id of ['a0', 'a1', 'a2', 'a3']) pool.setHealthy(id, false);
    const { byZone } = spread(pool, 800);
    expect(byZone).toEqual({ b: 400, c: 400 });
    pool.setHealthy('a2', true);
    pool.setHealthy('a3', true);
    expect(pool.explain().zones[0]!.mode).toBe('residual');
  });

  it('falls back to every zone below minClusterSize healthy backends (6 by default)', () => {
    const { pool } = zonePool({ localZone: 'a' }, new RoundRobin({ startIndex: 0 }), fleet(2));
    expect(spread(pool, 600).byZone).toEqual({ a: 600 }); // 6 healthy: enough
    pool.setHealthy('b0', false);
    expect(spread(pool, 500).byZone).toEqual({ a: 200, b: 100, c: 200 });
    expect(pool.explain().zones[0]!.why).toBe(
      'tier 0 has 5 healthy backends, fewer than minClusterSize (6)',
    );
  });

  it('falls back to every backend of the tier in panic, unhealthy ones included', () => {
    // 5 of 12 healthy is below the 50% panic threshold: the tier routes over all 12.
    const { pool } = zonePool();
    for (const id of ['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'c0']) pool.setHealthy(id, false);
    expect(pool.panic).toBe(true);
    const { byBackend } = spread(pool, 1200);
    expect(Object.keys(byBackend)).toHaveLength(12);
    expect(pool.explain().zones[0]!.mode).toBe('off');
  });

  it('applies only to routingEnabled of the picks; the others take any zone', () => {
    const { pool } = zonePool({ localZone: 'a', routingEnabled: 0.5 });
    const n = 12_000;
    const { byZone } = spread(pool, n);
    // Half stay local, half spread over all twelve: 1/2 + 1/2 × 1/3.
    expect(Math.abs(byZone.a! / n - 2 / 3)).toBeLessThan(0.015);
  });

  it('follows callerZones: a zone with more callers than backends spills its excess', () => {
    const { pool } = zonePool({ localZone: 'a', callerZones: { a: 3, b: 1, c: 1 } });
    const z = pool.explain().zones[0]!;
    // a: 33.33% of the backends, 60% of the callers → 33.33 / 60 = 55.55% local.
    expect(z.mode).toBe('residual');
    expect(loadsOf(z)).toEqual({ a: 55.55, b: 22.23, c: 22.22 });
    const { pool: few } = zonePool({ localZone: 'a', callerZones: { a: 1, b: 3, c: 3 } });
    expect(few.explain().zones[0]!.mode).toBe('direct');
  });

  it('routes within each priority tier on its own', () => {
    // Tier 0 at 4 of 6 healthy takes 93% (1.4 × 4/6); in it, a holds 1 of the 4 healthy against
    // half the callers: 50% local. Tier 1 is whole: direct.
    const backends: BackendSpec[] = [
      ...['a0', 'a1', 'a2', 'b0', 'b1', 'b2'].map((id) => ({
        url: `http://${id}.test:80`,
        id,
        zone: id[0]!,
      })),
      ...['a5', 'a6', 'b5', 'b6'].map((id) => ({
        url: `http://${id}.test:80`,
        id,
        zone: id[0]!,
        priority: 1,
      })),
    ];
    const { pool } = zonePool(
      { localZone: 'a', minClusterSize: 1 },
      new RoundRobin({ startIndex: 0 }),
      backends,
    );
    pool.setHealthy('a0', false);
    pool.setHealthy('a1', false);
    const [t0, t1] = pool.explain().zones;
    expect([t0!.priority, t0!.mode, loadsOf(t0!)]).toEqual([0, 'residual', { a: 50, b: 50 }]);
    expect([t1!.priority, t1!.mode, loadsOf(t1!)]).toEqual([1, 'direct', { a: 100 }]);
    const n = 20_000;
    const { byBackend } = spread(pool, n);
    const share = (...ids: string[]) => ids.reduce((s, id) => s + (byBackend[id] ?? 0), 0) / n;
    expect(Math.abs(share('a2') - 0.465)).toBeLessThan(0.015);
    expect(Math.abs(share('b0', 'b1', 'b2') - 0.465)).toBeLessThan(0.015);
    expect(Math.abs(share('a5', 'a6') - 0.07)).toBeLessThan(0.01);
    expect(share('b5', 'b6')).toBe(0);
  });

  it('retries that exclude tried backends find one in another zone, then any', () => {
    const { pool } = zonePool({ localZone: 'a' }, new PowerOfTwoChoices());
    const tried = new Set(['a0', 'a1', 'a2', 'a3']);
    for (let i = 0; i < 50; i++) {
      const lease = pool.acquire({ exclude: tried });
      expect(['b', 'c']).toContain(lease.backend.zone);
      lease.release();
    }
    const all = new Set(pool.backends().map((b) => b.id));
    all.delete('c3');
    expect(pool.acquire({ exclude: all }).backend.id).toBe('c3');
    // Everything tried: a backend all the same (retries prefer untried ones, never fail on it).
    expect(pool.acquire({ exclude: [...all, 'c3'] }).backend.zone).toBe('a');
  });

  it('says in explain() how the split was computed and why', () => {
    const { pool } = zonePool();
    expect(pool.explain().note).toBe(
      'zone-aware routing from a: tier 0 direct: a 100% (a holds 33.33% of the healthy backends and 33.33% of the callers, so every call stays in a). round robin over 4 backends; next in turn is a0',
    );
    expect(pool.explain().wouldPick).toBe('a0');
    pool.setHealthy('a0', false);
    pool.setHealthy('a1', false);
    const e = pool.explain();
    expect(e.wouldPick).toBeUndefined();
    expect(e.note).toContain(
      'zone-aware routing from a: tier 0 residual: a 60%, b 20%, c 20% (a holds 20% of the healthy backends and 33.33% of the callers, so a takes 20 / 33.33 = 60% of the calls and the rest goes to the other zones in proportion to their spare capacity (healthy share above caller share)). The tier and the zone are drawn per pick; tier 0 zone a (60%): round robin over 2 backends',
    );
    expect(e.zones).toEqual([
      {
        priority: 0,
        localZone: 'a',
        mode: 'residual',
        why: expect.stringContaining('a takes 20 / 33.33 = 60%'),
        routingEnabled: 100,
        zones: [
          {
            zone: 'a',
            local: true,
            backends: 4,
            healthy: 2,
            healthyShare: 20,
            callerShare: 33.33,
            load: 60,
          },
          {
            zone: 'b',
            local: false,
            backends: 4,
            healthy: 4,
            healthyShare: 40,
            callerShare: 33.33,
            load: 20,
          },
          {
            zone: 'c',
            local: false,
            backends: 4,
            healthy: 4,
            healthyShare: 40,
            callerShare: 33.33,
            load: 20,
          },
        ],
      },
    ]);
    // Without zoneAware, no zone figures.
    expect(zonePool(false).pool.explain().zones).toEqual([]);
  });

  it('emits zone-load when the split changes, and only then', () => {
    const { pool } = zonePool();
    const events: string[] = [];
    pool.on('zone-load', (e) =>
      events.push(
        `${e.localZone} ${e.tiers.map((t) => `${t.mode} ${JSON.stringify(loadsOf(t))}`).join('; ')}`,
      ),
    );
    pool.setHealthy('b0', false); // a still has its share: no change
    pool.setWeight('a1', 2); // weights do not move the split
    pool.setHealthy('a0', false);
    pool.setHealthy('a0', false); // no change at all
    pool.setHealthy('a1', false);
    pool.setHealthy('a0', true);
    expect(events).toEqual([
      // a at 3 of 10 healthy: 30 / 33.33 local; b (3 of 10) has no spare capacity, c takes it.
      'a residual {"a":90,"c":10}',
      'a residual {"a":66.66,"c":33.34}',
      'a residual {"a":90,"c":10}',
    ]);
  });

  it('the skew monitor judges shares against the zone split, not the whole tier', () => {
    // Direct routing sends a's backends three times their share of the tier: not a skew.
    const { pool, clock } = testPool(fleet(), {
      algorithm: new RoundRobin({ startIndex: 0 }),
      zoneAware: { localZone: 'a' },
      skew: { windowMs: 1000, minRequests: 100 },
    });
    const skews: string[] = [];
    pool.on('skew', (e) => skews.push(e.backend.id));
    spread(pool, 1200);
    clock.advance(1000);
    expect(skews).toEqual([]);
  });

  it('checks its options and names the field', () => {
    const bad: [unknown, string][] = [
      ['a', 'zoneAware'],
      [{}, 'zoneAware.localZone'],
      [{ localZone: '' }, 'zoneAware.localZone'],
      [{ localZone: 'a', minClusterSize: -1 }, 'zoneAware.minClusterSize'],
      [{ localZone: 'a', minClusterSize: 1.5 }, 'zoneAware.minClusterSize'],
      [{ localZone: 'a', routingEnabled: 1.5 }, 'zoneAware.routingEnabled'],
      [{ localZone: 'a', callerZones: [] }, 'zoneAware.callerZones'],
      [{ localZone: 'a', callerZones: { b: 3 } }, 'zoneAware.callerZones.a'],
      [{ localZone: 'a', callerZones: { a: 1, b: -1 } }, 'zoneAware.callerZones.b'],
      [{ localZone: 'a', zone: 'b' }, 'zoneAware.zone'],
    ];
    for (const [value, field] of bad) {
      expect(() => parseZoneAware(value), JSON.stringify(value)).toThrow(LoadBalancerConfigError);
      try {
        parseZoneAware(value);
      } catch (error) {
        expect((error as LoadBalancerConfigError).field).toBe(field);
      }
    }
    expect(parseZoneAware(false)).toBeUndefined();
    expect(parseZoneAware({ localZone: 'a', routingEnabled: 0.985 })?.routingEnabled).toBe(99);
  });
});

describe('every algorithm picks within the drawn zone', () => {
  const algorithms = EVERY_ALGORITHM;

  it.each(algorithms)('%s: direct, every call local', (_name, make, strict) => {
    const { pool } = zonePool({ localZone: 'b' }, make());
    const byZone: Record<string, number> = {};
    const byBackend: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) {
      const lease = pool.acquire({ key: `user-${i}`, clientAddress: `10.1.${i >> 8}.${i & 255}` });
      byZone[lease.backend.zone!] = (byZone[lease.backend.zone!] ?? 0) + 1;
      byBackend[lease.backend.id] = (byBackend[lease.backend.id] ?? 0) + 1;
      lease.release();
    }
    expect(byZone).toEqual({ b: 2000 });
    expect(Object.keys(byBackend).sort()).toEqual(['b0', 'b1', 'b2', 'b3']);
    if (strict) for (const n of Object.values(byBackend)) expect(n).toBe(500);
  });

  it.each(algorithms)('%s: residual, the split holds', (_name, make) => {
    const { pool } = zonePool({ localZone: 'a' }, make());
    pool.setHealthy('a0', false);
    pool.setHealthy('a1', false);
    const n = 12_000;
    const byZone: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const lease = pool.acquire({ key: `user-${i}`, clientAddress: `10.1.${i >> 8}.${i & 255}` });
      byZone[lease.backend.zone!] = (byZone[lease.backend.zone!] ?? 0) + 1;
      lease.release();
    }
    expect(Math.abs(byZone.a! / n - 0.6)).toBeLessThan(0.02);
    expect(Math.abs(byZone.b! / n - 0.2)).toBeLessThan(0.02);
  });

  it('a key keeps its backend within the local zone (ConsistentHash, Maglev)', () => {
    for (const make of [() => new ConsistentHash(), () => new Maglev()]) {
      const { pool } = zonePool({ localZone: 'c' }, make());
      for (let i = 0; i < 200; i++) {
        const first = pool.acquire({ key: `k${i}` });
        const again = pool.acquire({ key: `k${i}` });
        expect(first.backend.zone).toBe('c');
        expect(again.backend.id).toBe(first.backend.id);
        first.release();
        again.release();
      }
    }
  });
});
