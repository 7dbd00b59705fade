import { describe, expect, it } from 'vitest';
import {
  heavyTailScenario,
  linkerdScenario,
  simulate,
  simulationCandidates,
} from '../../src/simulator/index.js';

// A small Linkerd run: 11 backends, b0 at 2 s for the middle half, 200 calls/s for 20 s.
const small = (seed: number) => linkerdScenario({ rate: 200, durationMs: 20_000, seed });
const algorithms = () =>
  simulationCandidates(['round-robin', 'least-connections', 'power-of-two-choices', 'peak-ewma']);

describe('simulator: determinism', () => {
  it('gives the same report, figure for figure, for the same seed', async () => {
    const a = await simulate(small(7), { algorithms: algorithms() });
    const b = await simulate(small(7), { algorithms: algorithms() });
    expect(b).toEqual(a);
    // The option overrides the scenario's seed.
    const c = await simulate(small(1), { algorithms: algorithms(), seed: 7 });
    expect(c.results).toEqual(a.results);
    expect(c.seed).toBe(7);
  });

  it('gives other figures for another seed, within the same sane bounds', async () => {
    const reports = await Promise.all(
      [1, 2, 3, 4].map((seed) => simulate(small(seed), { algorithms: algorithms() })),
    );
    const rrRates = reports.map((r) => r.results[0]!.successRate);
    expect(new Set(rrRates).size).toBe(4);
    for (const report of reports) {
      const [rr, lc, p2c, ewma] = report.results;
      // Round robin: 1/11 of calls to b0, half of the time: about 1 - 1/22.
      expect(rr!.successRate).toBeGreaterThan(0.94);
      expect(rr!.successRate).toBeLessThan(0.97);
      expect(lc!.successRate).toBeGreaterThan(0.98);
      expect(p2c!.successRate).toBeGreaterThan(0.98);
      expect(ewma!.successRate).toBeGreaterThan(0.99);
      expect(ewma!.successRate).toBeGreaterThanOrEqual(lc!.successRate);
      expect(lc!.successRate).toBeGreaterThan(rr!.successRate);
      for (const r of report.results) {
        // Poisson arrivals at 200/s for 20 s.
        expect(r.requests).toBeGreaterThan(3700);
        expect(r.requests).toBeLessThan(4300);
        expect(r.latency.p50).toBeGreaterThan(160);
        expect(r.latency.p50).toBeLessThan(175);
      }
    }
  });

  it('is deterministic with queues, heavy tails and keys too', async () => {
    const scenario = {
      ...heavyTailScenario({ rate: 600, durationMs: 3000, seed: 11 }),
      keys: { count: 100, zipf: 1.2 },
    };
    const names = ['round-robin', 'random', 'consistent-hash-bounded', 'peak-ewma+outlier'];
    const a = await simulate(scenario, { algorithms: simulationCandidates(names) });
    const b = await simulate(scenario, { algorithms: simulationCandidates(names) });
    expect(b).toEqual(a);
    expect(a.results.map((r) => r.name)).toEqual(names);
  });
});
