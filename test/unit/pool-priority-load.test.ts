/**
 * The priority-load module alone: Envoy's split of calls across priority tiers, checked against
 * the tables of Envoy's docs (intro/arch_overview/upstream/load_balancing/priority.rst and
 * panic_threshold.rst) and the rounding of its code (load_balancer_impl.cc, `distributeLoad`).
 */
import { describe, expect, it } from 'vitest';
import { BackendRecord } from '../../src/pool/backend-record.js';
import {
  PriorityLoad,
  type PriorityRules,
  splitPriorityLoad,
  type TierCounts,
  tierDraws,
} from '../../src/pool/priority-load.js';
import { seededRandom } from '../../src/testing/index.js';

const ENVOY: PriorityRules = { overprovisioningFactor: 1.4, panicThreshold: 0.5, minHealthy: 1 };
/** priority.rst's tables leave panic out. */
const NO_PANIC: PriorityRules = { overprovisioningFactor: 1.4, panicThreshold: 0, minHealthy: 0 };

/** Tiers of 100 backends each with the given healthy percentages. */
const percent = (...healthy: number[]): TierCounts[] =>
  healthy.map((h, priority) => ({ priority, backends: 100, healthy: h }));
const loads = (counts: TierCounts[], rules = ENVOY) =>
  splitPriorityLoad(counts, rules).tiers.map((t) => t.load);

describe('splitPriorityLoad: Envoy priority.rst', () => {
  it.each([
    [100, [100, 0]],
    [72, [100, 0]],
    [71, [99, 1]],
    [50, [70, 30]],
    [25, [35, 65]],
    [0, [0, 100]],
  ])('P=0 at %i%% healthy, P=1 at 100%%: %j', (p0, expected) => {
    expect(loads(percent(p0, 100))).toEqual(expected);
  });

  it.each([
    [100, 100, [100, 0]],
    [72, 72, [100, 0]],
    [71, 71, [99, 1]],
    [50, 50, [70, 30]],
    [25, 100, [35, 65]],
  ])('P=0 at %i%%, P=1 at %i%%: %j', (p0, p1, expected) => {
    expect(loads(percent(p0, p1), NO_PANIC)).toEqual(expected);
  });

  it('normalises the health when the tiers together are below 100%', () => {
    // {20, 30} health normalise to {40, 60} (priority.rst).
    const counts = [
      { priority: 0, backends: 70, healthy: 10 }, // 1.4 × 10/70 → 20
      { priority: 1, backends: 140, healthy: 30 }, // 1.4 × 30/140 → 30
    ];
    const split = splitPriorityLoad(counts, NO_PANIC);
    expect(split.tiers.map((t) => t.health)).toEqual([20, 30]);
    expect(split.normalizedHealth).toBe(50);
    expect(split.tiers.map((t) => t.load)).toEqual([40, 60]);
  });

  it.each([
    [
      [100, 100, 100],
      [100, 0, 0],
    ],
    [
      [72, 72, 100],
      [100, 0, 0],
    ],
    [
      [71, 71, 100],
      [99, 1, 0],
    ],
    [
      [50, 50, 100],
      [70, 30, 0],
    ],
    [
      [25, 100, 100],
      [35, 65, 0],
    ],
    [
      [25, 25, 100],
      [35, 35, 30],
    ],
  ])('three tiers at %j%%: %j', (healthy, expected) => {
    expect(loads(percent(...healthy), NO_PANIC)).toEqual(expected);
  });

  it('gives the rounding remainder to the first tier with health, as distributeLoad does', () => {
    // Health 35, 35, 28 (sum 98): ⌊35 × 100 / 98⌋ = 35, 35, ⌊28 × 100 / 98⌋ = 28, and the 2
    // left go to P=0. (The table in priority.rst shows 36/36/28 for this row.)
    expect(loads(percent(25, 25, 20), NO_PANIC)).toEqual([37, 35, 28]);
  });
});

describe('splitPriorityLoad: Envoy panic_threshold.rst', () => {
  it('never panics while the normalised total health is 100%', () => {
    const split = splitPriorityLoad(percent(25, 100), ENVOY);
    expect(split.normalizedHealth).toBe(100);
    expect(split.tiers.map((t) => t.panic)).toEqual([false, false]);
  });

  it('below 100%, panics only the tiers under the threshold', () => {
    // 5% and 65% healthy: health 7 and 91, total 98. P=0 panics, P=1 does not. The code gives
    // ⌊700/98⌋ = 7 and ⌊9100/98⌋ = 92, the remainder to P=0: 8/92 (the doc's table shows 7/93).
    const split = splitPriorityLoad(percent(5, 65), ENVOY);
    expect(split.normalizedHealth).toBe(98);
    expect(split.totalPanic).toBe(false);
    expect(split.tiers.map((t) => [t.load, t.panic])).toEqual([
      [8, true],
      [92, false],
    ]);
  });

  it('when every tier panics, splits by backend count (recalculateLoadInTotalPanic)', () => {
    const split = splitPriorityLoad(
      [
        { priority: 0, backends: 4, healthy: 1 },
        { priority: 1, backends: 3, healthy: 1 },
      ],
      ENVOY,
    );
    expect(split.totalPanic).toBe(true);
    // ⌊400/7⌋ = 57 and ⌊300/7⌋ = 42, the remainder to the first tier.
    expect(split.tiers.map((t) => [t.load, t.panic])).toEqual([
      [58, true],
      [42, true],
    ]);
  });

  it('with panic off and nothing healthy, no tier takes a call', () => {
    const split = splitPriorityLoad(percent(0, 0), NO_PANIC);
    expect(split.tiers.map((t) => t.load)).toEqual([0, 0]);
    expect(split.totalPanic).toBe(false);
  });

  it('leaves tiers without backends out of the total-panic rule', () => {
    const split = splitPriorityLoad(
      [
        { priority: 0, backends: 0, healthy: 0 },
        { priority: 1, backends: 2, healthy: 0 },
      ],
      ENVOY,
    );
    expect(split.totalPanic).toBe(true);
    expect(split.tiers.map((t) => t.load)).toEqual([0, 100]);
  });

  it('takes any factor: 1 sheds load at the first failure, a huge one keeps strict order', () => {
    const strict = { ...NO_PANIC, overprovisioningFactor: 1e6 };
    expect(loads(percent(99, 100), { ...NO_PANIC, overprovisioningFactor: 1 })).toEqual([99, 1]);
    expect(loads(percent(1, 100), strict)).toEqual([100, 0]);
    expect(loads(percent(0, 100), strict)).toEqual([0, 100]);
  });
});

describe('PriorityLoad: snapshots and the draw', () => {
  const record = (id: string, priority: number, healthy = true) => {
    const r = new BackendRecord(id, `http://${id}`, 1, undefined, priority, {});
    r.healthy = healthy;
    r.state = r.derivedState();
    return r;
  };

  it('one snapshot per tier that takes calls, and the union in membership order', () => {
    const members = [
      record('a', 0, false),
      record('x', 1),
      record('b', 0),
      record('c', 0, false),
      record('d', 0, false),
      record('y', 1),
    ];
    const load = PriorityLoad.compute(members, ENVOY);
    expect(load.snapshots.map((s) => [s.priority, s.upTo, s.candidates.map((r) => r.id)])).toEqual([
      [0, 35, ['b']],
      [1, 100, ['x', 'y']],
    ]);
    expect(load.candidates.map((r) => r.id)).toEqual(['x', 'b', 'y']);
    expect(load.panic).toBe(false);
  });

  it('with one tier taking every call, its snapshot is the union and no draw is made', () => {
    const members = [record('a', 0), record('b', 0), record('x', 1)];
    const load = PriorityLoad.compute(members, ENVOY);
    expect(load.snapshots).toHaveLength(1);
    expect(load.candidates).toBe(load.snapshots[0]!.candidates);
    let draws = 0;
    const random = () => {
      draws++;
      return 0.5;
    };
    expect(load.choose(tierDraws(random))).toBe(load.candidates);
    expect(draws).toBe(0);
  });

  it('draws a tier in proportion to its load (Envoy choosePriority), from the random source', () => {
    const members = [
      record('a', 0),
      record('b', 0, false),
      record('c', 0, false),
      record('d', 0, false),
      record('x', 1),
    ];
    const load = PriorityLoad.compute(members, ENVOY);
    const draws = tierDraws(seededRandom(9));
    let first = 0;
    for (let i = 0; i < 10_000; i++)
      if (load.choose(draws) === load.snapshots[0]!.candidates) first++;
    expect(first / 10_000).toBeCloseTo(0.35, 1);
  });

  it('says how the load splits and why', () => {
    const members = [record('a', 0), record('b', 0, false), record('x', 1)];
    const text = PriorityLoad.compute(members, ENVOY).describe(1.4, 0.5);
    expect(text).toBe(
      'priority load: tier 0 70% (1 of 2 healthy × 1.4 → health 70%), tier 1 30% (1 of 1 healthy × 1.4 → health 100%); the tiers together are at 100% health, so no tier panics',
    );
  });
});

describe('tierDraws (PointDraws)', () => {
  it('takes points from 1 to 100 from the random source, 64 at a time and in order', () => {
    const values = [0, 0.004, 0.01, 0.5, 0.999];
    let calls = 0;
    const draws = tierDraws(() => values[calls++ % values.length]!);
    expect(Array.from({ length: 5 }, () => draws.next())).toEqual([1, 1, 2, 51, 100]);
    expect(calls).toBe(64);
    for (let i = 5; i < 64; i++) draws.next();
    expect(calls).toBe(64);
    draws.next();
    expect(calls).toBe(128);
  });
});
