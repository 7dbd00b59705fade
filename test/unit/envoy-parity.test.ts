/**
 * Where loadwise says it follows Envoy, one test per behaviour, named after the Envoy rule it
 * pins and citing where Envoy states it. The deliberate differences are pinned too, named as
 * such. All on ManualClock with seeded randomness.
 *
 * Envoy sources:
 * - outlier detection: source/common/upstream/outlier_detection_impl.cc (`ejectHost`,
 *   `checkHostForUneject`, `onIntervalTimer`, `processSuccessRateEjections`);
 * - priority load and panic: source/extensions/load_balancing_policies/common/load_balancer_impl.cc
 *   (`recalculatePerPriorityState`, `distributeLoad`, `recalculatePerPriorityPanic`,
 *   `recalculateLoadInTotalPanic`, `choosePriority`) and the docs priority.rst,
 *   overprovisioning.rst and panic_threshold.rst.
 */
import { describe, expect, it } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { BackendPool, type BackendPoolOptions } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { BackendSpec, LeaseOutcome } from '../../src/types.js';
import { detecting } from '../support/outliers.js';

const FAIL: LeaseOutcome = { ok: false, failure: 'connect' };
const OK: LeaseOutcome = { ok: true };

describe('Envoy outlier detection (outlier_detection_impl.cc)', () => {
  it('onIntervalTimer: the multiplier falls only once now - lastUnejection >= interval', () => {
    // A backend that fails again as soon as it returns, its ejections lined up with the sweeps
    // (every 10 s): Envoy gives 30, 60, 90 s. Lowering the multiplier at the first sweep after
    // the return, on the same tick, gave 30 s every time.
    const t = detecting(3);
    t.at(10_000);
    t.call('b0', FAIL, 5); // out from 10 s to 40 s
    t.at(40_000); // back at 40 s, on the tick of a sweep
    t.call('b0', FAIL, 5);
    t.at(100_000); // back at 100 s, again on a sweep
    t.call('b0', FAIL, 5);
    expect(t.ejections.map((e) => [e.durationMs, e.ejections])).toEqual([
      [30_000, 1],
      [60_000, 2],
      [90_000, 3],
    ]);
    // Back at 190 s: the sweep at 190 s is too soon; 200 s, 210 s and 220 s lower it to 0.
    t.at(190_000);
    expect(t.multiplier('b0')).toBe(3);
    t.at(200_000);
    expect(t.multiplier('b0')).toBe(2);
    t.at(220_000);
    expect(t.multiplier('b0')).toBe(0);
    t.detector.close();
  });

  it('ejectHost: the multiplier stops growing once multiplier × base reaches max + base', () => {
    // Defaults: base 30 s, max 300 s, so the multiplier stops at 11 (11 × 30 s = 330 s).
    const t = detecting(3);
    for (let i = 0; i < 15; i++) {
      t.call('b0', FAIL, 5);
      t.clock.advance(t.ejections.at(-1)!.durationMs); // back, and failing again at once
    }
    expect(t.ejections.map((e) => e.ejections)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 11, 11, 11, 11,
    ]);
    expect(t.ejections.map((e) => e.durationMs).slice(8)).toEqual([
      270_000, 300_000, 300_000, 300_000, 300_000, 300_000, 300_000,
    ]);
    // So it decays from 11, not from 15: eleven full intervals in service bring it back to 0, and
    // the next ejection lasts 30 s again.
    t.clock.advance(110_000);
    expect(t.multiplier('b0')).toBe(0);
    t.call('b0', FAIL, 5);
    expect(t.ejections.at(-1)?.durationMs).toBe(30_000);
    t.detector.close();
  });

  it('processSuccessRateEjections: hosts ejected during the interval are not in the population', () => {
    // Five backends, success-rate minimum_hosts 5. b4 is ejected during the interval after its
    // calls were counted: four remain, too few to judge, so b3 (50% success) stays in.
    const t = detecting(5, { consecutiveFailures: false, maxEjectionPercent: 50 });
    for (const id of ['b0', 'b1', 'b2', 'b4']) t.call(id, OK, 100);
    for (let i = 0; i < 100; i++) t.call('b3', i % 2 === 0 ? OK : FAIL);
    t.pool.eject('b4', 60_000, 'operator');
    t.at(10_000);
    expect(t.ejections).toEqual([]);
    expect(t.pool.get('b3')?.state).toBe('healthy');
    // The same interval with b4 in service: five judged, and b3 falls below mean - 1.9 stdev.
    t.pool.uneject('b4');
    for (const id of ['b0', 'b1', 'b2', 'b4']) t.call(id, OK, 100);
    for (let i = 0; i < 100; i++) t.call('b3', i % 2 === 0 ? OK : FAIL);
    t.at(20_000);
    expect(t.ejections).toEqual([
      { id: 'b3', cause: 'success-rate', durationMs: 30_000, ejections: 1 },
    ]);
    t.detector.close();
  });

  it('processSuccessRateEjections (loadwise): a host ejected and back within the interval is left out too', () => {
    // loadwise returns a host mid-interval (Envoy only at a sweep), so with a base below the
    // interval a host can be out and back between two analyses. Its counts stop at the
    // ejection and hold the calls that caused it: it is not judged on them again.
    const t = detecting(5, {
      consecutiveFailures: false,
      maxEjectionPercent: 50,
      baseEjectionMs: 5_000,
    });
    for (const id of ['b0', 'b1', 'b2', 'b4']) t.call(id, OK, 100);
    for (let i = 0; i < 100; i++) t.call('b3', i % 2 === 0 ? OK : FAIL);
    t.at(2_000);
    t.pool.eject('b4', 5_000, 'operator');
    t.at(8_000);
    expect(t.pool.get('b4')?.state).toBe('healthy');
    t.at(10_000);
    expect(t.ejections).toEqual([]);
    t.detector.close();
  });

  it('max_ejection_percent: loadwise keeps the rule of grpc-js (gRFC A50), not Envoy 1.31+', () => {
    // grpc-js: eject while ejected / n < max. Envoy 1.31+: (ejected + 1) / n <= max, which ejects
    // nothing at 10% of 5 backends and only one of 15.
    for (const [n, expected] of [
      [5, 1],
      [15, 2],
    ] as const) {
      const t = detecting(n);
      for (let i = 0; i < n; i++) t.call(`b${i}`, FAIL, 5);
      expect(t.pool.backends().filter((b) => b.state === 'ejected')).toHaveLength(expected);
      t.detector.close();
    }
  });

  it('checkHostForUneject: loadwise returns a host when its ejection ends, not at the next sweep', () => {
    // Ejected at 5 s for 30 s: back at 35 s. Envoy checks at its interval timer, so the host
    // would stay out until the sweep at 40 s.
    const t = detecting(3);
    t.at(5_000);
    t.call('b0', FAIL, 5);
    t.at(34_999);
    expect(t.pool.get('b0')?.state).toBe('ejected');
    t.at(35_000);
    expect(t.pool.get('b0')?.state).toBe('healthy');
    t.detector.close();
  });
});

/** A pool of two tiers: `p0` backends `a…` at priority 0, `p1` backends `x…` at priority 1. */
function tiered(p0: number, p1: number, options: BackendPoolOptions = {}) {
  const backends: BackendSpec[] = [
    ...Array.from({ length: p0 }, (_, i) => ({ url: `http://a${i}.test`, id: `a${i}` })),
    ...Array.from({ length: p1 }, (_, i) => ({
      url: `http://x${i}.test`,
      id: `x${i}`,
      priority: 1,
    })),
  ];
  const pool = new BackendPool({
    backends,
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock: new ManualClock(),
    random: seededRandom(5),
    skew: false,
    ...options,
  });
  /** Calls per backend id over `n` picks. */
  const spread = (n: number): Map<string, number> => {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const lease = pool.acquire();
      counts.set(lease.backend.id, (counts.get(lease.backend.id) ?? 0) + 1);
      lease.release();
    }
    return counts;
  };
  /** The share of `n` picks that went to tier 0. */
  const tier0Share = (n: number): number => {
    let sum = 0;
    for (const [id, count] of spread(n)) if (id.startsWith('a')) sum += count;
    return sum / n;
  };
  const loads = () => pool.explain().tiers.map((t) => t.load);
  return { pool, spread, tier0Share, loads };
}

describe('Envoy priority load and panic (load_balancer_impl.cc, priority.rst, panic_threshold.rst)', () => {
  it('priority.rst: a tier at 25% healthy takes 35% of the calls, the next tier the other 65%', () => {
    // Tier 0 at 1 of 4 healthy used to panic inside itself and take every call, three quarters
    // of them on unhealthy backends, while a healthy tier 1 sat idle.
    const t = tiered(4, 4);
    for (const id of ['a1', 'a2', 'a3']) t.pool.setHealthy(id, false);
    expect(t.loads()).toEqual([35, 65]);
    expect(t.pool.panic).toBe(false);
    const spread = t.spread(4000);
    expect([...spread.keys()].sort()).toEqual(['a0', 'x0', 'x1', 'x2', 'x3']);
    expect(spread.get('a0')! / 4000).toBeCloseTo(0.35, 1);
  });

  it('priority.rst: at 50% healthy, 1.4 × 50% = 70% stays and 30% spills over', () => {
    const t = tiered(4, 4);
    t.pool.setHealthy('a0', false);
    t.pool.setHealthy('a1', false);
    expect(t.loads()).toEqual([70, 30]);
    expect(t.tier0Share(4000)).toBeCloseTo(0.7, 1);
  });

  it('overprovisioning.rst: a tier keeps every call down to 72% healthy (factor 1.4)', () => {
    const t = tiered(4, 4);
    t.pool.setHealthy('a0', false); // 75% healthy: 1.4 × 75% = 105%, capped at 100%
    expect(t.loads()).toEqual([100, 0]);
    expect(t.tier0Share(100)).toBe(1);
  });

  it('overprovisioningFactor is an option: with 1 the first failure sheds load', () => {
    const t = tiered(4, 4, { overprovisioningFactor: 1 });
    t.pool.setHealthy('a0', false);
    expect(t.loads()).toEqual([75, 25]);
  });

  it('panic_threshold.rst: no panic while the tiers together are at 100% health', () => {
    // Tier 0 at 1 of 5 healthy is far below the 50% threshold, but tier 1 can take the rest.
    const t = tiered(5, 2);
    for (const id of ['a1', 'a2', 'a3', 'a4']) t.pool.setHealthy(id, false);
    expect(t.pool.panic).toBe(false);
    expect([...t.spread(200).keys()].sort()).toEqual(['a0', 'x0', 'x1']);
  });

  it('recalculatePerPriorityPanic: below 100% total health, a tier under the threshold routes over all its backends', () => {
    // Tier 0 at 1 of 5 healthy (health 28), tier 1 at 1 of 2 (health 70): 98 in all. Tier 0
    // panics and spreads its 29% over all five; tier 1 keeps its 71% on its healthy backend.
    const t = tiered(5, 2);
    for (const id of ['a1', 'a2', 'a3', 'a4']) t.pool.setHealthy(id, false);
    t.pool.setHealthy('x1', false);
    const tiers = t.pool.explain().tiers;
    expect(tiers.map((x) => [x.health, x.load, x.panic])).toEqual([
      [28, 29, true],
      [70, 71, false],
    ]);
    expect(t.pool.panic).toBe(true);
    const spread = t.spread(4000);
    expect([...spread.keys()].sort()).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'x0']);
    expect(spread.get('x0')! / 4000).toBeCloseTo(0.71, 1);
  });

  it('recalculateLoadInTotalPanic: when every tier panics, calls split by backend count', () => {
    const t = tiered(4, 3);
    for (const id of ['a1', 'a2', 'a3', 'x1', 'x2']) t.pool.setHealthy(id, false);
    const split = t.pool.explain();
    expect(split.tiers.map((x) => [x.load, x.panic])).toEqual([
      [58, true],
      [42, true],
    ]);
    expect(split.note).toContain('every tier is in panic, so calls split by backend count');
    expect(t.spread(700).size).toBe(7);
  });

  it('choosePriority: the tier is drawn from the injected random, and not while one tier takes every call', () => {
    let draws = 0;
    const random = seededRandom(2);
    const counting = () => {
      draws++;
      return random();
    };
    const t = tiered(2, 2, { random: counting });
    const before = draws;
    t.spread(50);
    expect(draws).toBe(before);
    t.pool.setHealthy('a0', false);
    // One draw per pick, taken from the random source 64 at a time so a pick allocates nothing.
    t.spread(64);
    expect(draws).toBe(before + 64);
    t.spread(1);
    expect(draws).toBe(before + 128);
  });

  it('explain() and the priority-load event say how the load was split and why', () => {
    const t = tiered(2, 2);
    const events: { loads: number[]; normalizedHealth: number; totalPanic: boolean }[] = [];
    t.pool.on('priority-load', (e) =>
      events.push({
        loads: e.tiers.map((x) => x.load),
        normalizedHealth: e.normalizedHealth,
        totalPanic: e.totalPanic,
      }),
    );
    t.pool.setHealthy('a0', false);
    t.pool.setHealthy('x0', false); // the split stays 70/30: no event
    t.pool.setHealthy('a0', true);
    t.pool.setHealthy('x1', false);
    t.pool.setHealthy('a1', false);
    t.pool.setHealthy('a0', false); // both tiers empty of healthy backends: total panic
    expect(events).toEqual([
      { loads: [70, 30], normalizedHealth: 100, totalPanic: false },
      { loads: [100, 0], normalizedHealth: 100, totalPanic: false },
      // Tier 0 at 70% health is the only one with any: it takes everything; tier 1 (no healthy
      // backend, load 0) counts as in panic now that the total is below 100%.
      { loads: [100, 0], normalizedHealth: 70, totalPanic: false },
      { loads: [50, 50], normalizedHealth: 0, totalPanic: true },
    ]);
    t.pool.setHealthy('a0', true);
    t.pool.setHealthy('x0', true);
    t.pool.setHealthy('a1', false);
    const e = t.pool.explain();
    expect(e.wouldPick).toBeUndefined();
    expect(e.note).toBe(
      'priority load: tier 0 70% (1 of 2 healthy × 1.4 → health 70%), tier 1 30% (1 of 2 healthy × 1.4 → health 70%); ' +
        'the tiers together are at 100% health, so no tier panics. The tier is drawn per pick; ' +
        'tier 0 (70%): round robin over 1 backends; next in turn is a0; tier 1 (30%): round robin over 1 backends; next in turn is x0',
    );
  });

  it('healthy_panic_threshold 0 (loadwise): panicThreshold 0 alone keeps panic on while minHealthy is 1', () => {
    // Envoy turns panic off with a 0% threshold and answers 503 when nothing is healthy;
    // loadwise's minHealthy (default 1) still spreads calls so that something is tried.
    const t = tiered(2, 0, { panicThreshold: 0 });
    t.pool.setHealthy('a0', false);
    t.pool.setHealthy('a1', false);
    expect(t.pool.panic).toBe(true);
    expect(t.spread(4).size).toBe(2);
    const off = tiered(2, 0, { panicThreshold: 0, minHealthy: 0 });
    off.pool.setHealthy('a0', false);
    off.pool.setHealthy('a1', false);
    expect(off.pool.panic).toBe(false);
    expect(() => off.pool.acquire()).toThrow(/no backend/i);
  });
});
