/**
 * Reliability under faults: the balanced fetch over real servers on 127.0.0.1 that refuse
 * connections, reset before or after the headers, hang, answer slowly, truncate bodies, fail with
 * 5xx, crash and come back, or all go down at once. The scenarios and their checks are in
 * test/support/fault-scenarios.ts (scripts/reliability.ts runs the same ones and prints the
 * figures); each is one test here, and every check that did not hold fails it:
 * - every call ends, with a response or a documented error (its class and code checked), and
 *   none is lost (the outcomes are counted) or outlives its deadline (each call races a guard
 *   timer well past `deadlineMs`);
 * - in-flight counts return to 0 once bodies are consumed;
 * - after the fault, traffic spreads over every backend again, with a `HealthChecker` and an
 *   `OutlierDetector` attached as a user would.
 * Real time (systemClock), short timeouts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { FAULT_SCENARIOS, runScenario, warmUp } from '../support/fault-scenarios.js';

// The platform fetch loads and compiles itself on first use, which can take longer than an
// attempt's timeout on a busy machine: warm it up so the first test measures faults, not that.
beforeAll(warmUp);

describe('reliability under faults (balanced fetch, real sockets)', () => {
  it('has the 13 scenarios docs/reliability.md counts', () => {
    expect(FAULT_SCENARIOS).toHaveLength(13);
    expect(new Set(FAULT_SCENARIOS.map((s) => s.name)).size).toBe(13);
  });

  it.each(FAULT_SCENARIOS.map((s) => [s.name, s] as const))('%s', async (_, scenario) => {
    const report = await runScenario(scenario);
    expect(report.problems).toEqual([]);
    expect({ hung: report.hung, lost: report.lost }).toEqual({ hung: 0, lost: 0 });
    expect(report.calls).toBeGreaterThan(0);
  });
});
