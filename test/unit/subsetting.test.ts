/**
 * Deterministic subsetting: the assignment rule (exact cover, sizes, churn) and the algorithm
 * wrapper in a pool on ManualClock with seeded randomness (composition with every algorithm,
 * health, widening, retries, refresh).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sliceOf } from '../../src/fleet/subset.js';
import {
  type Algorithm,
  type BackendView,
  DeterministicSubset,
  deterministicSubset,
  fleetOffset,
  LeastConnections,
  LoadBalancerConfigError,
  PeakEwma,
  RoundRobin,
  type SubsetPlacement,
  subsetCoverage,
  subsetRing,
  vanDerCorput,
} from '../../src/index.js';
import { seededRandom } from '../../src/testing/index.js';
import { EVERY_ALGORITHM } from '../support/algorithms.js';
import { testPool } from '../support/pools.js';

const ids = (m: number): string[] =>
  Array.from({ length: m }, (_, i) => `10.1.${i >> 8}.${i & 255}:8080`);
const urls = (m: number): string[] => ids(m).map((id) => `http://${id}`);

/** Every client's subset, as sets of ids. */
function fleet(
  backends: readonly string[],
  n: number,
  size: number,
  offset = 0,
  placement: SubsetPlacement = 'even',
): Set<string>[] {
  const ring = subsetRing(backends);
  return Array.from(
    { length: n },
    (_, i) => new Set(sliceOf(ring, { index: i, count: n }, size, { offset, placement })),
  );
}

function connectionsPerBackend(backends: readonly string[], subsets: Set<string>[]): number[] {
  const count = new Map(backends.map((b) => [b, 0]));
  for (const s of subsets) for (const b of s) count.set(b, count.get(b)! + 1);
  return [...count.values()];
}

/** Per client, how many backends of `after` were not in `before`. */
function moved(before: Set<string>[], after: Set<string>[]): number[] {
  const n = Math.min(before.length, after.length);
  return before.slice(0, n).map((s, i) => [...after[i]!].filter((b) => !s.has(b)).length);
}

describe('deterministic subsets (the rule)', () => {
  it('gives each of 500 clients 20 of 1,000 backends, every backend in exactly 10 subsets', () => {
    const backends = ids(1000);
    const subsets = fleet(backends, 500, 20);
    expect(new Set(subsets.map((s) => s.size))).toEqual(new Set([20]));
    const conns = connectionsPerBackend(backends, subsets);
    expect(Math.min(...conns)).toBe(10);
    expect(Math.max(...conns)).toBe(10);
  });

  it('covers every backend the same number of times for any fleet, ring and size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (m, n, size, offset) => {
          const backends = ids(m);
          const subsets = fleet(backends, n, size, offset);
          const conns = connectionsPerBackend(backends, subsets);
          const c = size >= m ? n : Math.min(n, subsetCoverage(size, n, m));
          expect(Math.min(...conns)).toBe(c);
          expect(Math.max(...conns)).toBe(c);
          // Subset sizes are within one of c·m/n (all of the ring at most).
          const width = Math.min(m, (c * m) / n);
          for (const s of subsets) {
            expect(s.size).toBeGreaterThanOrEqual(Math.floor(width));
            expect(s.size).toBeLessThanOrEqual(Math.ceil(width));
          }
        },
      ),
      { numRuns: 150, seed: 16 },
    );
  });

  it.each(['even', 'stable'] as const)(
    'moves at most one backend at each end of a slice when a backend joins or leaves (%s)',
    (placement) => {
      fc.assert(
        fc.property(
          fc.integer({ min: 2, max: 300 }),
          fc.integer({ min: 1, max: 300 }),
          fc.integer({ min: 1, max: 40 }),
          fc.nat(),
          (m, n, size, pick) => {
            const backends = ids(m + 1);
            const before = fleet(backends.slice(0, m), n, size, 0, placement);
            const joined = fleet(backends, n, size, 0, placement);
            const left = fleet(
              backends.slice(0, m).filter((_, i) => i !== pick % m),
              n,
              size,
              0,
              placement,
            );
            // The rule holds while the coverage stays the same whole number; crossing to another
            // (every step of size·n/m past a half) re-cuts every slice, as the guide says.
            if (subsetCoverage(size, n, m) === subsetCoverage(size, n, m + 1)) {
              expect(Math.max(...moved(before, joined))).toBeLessThanOrEqual(2);
            }
            if (subsetCoverage(size, n, m) === subsetCoverage(size, n, m - 1)) {
              expect(Math.max(...moved(before, left))).toBeLessThanOrEqual(2);
            }
          },
        ),
        { numRuns: 200, seed: 16 },
      );
    },
  );

  it('moves few assignments at 500 × 1,000 when one backend leaves, and far fewer than a reshuffle', () => {
    const backends = ids(1000);
    const before = fleet(backends, 500, 20);
    const after = fleet(
      backends.filter((_, i) => i !== 417),
      500,
      20,
    );
    const total = moved(before, after).reduce((a, b) => a + b, 0);
    // 10 clients must replace the backend that left; the ring moves a few hundred of 10,000
    // assignments, where the SRE book's per-round shuffle moves nearly all of them.
    expect(total).toBeGreaterThanOrEqual(10);
    expect(total).toBeLessThan(600);
  });

  it('depends on the set of ids, not on their order', () => {
    const backends = ids(50);
    const a = deterministicSubset(backends, { index: 3, count: 7 }, 10);
    const b = deterministicSubset([...backends].reverse(), { index: 3, count: 7 }, 10);
    expect(a).toEqual(b);
    // One cover (10 × 7 / 50 rounds to 1): a seventh of the ring, 7 or 8 backends.
    expect(a.length).toBeGreaterThanOrEqual(7);
    expect(a.length).toBeLessThanOrEqual(8);
  });

  it('places clients by the van der Corput sequence with placement "stable"', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(vanDerCorput)).toEqual([
      0, 0.5, 0.25, 0.75, 0.125, 0.625, 0.375, 0.875,
    ]);
    expect(vanDerCorput(2 ** 32 - 1)).toBe((2 ** 32 - 1) / 2 ** 32);
  });

  it('covers every backend the same number of times with placement "stable" too', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 50 }),
        fc.double({ min: 0, max: 0.999, noNaN: true }),
        (m, n, size, offset) => {
          const backends = ids(m);
          const conns = connectionsPerBackend(backends, fleet(backends, n, size, offset, 'stable'));
          const c = size >= m ? n : Math.min(n, subsetCoverage(size, n, m));
          expect(Math.min(...conns)).toBe(c);
          expect(Math.max(...conns)).toBe(c);
        },
      ),
      { numRuns: 150, seed: 16 },
    );
  });

  it('moves nothing when a client joins, and only the leaving client\'s backends when one leaves, with placement "stable"', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 300 }),
        fc.integer({ min: 2, max: 300 }),
        fc.integer({ min: 1, max: 40 }),
        (m, n, size) => {
          const backends = ids(m);
          const before = fleet(backends, n, size, 0, 'stable');
          if (subsetCoverage(size, n, m) === subsetCoverage(size, n + 1, m)) {
            const joined = fleet(backends, n + 1, size, 0, 'stable');
            expect(moved(before, joined).reduce((a, b) => a + b, 0)).toBe(0);
          }
          if (subsetCoverage(size, n, m) === subsetCoverage(size, n - 1, m)) {
            const left = fleet(backends, n - 1, size, 0, 'stable');
            // The leaving client's backends go to the clients before it; nothing else moves.
            const total = moved(before, left).reduce((a, b) => a + b, 0);
            expect(total).toBeLessThanOrEqual(before[n - 1]!.size * subsetCoverage(size, n, m));
            for (const [i, s] of left.entries()) {
              for (const b of s) if (!before[i]!.has(b)) expect(before[n - 1]!.has(b)).toBe(true);
            }
          }
        },
      ),
      { numRuns: 150, seed: 16 },
    );
  });

  it('spreads calls less evenly with placement "stable" (the figures of docs/fleet.md)', () => {
    /** max/mean calls per backend when every client spreads its calls evenly over its subset. */
    const callSkew = (n: number, m: number, placement: SubsetPlacement): number => {
      const backends = ids(m);
      const calls = new Map(backends.map((b) => [b, 0]));
      for (const s of fleet(backends, n, 20, 0, placement))
        for (const b of s) calls.set(b, calls.get(b)! + 1 / s.size);
      const values = [...calls.values()];
      return Math.max(...values) / (values.reduce((a, b) => a + b, 0) / values.length);
    };
    expect(callSkew(500, 1000, 'even')).toBeCloseTo(1, 6);
    expect(callSkew(500, 1000, 'stable')).toBeCloseTo(1.05, 2);
    expect(callSkew(260, 1000, 'stable')).toBeCloseTo(1.25, 2);
    expect(callSkew(260, 1000, 'even')).toBeLessThan(1.02);
  });

  it('turns the fleet with an offset, keeping the exact cover', () => {
    const backends = ids(100);
    const plain = fleet(backends, 10, 10);
    const turned = fleet(backends, 10, 10, fleetOffset('checkout-service'));
    expect(turned[0]).not.toEqual(plain[0]);
    expect(new Set(connectionsPerBackend(backends, turned))).toEqual(new Set([1]));
    expect(fleetOffset('checkout-service')).toBeGreaterThanOrEqual(0);
    expect(fleetOffset('checkout-service')).toBeLessThan(1);
  });
});

/** An algorithm that records the arrays it is given, delegating to round robin. */
class Recorder implements Algorithm {
  readonly name = 'recorder';
  readonly inner = new RoundRobin({ startIndex: 0 });
  picks: (readonly BackendView[])[] = [];
  members: (readonly BackendView[])[] = [];
  onMembershipChange(members: readonly BackendView[]): void {
    this.members.push(members);
  }
  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.inner.onEligibleChange(snapshots);
  }
  pick(c: readonly BackendView[]): BackendView | undefined {
    this.picks.push(c);
    return this.inner.pick(c);
  }
}

function subsetPool(algorithm: Algorithm, m: number, index: number, count: number, size: number) {
  const subset = new DeterministicSubset({
    algorithm,
    clientIndex: index,
    clientCount: count,
    size,
  });
  const { pool, clock } = testPool(urls(m), { algorithm: subset, random: seededRandom(5) });
  return { pool, clock, subset };
}

describe('DeterministicSubset in a pool', () => {
  const algorithms = EVERY_ALGORITHM;

  it.each(algorithms)('%s picks only inside the subset', (_, make) => {
    const { pool, subset } = subsetPool(make(), 60, 4, 12, 10);
    const mine = new Set(subset.subset());
    expect(mine.size).toBe(10);
    expect(mine).toEqual(new Set(deterministicSubset(ids(60), { index: 4, count: 12 }, 10)));
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const lease = pool.acquire({ key: `user-${i}`, clientAddress: `192.0.2.${i % 250}` });
      seen.add(lease.backend.id);
      lease.release({ ok: true, latencyMs: 5 });
    }
    for (const id of seen) expect(mine.has(id)).toBe(true);
    expect(seen.size).toBeGreaterThan(5);
  });

  it('spreads a fleet evenly: 100 clients × 200 backends, subsets of 10, the same calls each', () => {
    const conns = new Map<string, number>();
    const calls = new Map<string, number>();
    for (let client = 0; client < 100; client++) {
      const { pool } = subsetPool(new RoundRobin(), 200, client, 100, 10);
      const used = new Set<string>();
      for (let i = 0; i < 100; i++) {
        const lease = pool.acquire();
        used.add(lease.backend.id);
        calls.set(lease.backend.id, (calls.get(lease.backend.id) ?? 0) + 1);
        lease.release();
      }
      for (const id of used) conns.set(id, (conns.get(id) ?? 0) + 1);
    }
    expect(conns.size).toBe(200);
    expect(new Set(conns.values())).toEqual(new Set([5]));
    expect(new Set(calls.values())).toEqual(new Set([50]));
  });

  it('hands the wrapped algorithm the same array on every pick (nothing built per pick)', () => {
    const recorder = new Recorder();
    const { pool } = subsetPool(recorder, 40, 1, 4, 10);
    for (let i = 0; i < 20; i++) pool.acquire().release();
    expect(new Set(recorder.picks).size).toBe(1);
    expect(recorder.picks[0]).toHaveLength(10);
  });

  it('keeps a subset per priority tier when the load spills over to the next tier', () => {
    const specs = urls(40).map((url, i) => ({ url, priority: i < 20 ? 0 : 1 }));
    const subset = new DeterministicSubset({
      algorithm: new RoundRobin(),
      clientIndex: 1,
      clientCount: 4,
      size: 5,
    });
    const { pool } = testPool(specs, { algorithm: subset, random: seededRandom(9) });
    // Tier 0 at 10 of 20 healthy: Envoy's priority load sends 70% there and 30% to tier 1.
    for (const b of pool.backends().slice(0, 10)) pool.setHealthy(b.id, false);
    const used = new Map<number, Set<string>>([
      [0, new Set()],
      [1, new Set()],
    ]);
    for (let i = 0; i < 400; i++) {
      const lease = pool.acquire();
      used.get(lease.backend.priority)!.add(lease.backend.id);
      lease.release();
    }
    // Both tiers take calls, each from a subset of its own (widened in tier 0, where fewer than
    // half of the slice may be healthy).
    expect(used.get(1)!.size).toBe(5);
    expect(used.get(0)!.size).toBeGreaterThan(0);
    expect(used.get(0)!.size).toBeLessThanOrEqual(10);
    for (const id of used.get(0)!) expect(pool.get(id)!.state).toBe('healthy');
  });

  // With zone-aware routing on part of the calls the pool announces the whole tier and each zone
  // it routes to (here zone a alone): one subset for the tier, each array keeping its members of
  // it. Client 2's slice holds nothing in zone a, whose array then falls back to its 8 backends.
  it.each([
    { index: 1, local: 'acaaac', extra: 0 },
    { index: 2, local: 'ccbbcc', extra: 8 },
  ])(
    'takes one subset per tier when the pool announces zones too (client $index)',
    ({ index, local, extra }) => {
      const recorder = new Recorder();
      const subset = new DeterministicSubset({
        algorithm: recorder,
        clientIndex: index,
        clientCount: 4,
        size: 6,
      });
      const specs = urls(24).map((url, i) => ({ url, zone: ['a', 'b', 'c'][i % 3]! }));
      const { pool } = testPool(specs, {
        algorithm: subset,
        zoneAware: { localZone: 'a', routingEnabled: 0.5 },
        random: seededRandom(3),
      });
      pool.acquire().release();
      const mine = subset.subset();
      expect(mine).toEqual(deterministicSubset(ids(24), { index, count: 4 }, 6));
      expect(mine.map((id) => pool.get(id)!.zone).join('')).toBe(local);
      const members = recorder.members.at(-1)!;
      expect(new Set(members).size).toBe(members.length);
      expect(members).toHaveLength(mine.length + extra);
      expect(members.slice(0, mine.length).map((b) => b.id)).toEqual(mine);
      expect(new Set(subset.active())).toEqual(new Set(mine));
    },
  );

  it('lends the wrapped algorithm the count of the backends it picks among', () => {
    const inner = new PeakEwma();
    const { pool, clock, subset } = subsetPool(inner, 40, 1, 8, 5);
    const mine = subset.subset();
    pool.acquire({ affinity: { id: mine[0]! } }).release({ ok: true, latencyMs: 10 });
    for (let i = 0; i < 5; i++) pool.acquire({ affinity: { id: mine[1]! } });
    // 5 calls in flight over the 5 members of the subset, not over the pool's 40 backends.
    expect(inner.cost(pool.get(mine[0]!)!, clock.now())).toBeCloseTo(10 * (1 + 1), 9);
  });

  it('recomputes once after a burst of changes, at the next pick', () => {
    const recorder = new Recorder();
    const { pool } = subsetPool(recorder, 10, 0, 4, 5);
    pool.acquire().release();
    const before = recorder.members.length;
    for (const u of urls(2010).slice(10)) pool.add(u);
    expect(recorder.members.length).toBe(before);
    pool.acquire().release();
    expect(recorder.members.length).toBe(before + 1);
    // 4 clients cannot cover 2,010 backends with 5 each: one cover, a quarter of the ring each.
    expect(recorder.members.at(-1)).toHaveLength(Math.floor(2010 / 4));
  });

  it('skips unhealthy members, and widens along the ring when too few are left', () => {
    const { pool, subset } = subsetPool(new RoundRobin(), 60, 2, 12, 10);
    const mine = subset.subset();
    for (const id of mine.slice(0, 5)) pool.setHealthy(id, false, 'probe failed');
    // Half still routable (the default minEligibleShare is 0.5): no widening yet.
    expect(subset.widened).toBe(false);
    expect(subset.active()).toEqual(
      pool
        .eligible()
        .filter((b) => mine.slice(5).includes(b.id))
        .map((b) => b.id),
    );
    pool.setHealthy(mine[5]!, false, 'probe failed');
    expect(subset.widened).toBe(true);
    expect(subset.active()).toHaveLength(10);
    expect(subset.subset()).toEqual(mine); // the subset itself stays
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const lease = pool.acquire();
      seen.add(lease.backend.id);
      lease.release();
    }
    expect(seen.size).toBe(10);
    for (const id of mine.slice(0, 6)) expect(seen.has(id)).toBe(false);
    expect(pool.explain().note).toMatch(/widened/);
    // Recovery shrinks it back.
    for (const id of mine) pool.setHealthy(id, true, 'probe passed');
    expect(subset.widened).toBe(false);
    expect(new Set(subset.active())).toEqual(new Set(mine));
  });

  it('never routes to nothing: a subset entirely down widens to healthy backends', () => {
    const { pool, subset } = subsetPool(new LeastConnections(), 30, 0, 3, 10);
    for (const id of subset.subset()) pool.setHealthy(id, false, 'down');
    expect(pool.panic).toBe(false); // 20 of 30 still healthy
    const lease = pool.acquire();
    expect(subset.subset()).not.toContain(lease.backend.id);
    expect(lease.backend.state).toBe('healthy');
  });

  it('keeps retries in the subset while an untried member is left, then goes outside it', () => {
    const { pool, subset } = subsetPool(new RoundRobin(), 40, 1, 8, 5);
    const mine = subset.subset();
    const tried = new Set(mine.slice(0, 4));
    expect(pool.acquire({ exclude: tried }).backend.id).toBe(mine[4]);
    const all = new Set(mine);
    const outside = pool.acquire({ exclude: all }).backend.id;
    expect(all.has(outside)).toBe(false);
  });

  it('follows membership: a backend that leaves is replaced from the ring', async () => {
    const { pool, subset } = subsetPool(new RoundRobin(), 100, 7, 10, 10);
    const before = subset.subset();
    await pool.remove(before[3]!, { drain: false });
    const after = subset.subset();
    expect(after).not.toContain(before[3]);
    expect(after.filter((id) => !before.includes(id)).length).toBeLessThanOrEqual(2);
    expect(after).toEqual(
      deterministicSubset(
        ids(100).filter((id) => id !== before[3]),
        { index: 7, count: 10 },
        10,
      ),
    );
  });

  it('reads the fleet function again on refresh()', () => {
    let position = { index: 0, count: 4 };
    const subset = new DeterministicSubset({ fleet: () => position, size: 5 });
    testPool(urls(20), { algorithm: subset });
    const first = subset.subset();
    position = { index: 2, count: 4 };
    subset.refresh();
    expect(subset.position).toEqual({ index: 2, count: 4 });
    expect(subset.subset()).not.toEqual(first);
    expect(subset.subset()).toEqual(deterministicSubset(ids(20), position, 5));
    position = { index: 4, count: 4 };
    expect(() => subset.refresh()).toThrow(LoadBalancerConfigError);
    expect(subset.position).toEqual({ index: 2, count: 4 });
  });

  it('checks its options', () => {
    expect(() => new DeterministicSubset({ clientIndex: 3 })).toThrow(/clientCount/);
    expect(() => new DeterministicSubset({ clientIndex: 3, clientCount: 3 })).toThrow(
      /clientIndex/,
    );
    expect(() => new DeterministicSubset({ clientIndex: 0, clientCount: 3, size: 0 })).toThrow(
      /size/,
    );
    expect(
      () =>
        new DeterministicSubset({
          clientIndex: 0,
          clientCount: 3,
          fleet: () => ({ index: 0, count: 1 }),
        }),
    ).toThrow(/fleet/);
    expect(() => new DeterministicSubset({ clientIndex: 0, clientCount: 3, offset: 1 })).toThrow(
      /offset/,
    );
    expect(
      () => new DeterministicSubset({ clientIndex: 0, clientCount: 3, minEligibleShare: 2 }),
    ).toThrow(/minEligibleShare/);
    expect(() => new DeterministicSubset({ fleet: () => ({ index: -1, count: 2 }) })).toThrow(
      /fleet\(\)\.index/,
    );
    expect(new DeterministicSubset({ clientIndex: 0, clientCount: 1 }).name).toBe(
      'deterministic-subset(power-of-two-choices)',
    );
  });
});
