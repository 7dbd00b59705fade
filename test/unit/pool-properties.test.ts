import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  BackendPool,
  type BackendView,
  type Lease,
  LeastConnections,
  NoBackendAvailableError,
  PeakEwma,
  PowerOfTwoChoices,
  RandomPick,
  RoundRobin,
  WeightedRoundRobin,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

type Op =
  | { op: 'add'; weight: number; priority: number }
  | { op: 'acquire'; exclude: number | undefined }
  | { op: 'affinity'; at: number; allowDraining: boolean }
  | { op: 'release'; at: number; ok: boolean; latencyMs: number | undefined }
  | { op: 'drain'; at: number; graceMs: number }
  | { op: 'undrain'; at: number }
  | { op: 'remove'; at: number; drain: boolean; graceMs: number }
  | { op: 'setHealthy'; at: number; healthy: boolean }
  | { op: 'probe'; at: number; ok: boolean; threshold: number }
  | { op: 'eject'; at: number; ms: number }
  | { op: 'uneject'; at: number }
  | { op: 'setWeight'; at: number; weight: number }
  | { op: 'advance'; ms: number };

const at = fc.nat(1000);

/** The arbitraries for the fields (besides `op`) of the op named `K`. */
type FieldArbitraries<K extends Op['op']> = {
  [P in Exclude<keyof Extract<Op, { op: K }>, 'op'>]: fc.Arbitrary<Extract<Op, { op: K }>[P]>;
};

/** One weighted choice of {@link opArb}: records `{ op: name, ...fields }`. */
function opOf<K extends Op['op']>(
  name: K,
  fields: FieldArbitraries<K>,
  weight: number,
): fc.WeightedArbitrary<Op> {
  const record = fc.record({ op: fc.constant(name), ...fields });
  // fc.record's value type over a mapped type does not narrow to the union member by itself.
  return { arbitrary: record as unknown as fc.Arbitrary<Extract<Op, { op: K }>>, weight };
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  opOf(
    'add',
    { weight: fc.integer({ min: 1, max: 4 }), priority: fc.integer({ min: 0, max: 1 }) },
    2,
  ),
  opOf('acquire', { exclude: fc.option(at, { nil: undefined }) }, 8),
  opOf('affinity', { at, allowDraining: fc.boolean() }, 2),
  opOf(
    'release',
    {
      at,
      ok: fc.boolean(),
      latencyMs: fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }),
    },
    6,
  ),
  opOf('drain', { at, graceMs: fc.integer({ min: 0, max: 3000 }) }, 1),
  opOf('undrain', { at }, 1),
  opOf('remove', { at, drain: fc.boolean(), graceMs: fc.integer({ min: 0, max: 3000 }) }, 1),
  opOf('setHealthy', { at, healthy: fc.boolean() }, 2),
  opOf('probe', { at, ok: fc.boolean(), threshold: fc.integer({ min: 1, max: 3 }) }, 1),
  opOf('eject', { at, ms: fc.integer({ min: 0, max: 3000 }) }, 1),
  opOf('uneject', { at }, 1),
  opOf('setWeight', { at, weight: fc.integer({ min: 1, max: 5 }) }, 1),
  opOf('advance', { ms: fc.integer({ min: 0, max: 2000 }) }, 2),
);

const ALGORITHMS: { name: string; make: () => Algorithm }[] = [
  { name: 'RoundRobin', make: () => new RoundRobin() },
  { name: 'WeightedRoundRobin', make: () => new WeightedRoundRobin() },
  { name: 'LeastConnections', make: () => new LeastConnections() },
  { name: 'PowerOfTwoChoices', make: () => new PowerOfTwoChoices() },
  { name: 'PeakEwma', make: () => new PeakEwma() },
  { name: 'RandomPick', make: () => new RandomPick() },
];

interface Run {
  pool: BackendPool;
  clock: ManualClock;
  /** Every backend that ever took a call. */
  touched: Set<BackendView>;
  leases: Lease[];
  pending: Promise<unknown>[];
}

/**
 * Applies `ops` to a fresh pool, checking after every pick that it chose a backend allowed to
 * take the call; `onPick` may check more.
 */
function play(
  algorithm: Algorithm,
  initial: number,
  ops: readonly Op[],
  seed: number,
  onPick?: (picked: BackendView, before: readonly BackendView[]) => void,
): Run {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends: Array.from({ length: initial }, (_, i) => ({
      url: `http://b${i}.test`,
      weight: 1 + (i % 3),
    })),
    algorithm,
    clock,
    random: seededRandom(seed),
    slowStartMs: 1000,
    skew: false,
  });
  const run: Run = { pool, clock, touched: new Set(), leases: [], pending: [] };
  let added = initial;
  const pickAt = (i: number): BackendView | undefined => {
    const all = pool.backends();
    return all.length === 0 ? undefined : all[i % all.length];
  };
  for (const op of ops) {
    switch (op.op) {
      case 'add':
        pool.add({ url: `http://b${added++}.test`, weight: op.weight, priority: op.priority });
        break;
      case 'acquire': {
        const excluded = op.exclude === undefined ? undefined : pickAt(op.exclude)?.id;
        const before = [...pool.eligible()];
        let lease: Lease;
        try {
          lease = pool.acquire(excluded === undefined ? undefined : { exclude: [excluded] });
        } catch (error) {
          expect(error).toBeInstanceOf(NoBackendAvailableError);
          expect(before).toEqual([]);
          break;
        }
        const b = lease.backend;
        // Never a draining backend; outside panic only healthy ones of the active tier.
        expect(b.state).not.toBe('draining');
        expect(b.eligible).toBe(true);
        if (!pool.panic) expect(b.state).toBe('healthy');
        expect(before).toContain(b);
        if (excluded !== undefined && before.some((c) => c.id !== excluded)) {
          expect(b.id).not.toBe(excluded);
        }
        const kept = before.filter((c) => c.id !== excluded);
        // Excluding every candidate lets the pick use them all.
        onPick?.(b, kept.length === 0 ? before : kept);
        run.touched.add(b);
        run.leases.push(lease);
        break;
      }
      case 'affinity': {
        const target = pickAt(op.at);
        if (target === undefined) break;
        try {
          const lease = pool.acquire({
            affinity: { id: target.id, allowDraining: op.allowDraining },
          });
          const b = lease.backend;
          if (b !== target) expect(b.eligible).toBe(true);
          else if (!b.eligible) expect(op.allowDraining && b.state === 'draining').toBe(true);
          run.touched.add(b);
          run.leases.push(lease);
        } catch (error) {
          expect(error).toBeInstanceOf(NoBackendAvailableError);
        }
        break;
      }
      case 'release': {
        if (run.leases.length === 0) break;
        const [lease] = run.leases.splice(op.at % run.leases.length, 1);
        expect(
          lease!.release(
            op.latencyMs === undefined ? { ok: op.ok } : { ok: op.ok, latencyMs: op.latencyMs },
          ),
        ).toBe(true);
        expect(lease!.release()).toBe(false);
        break;
      }
      case 'drain': {
        const b = pickAt(op.at);
        if (b !== undefined) run.pending.push(pool.drain(b.id, { graceMs: op.graceMs }));
        break;
      }
      case 'undrain': {
        const b = pickAt(op.at);
        if (b !== undefined) pool.undrain(b.id);
        break;
      }
      case 'remove': {
        const b = pickAt(op.at);
        if (b !== undefined) {
          run.pending.push(pool.remove(b.id, { drain: op.drain, graceMs: op.graceMs }));
        }
        break;
      }
      case 'setHealthy': {
        const b = pickAt(op.at);
        if (b !== undefined) pool.setHealthy(b.id, op.healthy);
        break;
      }
      case 'probe': {
        const b = pickAt(op.at);
        if (b !== undefined) {
          pool.reportProbe(b.id, {
            ok: op.ok,
            healthyThreshold: op.threshold,
            unhealthyThreshold: op.threshold,
          });
        }
        break;
      }
      case 'eject': {
        const b = pickAt(op.at);
        if (b !== undefined) pool.eject(b.id, op.ms);
        break;
      }
      case 'uneject': {
        const b = pickAt(op.at);
        if (b !== undefined) pool.uneject(b.id);
        break;
      }
      case 'setWeight': {
        const b = pickAt(op.at);
        if (b !== undefined) pool.setWeight(b.id, op.weight);
        break;
      }
      case 'advance':
        clock.advance(op.ms);
        break;
    }
    // A draining backend is never offered to the algorithm.
    for (const b of pool.eligible()) expect(b.state).not.toBe('draining');
  }
  return run;
}

/** A smooth weighted round robin pool over `b0.test`, `b1.test`, … with these weights. */
function weightedPool(weights: readonly number[]): BackendPool {
  return new BackendPool({
    backends: weights.map((weight, i) => ({ url: `http://b${i}.test`, weight })),
    algorithm: new WeightedRoundRobin(),
    clock: new ManualClock(),
    skew: false,
  });
}

const scenario = fc.record({
  initial: fc.integer({ min: 0, max: 6 }),
  ops: fc.array(opArb, { maxLength: 80 }),
  seed: fc.nat(),
});

describe('pool properties', () => {
  it.each(ALGORITHMS)(
    '$name never picks a backend that may not take the call, and in-flight counts return to 0',
    async ({ make }) => {
      await fc.assert(
        fc.asyncProperty(scenario, async ({ initial, ops, seed }) => {
          const run = play(make(), initial, ops, seed);
          for (const lease of run.leases) lease.release();
          // Drains and removals waiting on those calls finish now.
          await Promise.all(run.pending);
          for (const b of run.touched) expect(b.inFlight).toBe(0);
          expect(run.pool.stats().inFlight).toBe(0);
          await run.pool.close();
          expect(run.clock.pendingTimers()).toBe(0);
        }),
        { seed: 42, numRuns: 150 },
      );
    },
  );

  it('LeastConnections always picks a least loaded candidate', () => {
    fc.assert(
      fc.property(scenario, ({ initial, ops, seed }) => {
        play(new LeastConnections(), initial, ops, seed, (picked, candidates) => {
          // Loads as they were before the pick: the picked backend's count went up by one.
          const load = (b: BackendView) =>
            (b.inFlight - (b === picked ? 1 : 0)) / b.effectiveWeight;
          const least = Math.min(...candidates.map(load));
          expect(load(picked)).toBe(least);
        });
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('draining backends get no new calls until undrained', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (n, drainAt, seed) => {
          for (const { make } of ALGORITHMS) {
            const clock = new ManualClock();
            const pool = new BackendPool({
              backends: Array.from({ length: n }, (_, i) => `http://b${i}.test`),
              algorithm: make(),
              clock,
              random: seededRandom(seed),
              skew: false,
            });
            const drained = new Set(drainAt.map((i) => `b${i % n}.test:80`));
            for (const id of drained) void pool.drain(id, { graceMs: 1000 });
            const leases: Lease[] = [];
            for (let i = 0; i < 3 * n; i++) {
              if (drained.size === n) {
                expect(() => pool.acquire()).toThrow(NoBackendAvailableError);
                break;
              }
              const lease = pool.acquire();
              expect(drained.has(lease.backend.id)).toBe(false);
              leases.push(lease);
            }
            for (const l of leases) l.release();
          }
        },
      ),
      { seed: 42, numRuns: 100 },
    );
  });

  it('smooth weighted round robin gives exact proportions over each cycle', () => {
    const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 8 }),
        (weights) => {
          const pool = weightedPool(weights);
          const g = weights.reduce(gcd);
          const cycle = weights.reduce((s, w) => s + w, 0) / g;
          for (let round = 0; round < 3; round++) {
            const counts = new Map<string, number>();
            for (let k = 0; k < cycle; k++) {
              const lease = pool.acquire();
              counts.set(lease.backend.id, (counts.get(lease.backend.id) ?? 0) + 1);
              lease.release();
            }
            weights.forEach((w, i) => {
              expect(counts.get(`b${i}.test:80`) ?? 0).toBe(w / g);
            });
          }
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  it('smooth weighted round robin follows nginx step for step', () => {
    /** nginx's loop, as in ngx_http_upstream_get_peer. */
    const reference = (weights: readonly number[], picks: number): number[] => {
      const current = weights.map(() => 0);
      const total = weights.reduce((s, w) => s + w, 0);
      const out: number[] = [];
      for (let k = 0; k < picks; k++) {
        let best = -1;
        for (let i = 0; i < weights.length; i++) {
          current[i]! += weights[i]!;
          if (best === -1 || current[i]! > current[best]!) best = i;
        }
        current[best]! -= total;
        out.push(best);
      }
      return out;
    };
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 12 }),
        (weights) => {
          const pool = weightedPool(weights);
          const picks = 2 * weights.reduce((s, w) => s + w, 0);
          const seen: number[] = [];
          for (let k = 0; k < picks; k++) {
            const lease = pool.acquire();
            seen.push(pool.backends().indexOf(lease.backend));
            lease.release();
          }
          expect(seen).toEqual(reference(weights, picks));
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });

  it('smooth weighted round robin keeps every backend within one pick of its share', () => {
    // nginx's interleaving: over any prefix, a backend's count stays within 1 of w/W x picks.
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 2, maxLength: 6 }),
        (weights) => {
          const pool = weightedPool(weights);
          const total = weights.reduce((s, w) => s + w, 0);
          const counts = new Map<string, number>();
          for (let k = 1; k <= 2 * total; k++) {
            const lease = pool.acquire();
            counts.set(lease.backend.id, (counts.get(lease.backend.id) ?? 0) + 1);
            lease.release();
            weights.forEach((w, i) => {
              const c = counts.get(`b${i}.test:80`) ?? 0;
              expect(Math.abs(c - (w / total) * k)).toBeLessThan(1 + 1e-9);
            });
          }
        },
      ),
      { seed: 42, numRuns: 120 },
    );
  });
});
