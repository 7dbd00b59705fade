import { describe, expect, it } from 'vitest';
import { LoadBalancerConfigError } from '../../src/errors/index.js';
import {
  type AlgorithmResult,
  BUILT_IN_SCENARIOS,
  failingBackendScenario,
  flapping,
  flappingScenario,
  heavyTailScenario,
  hotKeysScenario,
  type SimulationReport,
  simulate,
  simulationCandidates,
  zoneOutageScenario,
} from '../../src/simulator/index.js';

function get(report: SimulationReport, name: string): AlgorithmResult {
  const r = report.results.find((x) => x.name === name);
  if (r === undefined) throw new Error(`no result for ${name}`);
  return r;
}

describe('simulator: built-in scenarios', () => {
  it('heavy tails: algorithms that see queues beat blind ones', async () => {
    const report = await simulate(heavyTailScenario({ durationMs: 8000 }), {
      algorithms: simulationCandidates([
        'round-robin',
        'least-connections',
        'power-of-two-choices',
        'random',
      ]),
    });
    const rr = get(report, 'round-robin');
    const lc = get(report, 'least-connections');
    const p2c = get(report, 'power-of-two-choices');
    const random = get(report, 'random');
    expect(lc.successRate).toBeGreaterThan(rr.successRate);
    expect(p2c.successRate).toBeGreaterThan(rr.successRate);
    // Round robin at least spreads evenly; random piles up by chance too.
    expect(rr.successRate).toBeGreaterThan(random.successRate);
    expect(lc.latency.p99).toBeLessThan(rr.latency.p99);
    expect(random.skew.peakInFlight).toBeGreaterThan(lc.skew.peakInFlight);
    for (const r of report.results) expect(r.outcomes.timedOut + r.outcomes.ok).toBe(r.requests);
  });

  it('a backend failing fast attracts load-aware traffic unless outliers are ejected', async () => {
    const report = await simulate(failingBackendScenario({ rate: 400, durationMs: 20_000 }), {
      algorithms: simulationCandidates([
        'round-robin',
        'least-connections',
        'peak-ewma',
        'least-connections+outlier',
        'peak-ewma+outlier',
      ]),
    });
    const rr = get(report, 'round-robin');
    const lc = get(report, 'least-connections');
    const ewma = get(report, 'peak-ewma');
    const lcOut = get(report, 'least-connections+outlier');
    const ewmaOut = get(report, 'peak-ewma+outlier');
    const failingShare = (r: AlgorithmResult) => r.windows[1]!.share['b0']!;
    expect(failingShare(rr)).toBeCloseTo(1 / 8, 2);
    // b0 looks idle and fast: least connections sends it most calls, peak EWMA more than 1/8.
    expect(failingShare(lc)).toBeGreaterThan(0.4);
    expect(failingShare(ewma)).toBeGreaterThan(1 / 8);
    expect(lc.successRate).toBeLessThan(rr.successRate);
    // Outlier detection ejects b0 after 5 consecutive failures.
    expect(failingShare(lcOut)).toBeLessThan(0.01);
    expect(failingShare(ewmaOut)).toBeLessThan(0.01);
    expect(lcOut.successRate).toBeGreaterThan(0.99);
    expect(ewmaOut.successRate).toBeGreaterThan(0.99);
  });

  it('flapping: health checks bound the damage, outlier detection cuts it further', async () => {
    const report = await simulate(flappingScenario(), {
      algorithms: simulationCandidates(['round-robin', 'least-connections+outlier']),
    });
    const rr = get(report, 'round-robin');
    const lcOut = get(report, 'least-connections+outlier');
    // b0 is down 3 s in every 8 s. Without health checks round robin would lose 1/6 × 3/8 of
    // calls (6.25%); two failed probes a second apart take b0 out within about 2 s instead.
    expect(rr.successRate).toBeGreaterThan(1 - (1 / 6) * (3 / 8));
    expect(rr.successRate).toBeLessThan(0.99);
    expect(lcOut.successRate).toBeGreaterThan(rr.successRate);
    expect(rr.windows.length).toBe(10);
    expect(rr.outcomes.failed).toBeGreaterThan(0);
  });

  it('hot keys: a hash ring keeps keys in place, moves about 1/n on a change, and skews', async () => {
    const report = await simulate(hotKeysScenario({ durationMs: 6000 }), {
      algorithms: simulationCandidates([
        'round-robin',
        'consistent-hash',
        'consistent-hash-bounded',
        'maglev',
      ]),
    });
    const rr = get(report, 'round-robin');
    const ch = get(report, 'consistent-hash');
    const bounded = get(report, 'consistent-hash-bounded');
    expect(rr.keyChurn).toBeGreaterThan(0.8);
    expect(ch.keyChurn).toBeLessThan(0.03);
    // b7 leaves at 40% (window 1): its keys, about 1/8, move; b8 joins at 70% (window 2).
    expect(ch.windows[1]!.keysMoved).toBeGreaterThan(0.05);
    expect(ch.windows[1]!.keysMoved).toBeLessThan(0.25);
    expect(rr.windows[1]!.keysMoved).toBeGreaterThan(0.8);
    // The hottest key (15% of calls) sits on one backend: overloaded, with timeouts.
    expect(ch.skew.requests).toBeGreaterThan(1.6);
    expect(ch.successRate).toBeLessThan(0.95);
    // Bounded loads spill it over: even enough, and every call in time, at some churn.
    expect(bounded.skew.requests).toBeLessThan(ch.skew.requests);
    expect(bounded.successRate).toBeGreaterThan(0.99);
    expect(bounded.keyChurn!).toBeGreaterThan(ch.keyChurn!);
    // Maglev keeps keys in place like the ring, with the same hot spot.
    const maglev = get(report, 'maglev');
    expect(maglev.keyChurn).toBeLessThan(0.03);
    expect(maglev.windows[1]!.keysMoved).toBeLessThan(0.25);
    expect(maglev.skew.requests).toBeGreaterThan(1.6);
  });

  it('zone outage: calls stay local, spill 60/20/20 while half of zone a is down, come back', async () => {
    const report = await simulate(zoneOutageScenario({ rate: 300, durationMs: 15_000 }), {
      algorithms: simulationCandidates(['round-robin', 'power-of-two-choices+all-zones']),
    });
    const zoneShares = (r: AlgorithmResult, w: number) => {
      const out: Record<string, number> = { a: 0, b: 0, c: 0 };
      for (const [id, share] of Object.entries(r.windows[w]!.share)) out[id[0]!]! += share;
      return out;
    };
    const zoned = get(report, 'round-robin');
    const all = get(report, 'power-of-two-choices+all-zones');
    expect(zoned.windows.map((w) => w.label)).toEqual(['0–5 s', '5–10 s', '10–15 s']);
    expect(zoneShares(zoned, 0)).toEqual({ a: 1, b: 0, c: 0 });
    // During the outage: Envoy's residual split once the health checks mark a0 and a1 down (2 s
    // of the 5 s window at 2 failures 1 s apart, a0 and a1 taking half of a's calls meanwhile).
    const during = zoneShares(zoned, 1);
    expect(during.a).toBeGreaterThan(0.65);
    expect(during.a).toBeLessThan(0.8);
    expect(Math.abs(during.b! - during.c!)).toBeLessThan(0.03);
    // After: local again once a0 and a1 pass two probes (about 2 s into the 5 s window).
    expect(zoneShares(zoned, 2).a).toBeGreaterThan(0.85);
    expect(
      zoned.timeline
        .at(-1)!
        .byBackend.slice(4)
        .every((n) => n === 0),
    ).toBe(true);
    // Without zone routing, a third of the calls stay in a throughout, and take longer.
    expect(Math.abs(zoneShares(all, 0).a! - 1 / 3)).toBeLessThan(0.04);
    expect(all.latency.p50).toBeGreaterThan(zoned.latency.p50);
  });

  it('lists every built-in scenario with a creator and known algorithms', () => {
    expect(BUILT_IN_SCENARIOS.map((s) => s.name)).toEqual([
      'linkerd',
      'heavy-tail',
      'failing',
      'flapping',
      'hot-keys',
      'zone-outage',
    ]);
    for (const s of BUILT_IN_SCENARIOS) {
      expect(s.create().name).toBe(s.name);
      expect(simulationCandidates(s.algorithms).length).toBe(s.algorithms.length);
      expect(s.create({ durationMs: 1000 }).durationMs).toBe(1000);
    }
    expect(() => heavyTailScenario({ rate: -1 })).toThrow(LoadBalancerConfigError);
  });

  it('flapping() lays out periodic outages', () => {
    expect(flapping({ periodMs: 1000, downMs: 300, until: 3500 })).toEqual([
      { from: 700, to: 1000, down: true },
      { from: 1700, to: 2000, down: true },
      { from: 2700, to: 3000, down: true },
    ]);
    expect(flapping({ periodMs: 1000, downMs: 300, from: 0, until: 1100, label: 'x' })).toEqual([
      { from: 0, to: 300, down: true, label: 'x' },
      { from: 1000, to: 1100, down: true, label: 'x' },
    ]);
    expect(() => flapping({ periodMs: 100, downMs: 100, until: 1000 })).toThrow(
      LoadBalancerConfigError,
    );
  });
});
