/**
 * Model-based property tests of the pool (fast-check, seeded, ManualClock). Random sequences of
 * add, re-add, remove, drain, undrain, setHealthy, eject, uneject, acquire (plain, excluding,
 * sticky, keyed), release and advancing time run against a BackendPool and against a small model
 * that knows only the documented rules. After every step:
 * - each backend's state is the one the model derives (draining, then ejected, then health);
 * - the eligible set and panic are what the documented rules give (Envoy's priority load across
 *   tiers, `minHealthy`, `panicThreshold`), computed independently from the model;
 * - a pick is never of an ineligible backend outside panic, never of a draining one in panic
 *   (a sticky pin with `allowDraining` is the one documented exception), never of a removed one,
 *   and honours `exclude`; `acquire` throws only when nothing is eligible;
 * - in-flight counts are never negative and equal the unreleased leases of each backend, removed
 *   ones included; a removal that drains completes exactly when its calls end or its grace runs
 *   out.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConsistentHash } from '../../src/algorithms/consistent-hash.js';
import { LeastConnections } from '../../src/algorithms/least-connections.js';
import { Maglev } from '../../src/algorithms/maglev.js';
import { PeakEwma } from '../../src/algorithms/peak-ewma.js';
import { PowerOfTwoChoices } from '../../src/algorithms/power-of-two-choices.js';
import { RandomPick } from '../../src/algorithms/random-pick.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { WeightedRoundRobin } from '../../src/algorithms/weighted-round-robin.js';
import { NoBackendAvailableError } from '../../src/errors/no-backend-error.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { Algorithm, BackendState, BackendView, Lease, PickContext } from '../../src/types.js';

type Op =
  | { op: 'add'; priority: number; weight: number }
  | { op: 'readd'; at: number }
  | { op: 'remove'; at: number; drain: boolean; graceMs: number }
  | { op: 'drain'; at: number; graceMs: number }
  | { op: 'undrain'; at: number }
  | { op: 'setHealthy'; at: number; healthy: boolean }
  | { op: 'eject'; at: number; ms: number }
  | { op: 'uneject'; at: number }
  | {
      op: 'acquire';
      how: 'plain' | 'exclude' | 'sticky' | 'sticky-draining';
      at: number;
      key: number;
    }
  | { op: 'release'; at: number; ok: boolean }
  | { op: 'advance'; ms: number };

const at = fc.nat(999);
/** Durations: arbitrary, or round so that timers fall exactly due (boundaries matter). */
const ms = fc.oneof(fc.integer({ min: 0, max: 400 }), fc.constantFrom(0, 100, 200));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('add' as const),
      priority: fc.integer({ min: 0, max: 1 }),
      weight: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('readd' as const), at }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('remove' as const),
      at,
      drain: fc.boolean(),
      graceMs: ms,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('drain' as const),
      at,
      graceMs: ms,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('undrain' as const), at }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('setHealthy' as const), at, healthy: fc.boolean() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('eject' as const),
      at,
      ms,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('uneject' as const), at }) },
  {
    weight: 10,
    arbitrary: fc.record({
      op: fc.constant('acquire' as const),
      how: fc.constantFrom('plain', 'exclude', 'sticky', 'sticky-draining'),
      at,
      key: fc.nat(20),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ op: fc.constant('release' as const), at, ok: fc.boolean() }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('advance' as const), ms }),
  },
);

const scenario = fc.record({
  initial: fc.integer({ min: 0, max: 5 }),
  minHealthy: fc.integer({ min: 0, max: 3 }),
  panicThreshold: fc.constantFrom(0, 0.5, 1),
  ops: fc.array(opArb, { maxLength: 60, size: 'max' }),
  seed: fc.nat(),
});

const ALGORITHMS: { name: string; make: () => Algorithm }[] = [
  { name: 'RoundRobin', make: () => new RoundRobin() },
  { name: 'WeightedRoundRobin', make: () => new WeightedRoundRobin() },
  { name: 'LeastConnections', make: () => new LeastConnections() },
  { name: 'PowerOfTwoChoices', make: () => new PowerOfTwoChoices() },
  { name: 'PeakEwma', make: () => new PeakEwma() },
  { name: 'RandomPick', make: () => new RandomPick() },
  { name: 'ConsistentHash', make: () => new ConsistentHash() },
  { name: 'Maglev', make: () => new Maglev() },
];

/** The model's view of one backend record (a re-added URL is a new record). */
interface Model {
  readonly view: BackendView;
  readonly url: string;
  readonly priority: number;
  healthy: boolean;
  draining: boolean;
  /** Set while ejected; cleared when time passes it (the pool's timer) or by uneject. */
  ejectedUntil: number | undefined;
  removed: boolean;
  /** A draining removal in progress: it completes when the calls end or at this time. */
  removeBy: number | undefined;
  leases: number;
}

function modelState(m: Model): BackendState {
  if (m.draining) return 'draining';
  if (m.ejectedUntil !== undefined) return 'ejected';
  return m.healthy ? 'healthy' : 'unhealthy';
}

/**
 * The documented routing rules, from the model alone: Envoy's priority load (a tier's health is
 * min(100, ⌊140 × healthy / backends⌋) with the default overprovisioning factor 1.4; tiers take
 * load in order; panic only while the health sums to less than 100, per tier; by backend count
 * when every tier panics). The backends that may take a pick are the candidates of every tier
 * with a share of the load.
 */
function expectedRouting(
  members: readonly Model[],
  minHealthy: number,
  panicThreshold: number,
): { eligible: Set<Model>; panic: boolean } {
  const priorities = [...new Set(members.map((m) => m.priority))].sort((a, b) => a - b);
  const tiers = priorities.map((p) => {
    const all = members.filter((m) => m.priority === p);
    const backends = all.filter((m) => !m.draining).length;
    const healthy = all.filter((m) => modelState(m) === 'healthy').length;
    return { all, backends, healthy };
  });
  const health = tiers.map((t) =>
    t.backends === 0 ? 0 : Math.min(100, Math.floor((140 * t.healthy) / t.backends)),
  );
  const normalized = Math.min(
    100,
    health.reduce((a, b) => a + b, 0),
  );
  const inPanic = tiers.map(
    (t) =>
      normalized < 100 &&
      t.backends > 0 &&
      (t.healthy < Math.min(minHealthy, t.backends) || t.healthy < panicThreshold * t.backends),
  );
  const totalPanic =
    tiers.some((t) => t.backends > 0) && tiers.every((t, i) => t.backends === 0 || inPanic[i]);
  const load = tiers.map(() => 0);
  if (totalPanic) {
    const all = tiers.reduce((sum, t) => sum + t.backends, 0);
    tiers.forEach((t, i) => {
      load[i] = Math.floor((100 * t.backends) / all);
    });
    const first = tiers.findIndex((t) => t.backends > 0);
    load[first]! += 100 - load.reduce((a, b) => a + b, 0);
  } else if (normalized > 0) {
    let left = 100;
    health.forEach((h, i) => {
      load[i] = Math.min(left, Math.floor((h * 100) / normalized));
      left -= load[i]!;
    });
    load[health.findIndex((h) => h > 0)]! += left;
  }
  const eligible = new Set<Model>();
  let panic = false;
  tiers.forEach((t, i) => {
    if (load[i] === 0) return;
    if (inPanic[i]) panic = true;
    for (const m of t.all) {
      if (inPanic[i] ? !m.draining : modelState(m) === 'healthy') eligible.add(m);
    }
  });
  return { eligible, panic };
}

/** Lets promise continuations run (a drained removal resumes a few microtasks later). */
async function flush(): Promise<void> {
  for (let i = 0; i < 8; i++) await null;
}

async function play(
  make: () => Algorithm,
  s: { initial: number; minHealthy: number; panicThreshold: number; ops: Op[]; seed: number },
): Promise<void> {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends: Array.from({ length: s.initial }, (_, i) => ({
      url: `http://b${i}.test`,
      weight: 1 + (i % 2),
    })),
    algorithm: make(),
    minHealthy: s.minHealthy,
    panicThreshold: s.panicThreshold,
    clock,
    random: seededRandom(s.seed),
    skew: false,
  });
  const all: Model[] = pool.backends().map((view, i) => ({
    view,
    url: `http://b${i}.test`,
    priority: 0,
    healthy: true,
    draining: false,
    ejectedUntil: undefined,
    removed: false,
    removeBy: undefined,
    leases: 0,
  }));
  const leases: { lease: Lease; model: Model }[] = [];
  const pending: Promise<unknown>[] = [];
  let next = s.initial;
  const members = () => all.filter((m) => !m.removed);
  const pickAt = (i: number): Model | undefined => {
    const list = members();
    return list.length === 0 ? undefined : list[i % list.length];
  };
  /** The removals the model expects to have completed by now. */
  const settleRemovals = (): void => {
    for (const m of all) {
      if (m.removed || m.removeBy === undefined) continue;
      if (m.leases === 0 || clock.now() >= m.removeBy) m.removed = true;
    }
  };

  for (const op of s.ops) {
    switch (op.op) {
      case 'add':
      case 'readd': {
        let url: string;
        let priority = 0;
        if (op.op === 'add') {
          url = `http://b${next++}.test`;
          priority = op.priority;
        } else {
          // The URL of a removed backend comes back: a new record under the old id.
          const gone = all.filter((m) => m.removed && !members().some((x) => x.url === m.url));
          if (gone.length === 0) break;
          url = gone[op.at % gone.length]!.url;
        }
        const view = pool.add(
          op.op === 'add' ? { url, priority, weight: op.weight } : { url, priority },
        );
        all.push({
          view,
          url,
          priority,
          healthy: true,
          draining: false,
          ejectedUntil: undefined,
          removed: false,
          removeBy: undefined,
          leases: 0,
        });
        break;
      }
      case 'remove': {
        const m = pickAt(op.at);
        if (m === undefined) break;
        pending.push(pool.remove(m.view.id, { drain: op.drain, graceMs: op.graceMs }));
        if (!op.drain) {
          m.removed = true;
        } else {
          m.draining = true;
          const by = clock.now() + op.graceMs;
          m.removeBy = m.removeBy === undefined ? by : Math.min(m.removeBy, by);
          if (m.leases === 0) m.removed = true;
        }
        break;
      }
      case 'drain': {
        const m = pickAt(op.at);
        if (m === undefined) break;
        pending.push(pool.drain(m.view.id, { graceMs: op.graceMs }));
        m.draining = true;
        break;
      }
      case 'undrain': {
        const m = pickAt(op.at);
        if (m === undefined) break;
        pool.undrain(m.view.id);
        m.draining = false;
        break;
      }
      case 'setHealthy': {
        const m = pickAt(op.at);
        if (m === undefined) break;
        pool.setHealthy(m.view.id, op.healthy);
        m.healthy = op.healthy;
        break;
      }
      case 'eject': {
        const m = pickAt(op.at);
        if (m === undefined) break;
        pool.eject(m.view.id, op.ms);
        const until = clock.now() + op.ms;
        // A longer ejection extends one in force; a shorter one does not shorten it.
        if (m.ejectedUntil === undefined || m.ejectedUntil < until) m.ejectedUntil = until;
        break;
      }
      case 'uneject': {
        const m = pickAt(op.at);
        if (m === undefined) break;
        pool.uneject(m.view.id);
        m.ejectedUntil = undefined;
        break;
      }
      case 'acquire': {
        const current = members();
        const { eligible, panic } = expectedRouting(current, s.minHealthy, s.panicThreshold);
        const target = pickAt(op.at);
        const ctx: PickContext = { key: `user-${op.key}` };
        if (op.how === 'exclude' && target !== undefined) ctx.exclude = [target.view.id];
        if ((op.how === 'sticky' || op.how === 'sticky-draining') && target !== undefined) {
          ctx.affinity = { id: target.view.id, allowDraining: op.how === 'sticky-draining' };
        }
        // The pin applies when its backend may take calls, or is draining (still healthy or in
        // panic, not ejected) with allowDraining.
        const pinned =
          target !== undefined && ctx.affinity !== undefined
            ? eligible.has(target) ||
              (op.how === 'sticky-draining' &&
                target.draining &&
                (target.healthy || panic) &&
                target.ejectedUntil === undefined)
            : false;
        let lease: Lease;
        try {
          lease = pool.acquire(ctx);
        } catch (error) {
          expect(error).toBeInstanceOf(NoBackendAvailableError);
          expect(eligible.size).toBe(0);
          expect(pinned).toBe(false);
          break;
        }
        const picked = all.find((m) => m.view === lease.backend);
        // Never a backend the pool no longer holds.
        expect(picked).toBeDefined();
        const m = picked!;
        expect(m.removed).toBe(false);
        expect(pool.get(m.view.id)).toBe(m.view);
        if (pinned) {
          expect(m).toBe(target);
        } else {
          // Never an ineligible backend: outside panic only healthy ones of the active tier, in
          // panic never a draining one.
          expect(eligible.has(m)).toBe(true);
          expect(m.draining).toBe(false);
          if (!panic) expect(modelState(m)).toBe('healthy');
          if (op.how === 'exclude' && target !== undefined && eligible.size > 1) {
            expect(m).not.toBe(target);
          }
        }
        m.leases++;
        leases.push({ lease, model: m });
        break;
      }
      case 'release': {
        if (leases.length === 0) break;
        const [held] = leases.splice(op.at % leases.length, 1);
        expect(held!.lease.release({ ok: op.ok, latencyMs: 5 })).toBe(true);
        held!.model.leases--;
        break;
      }
      case 'advance': {
        clock.advance(op.ms);
        for (const m of all) {
          if (m.ejectedUntil !== undefined && m.ejectedUntil <= clock.now()) {
            m.ejectedUntil = undefined;
          }
        }
        break;
      }
    }
    settleRemovals();
    // Drains that completed have resumed their removals by now.
    await flush();

    // ---- invariants after every step, compared as one line each so a failure shows it all
    const current = members();
    const { eligible, panic } = expectedRouting(current, s.minHealthy, s.panicThreshold);
    const line = (views: readonly BackendView[]) =>
      views.map((b) => `${b.id}:${b.state}:${b.inFlight}`).join(' ');
    expect(line(pool.backends())).toBe(
      current.map((m) => `${m.view.id}:${modelState(m)}:${m.leases}`).join(' '),
    );
    // Records of removed backends are still counted down by their leases, never below 0.
    expect(all.filter((m) => m.removed).map((m) => m.view.inFlight)).toEqual(
      all.filter((m) => m.removed).map((m) => m.leases),
    );
    const ids = (views: Iterable<BackendView>) => [...views].map((b) => b.id).sort();
    expect({ panic: pool.panic, eligible: ids(pool.eligible()) }).toEqual({
      panic,
      eligible: ids([...eligible].map((m) => m.view)),
    });
    // The pool's total counts its members; leases on removed backends are held elsewhere.
    expect(pool.stats().inFlight).toBe(current.reduce((sum, m) => sum + m.leases, 0));
  }

  for (const { lease } of leases) lease.release();
  await Promise.all(pending);
  for (const m of all) expect(m.view.inFlight).toBe(0);
  await pool.close();
  expect(clock.pendingTimers()).toBe(0);
}

describe('pool invariants under random operation sequences (model-based)', () => {
  it.each(ALGORITHMS)('$name', async ({ make }) => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) => play(make, s)),
      { seed: 42, numRuns: 60 },
    );
  });
});
