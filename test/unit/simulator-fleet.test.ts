/**
 * The fleet scenario of the simulator: real pools with DeterministicSubset through churn, against
 * the SRE book's subsetting, random subsets and none. A small fleet here; `npm run simulate --
 * fleet` runs 500 clients × 1,000 backends for docs/benchmarks.md.
 */
import { describe, expect, it } from 'vitest';
import { fleetCharts, formatFleetReport, simulateFleet } from '../../src/simulator/index.js';

describe('simulateFleet', () => {
  const report = simulateFleet({
    clients: 60,
    backends: 120,
    size: 10,
    callsPerClient: 40,
    seed: 3,
  });
  const by = (name: string) => report.strategies.find((s) => s.name === name)!;

  it('balances connections and calls exactly with DeterministicSubset at every step', () => {
    const steps = by('deterministic-subset').steps;
    expect(steps.map((s) => s.step)).toEqual([
      'start',
      'a backend leaves',
      'a backend joins',
      'a client joins',
      '12 backends replaced',
      'a client leaves',
    ]);
    for (const s of steps) expect(s.connectionSkew).toBe(1);
    expect(steps[0]).toMatchObject({ totalConnections: 600, subsetSize: { min: 10, max: 10 } });
    expect(steps[0]!.callSkew).toBe(1);
  });

  it('moves far fewer assignments than the SRE book when a backend joins or leaves', () => {
    const ours = by('deterministic-subset').steps;
    const book = by('sre-book').steps;
    for (const i of [1, 2, 4]) {
      expect(ours[i]!.moved).toBeGreaterThan(0);
      expect(ours[i]!.moved * 3).toBeLessThan(book[i]!.moved);
    }
    // Rounds make a client joining or leaving free for the book's algorithm; the ring pays for it.
    expect(book[3]!.moved).toBe(0);
    expect(ours[3]!.moved).toBeGreaterThan(0);
  });

  it('with placement "stable", moves nothing when a client joins and keeps connections exact', () => {
    const stable = by('deterministic-subset-stable').steps;
    for (const s of stable) expect(s.connectionSkew).toBe(1);
    expect(stable[3]!.step).toBe('a client joins');
    expect(stable[3]!.moved).toBe(0);
    // The leaving client's backends go to its neighbours: about one subset's worth.
    expect(stable[5]!.moved).toBeGreaterThan(0);
    expect(stable[5]!.moved).toBeLessThanOrEqual(stable[5]!.subsetSize.max * 3);
    expect(by('deterministic-subset').steps[3]!.moved).toBeGreaterThan(stable[3]!.moved);
  });

  it('shows what random subsets cost in balance', () => {
    expect(by('random-subset').steps[0]!.connectionSkew).toBeGreaterThan(1.3);
    expect(by('no-subsetting').steps[0]!.totalConnections).toBe(60 * 120);
  });

  it('is deterministic for a seed, and renders tables and two charts', () => {
    const again = simulateFleet({
      clients: 60,
      backends: 120,
      size: 10,
      callsPerClient: 40,
      seed: 3,
    });
    expect(again).toEqual(report);
    expect(formatFleetReport(report)).toMatch(/\| deterministic-subset +\|/);
    const charts = fleetCharts(report);
    expect(charts.map((c) => c.name)).toEqual(['subsetting-balance', 'subsetting-churn']);
    for (const c of charts) expect(c.svg.startsWith('<svg')).toBe(true);
  });

  it('checks its options', () => {
    // A typed error naming the option, as every public function gives.
    expect(() => simulateFleet({ clients: 0 })).toThrow(
      expect.objectContaining({ code: 'LB_CONFIG', field: 'clients' }),
    );
    expect(() => simulateFleet({ backends: 1.5 })).toThrow(/backends/);
    expect(() => simulateFleet({ deployShare: 2 })).toThrow(/deployShare/);
    expect(() => simulateFleet({ other: 1 } as never)).toThrow(/FleetScenarioOptions.other/);
  });
});
