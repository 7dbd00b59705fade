import { describe, expect, it } from 'vitest';
import {
  type AlgorithmResult,
  linkerdScenario,
  type SimulationReport,
  simulate,
  simulationCandidates,
} from '../../src/simulator/index.js';

function byName(report: SimulationReport, name: string): AlgorithmResult {
  const r = report.results.find((x) => x.name === name);
  if (r === undefined) throw new Error(`no result for ${name}`);
  return r;
}

function b0Share(r: AlgorithmResult, window: number): number {
  return r.windows[window]!.share['b0']!;
}

describe("simulator: Linkerd's Beyond Round Robin experiment", () => {
  // The full-size run (1000 calls/s for 60 s, as in the article) is what docs/simulator.md reports.
  it('reproduces the article: about 95% for round robin, 99% least loaded, 99.9% peak EWMA', async () => {
    const report = await simulate(linkerdScenario());
    const rr = byName(report, 'round-robin');
    const lc = byName(report, 'least-connections');
    const p2c = byName(report, 'power-of-two-choices');
    const ewma = byName(report, 'peak-ewma');

    // Round robin sends 1/11 of calls to the slow backend for half the run: 1 - 1/22 = 95.45%.
    expect(rr.successRate).toBeGreaterThan(0.95);
    expect(rr.successRate).toBeLessThan(0.96);
    expect(lc.successRate).toBeGreaterThan(0.99);
    expect(p2c.successRate).toBeGreaterThan(0.99);
    expect(ewma.successRate).toBeGreaterThanOrEqual(0.999);
    expect(ewma.successRate).toBeGreaterThanOrEqual(lc.successRate);
    expect(lc.successRate).toBeGreaterThanOrEqual(rr.successRate);

    // The article's percentile picture: round robin is slow from p95 on, least loaded from p99.9
    // on, peak EWMA stays fast at p99.9.
    expect(rr.latency.p99).toBe(2000);
    expect(lc.latency.p99).toBeLessThan(200);
    expect(lc.latency.p999).toBe(2000);
    expect(ewma.latency.p999).toBeLessThan(200);
    expect(report.deadlineMs).toBe(1000);
    expect(report.results.every((r) => r.requests > 59_000 && r.requests < 61_000)).toBe(true);
  });

  it('keeps round robin at 1/11 of the slow backend while peak EWMA moves away from it', async () => {
    const report = await simulate(linkerdScenario({ rate: 300 }), {
      algorithms: simulationCandidates(['round-robin', 'least-connections', 'peak-ewma']),
    });
    const rr = byName(report, 'round-robin');
    const lc = byName(report, 'least-connections');
    const ewma = byName(report, 'peak-ewma');
    expect(rr.windows.map((w) => w.label)).toEqual(['0–15 s', '15–45 s', '45–60 s']);

    // Round robin ignores latency: 1/11 before, during and after the slowdown.
    for (let w = 0; w < 3; w++) expect(b0Share(rr, w)).toBeCloseTo(1 / 11, 3);
    expect(rr.backends[0]!.share).toBeCloseTo(1 / 11, 3);
    expect(rr.windows[1]!.moved).toBeLessThan(0.001);

    // Load-aware and latency-aware algorithms take traffic away from the slow backend.
    expect(b0Share(lc, 1)).toBeLessThan(0.03);
    expect(b0Share(ewma, 1)).toBeLessThan(0.01);
    expect(b0Share(ewma, 1)).toBeLessThan(b0Share(lc, 1));
    expect(ewma.backends[0]!.share).toBeLessThan(1 / 11 / 2);
    // That is traffic moving: about 1/11 of it left b0 when it turned slow.
    expect(ewma.windows[1]!.moved).toBeGreaterThan(0.08);

    // Least connections comes back as soon as b0's calls are fast again; peak EWMA only as its
    // 2 s peak decays (10 s time constant), so it is still shy of b0 after the slowdown.
    expect(b0Share(lc, 2)).toBeGreaterThan(0.07);
    expect(b0Share(ewma, 2)).toBeLessThan(b0Share(lc, 2));

    for (const r of report.results) {
      expect(r.inFlightAtEnd).toBe(0);
      expect(r.outcomes.rejected).toBe(0);
      // The client waits for every answer here (as in the article): late answers, not timeouts.
      expect(r.outcomes.timedOut).toBe(0);
      expect(r.outcomes.ok + r.outcomes.late).toBe(r.requests);
    }
  });
});
