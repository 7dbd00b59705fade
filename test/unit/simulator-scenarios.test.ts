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
  lostCapacityScenario,
  type SimulationReport,
  simulate,
  simulationCandidates,
  slowBackendScenario,
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

  // The tail-latency benchmark's case on a virtual clock: 16 calls in flight over 3 backends, one 10 times
  // slower without queueing for the middle third, a client that stalls now and then.
  it('slow backend: peak EWMA keeps off a backend that is slow without a queue', async () => {
    const report = await simulate(slowBackendScenario(), {
      algorithms: simulationCandidates(['round-robin', 'peak-ewma', 'peak-ewma-finagle']),
    });
    const rr = get(report, 'round-robin');
    const ewma = get(report, 'peak-ewma');
    const finagle = get(report, 'peak-ewma-finagle');
    expect(rr.windows[1]!.share['b0']).toBeCloseTo(1 / 3, 2);
    // Finagle's cost lets the idle slow backend in whenever a fast one holds about 8 calls.
    expect(finagle.windows[1]!.share['b0']).toBeGreaterThan(0.015);
    expect(ewma.windows[1]!.share['b0']).toBeLessThan(0.005);
    expect(ewma.latency.p99).toBeLessThanOrEqual(rr.latency.p99 / 2);
    expect(ewma.latency.p99).toBeLessThan(finagle.latency.p99);
    expect(ewma.windows[1]!.successRate).toBeGreaterThan(finagle.windows[1]!.successRate);
  });

  // Finagle's behaviour where latency grows with load is kept: a backend that lost workers
  // builds a queue, and both costs move calls away from it as round robin does not.
  it('lost capacity: both costs move calls away from a backend whose latency grows with load', async () => {
    const report = await simulate(lostCapacityScenario(), {
      algorithms: simulationCandidates(['round-robin', 'peak-ewma', 'peak-ewma-finagle']),
    });
    const rr = get(report, 'round-robin');
    expect(rr.windows[1]!.share['b0']).toBeCloseTo(1 / 3, 2);
    for (const name of ['peak-ewma', 'peak-ewma-finagle']) {
      const r = get(report, name);
      expect(r.windows[1]!.share['b0']).toBeLessThan(0.15);
      // And back to its share once it has its workers again.
      expect(r.windows[2]!.share['b0']).toBeGreaterThan(0.25);
      expect(r.latency.p99).toBeLessThanOrEqual(rr.latency.p99 / 2);
    }
  });

  it('lists every built-in scenario with a creator and known algorithms', () => {
    expect(BUILT_IN_SCENARIOS.map((s) => s.name)).toEqual([
      'linkerd',
      'heavy-tail',
      'failing',
      'flapping',
      'slow-backend',
      'lost-capacity',
      'hot-keys',
      'zone-outage',
    ]);
    for (const s of BUILT_IN_SCENARIOS) {
      expect(s.create().name).toBe(s.name);
      expect(simulationCandidates(s.algorithms).length).toBe(s.algorithms.length);
      expect(s.create({ durationMs: 1000 }).durationMs).toBe(1000);
    }
    expect(() => heavyTailScenario({ rate: -1 })).toThrow(LoadBalancerConfigError);
    expect(() => heavyTailScenario({ clients: 4 })).toThrow(LoadBalancerConfigError);
    expect(() => slowBackendScenario({ rate: 100 })).toThrow(LoadBalancerConfigError);
    expect(slowBackendScenario({ clients: 8 }).clients).toBe(8);
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

  // Found by the property suite: each of these ran for ever (or until memory ran out) before.
  it('flapping() refuses more than 100,000 outages, and ends where time cannot step', () => {
    for (const o of [
      { periodMs: 1000, downMs: 5, until: 2 ** 53 },
      { periodMs: 1e-300, downMs: 5e-301, from: 1, until: 2 },
    ]) {
      expect(() => flapping(o)).toThrow(expect.objectContaining({ field: 'until' }));
    }
    // At 2^50 ms a clock reading steps by 0.25 ms: outages of 0.005 ms cannot be told apart.
    expect(flapping({ periodMs: 0.01, downMs: 0.005, from: 2 ** 50, until: 2 ** 50 + 1 })).toEqual(
      [],
    );
  });

  it('simulate() refuses repeating timers below 1 ms (the run never ended before)', async () => {
    const base = { name: 's', backends: [{ id: 'a', latency: 5 }], rate: 200, requests: 50 };
    const algorithms = simulationCandidates(['round-robin']);
    await expect(
      simulate({ ...base, healthCheck: { intervalMs: 1e-9 } }, { algorithms }),
    ).rejects.toMatchObject({ field: 'scenario.healthCheck.intervalMs' });
    await expect(
      simulate({ ...base, pool: { skew: { windowMs: 1e-9 } } }, { algorithms }),
    ).rejects.toMatchObject({ field: 'scenario.pool.skew.windowMs' });
  });

  it("simulate() keeps the pool's hint when it names the option under scenario.pool", async () => {
    const base = { name: 's', backends: [{ id: 'a', latency: 5 }], rate: 200, requests: 50 };
    const algorithms = simulationCandidates(['round-robin']);
    const error = await simulate({ ...base, pool: { skew: { windowM: 1000 } } } as never, {
      algorithms,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect(error).toMatchObject({
      field: 'scenario.pool.skew.windowM',
      hint: 'Did you mean "windowMs"?',
    });
    expect((error as Error).message).toContain('Did you mean "windowMs"?');
    expect((error as Error).cause).toBeInstanceOf(LoadBalancerConfigError);
  });

  it('closed-loop scenarios refuse a rate and open-loop ones refuse clients', () => {
    expect(() => slowBackendScenario({ rate: 10 })).toThrow(
      expect.objectContaining({ field: 'rate', message: expect.stringContaining('set clients') }),
    );
    expect(() => lostCapacityScenario({ clients: 0 })).toThrow(
      expect.objectContaining({ field: 'clients' }),
    );
    expect(() => heavyTailScenario({ clients: 4 })).toThrow(
      expect.objectContaining({ field: 'clients', message: expect.stringContaining('set rate') }),
    );
    expect(lostCapacityScenario({ clients: 4 }).clients).toBe(4);
    expect(heavyTailScenario({ rate: 50 }).rate).toBe(50);
  });

  it('simulate() refuses a timeline of more than 100,000 buckets', async () => {
    const backends = [{ id: 'a', latency: 5 }];
    const scenario = { name: 's', backends, rate: 200, requests: 50 };
    const algorithms = simulationCandidates(['round-robin']);
    for (const s of [scenario, { name: 's', backends, rate: 200, durationMs: 250 }]) {
      await expect(simulate(s, { algorithms, timelineBucketMs: 1e-6 })).rejects.toMatchObject({
        field: 'timelineBucketMs',
      });
    }
    const ok = await simulate(scenario, { algorithms, timelineBucketMs: 1 });
    expect(ok.results[0]!.timeline.length).toBeGreaterThan(100);
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
});
