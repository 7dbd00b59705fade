import { LoadBalancerConfigError } from '../errors/config-error.js';
import { checkDuration, checkNumber, checkOptions, optDuration, optNumber } from '../validate.js';
import { STANDARD_ALGORITHMS } from './candidates.js';
import type { BackendPhase, LatencyModel, Scenario, SimulatedBackend } from './types.js';

/** Sizing of a built-in scenario. Phase times scale with `durationMs`. */
export interface ScenarioOptions {
  /** Mean arrival rate, per second (open-loop scenarios only). @default the scenario's own */
  rate?: number;
  /** Calls kept in flight (closed-loop scenarios only). @default the scenario's own */
  clients?: number;
  /** Length of the run, in ms. @default the scenario's own */
  durationMs?: number;
  /** Seed. @default 1 */
  seed?: number;
}

/** The most phases `flapping()` makes. */
const MAX_PHASES = 100_000;

/** Options of {@link flapping}. */
export interface FlappingOptions {
  /** Time between two outages starting, in ms. */
  periodMs: number;
  /** How long each outage lasts, in ms (less than `periodMs`). */
  downMs: number;
  /** First outage starts here. @default periodMs - downMs */
  from?: number;
  /** No outage starts at or after this time (at most 100,000 periods after `from`). */
  until: number;
  /** Label of each outage. @default none (reports say "<id> down") */
  label?: string;
}

/**
 * Phases for a backend that goes down for `downMs` every `periodMs` (a crash-looping process,
 * a flaky network path).
 *
 * @example
 * ```ts
 * const b: SimulatedBackend = {
 *   id: 'b0',
 *   latency: 30,
 *   phases: flapping({ periodMs: 8_000, downMs: 3_000, until: 40_000 }),
 * };
 * ```
 */
export function flapping(options: FlappingOptions): BackendPhase[] {
  const o = checkOptions('flapping options', options, [
    'periodMs',
    'downMs',
    'from',
    'until',
    'label',
  ]);
  const periodMs = checkDuration('periodMs', o.periodMs, { min: 0, minExclusive: true });
  const downMs = checkDuration('downMs', o.downMs, { min: 0, minExclusive: true });
  if (downMs >= periodMs) {
    throw new LoadBalancerConfigError('downMs', downMs, `less than periodMs (${periodMs})`);
  }
  const from = optDuration('from', o.from, periodMs - downMs, { min: 0 });
  const until = checkNumber('until', o.until, { min: 0 });
  // One phase per period: a period of 1e-300 ms (or until: 2^53) asked for more phases than
  // memory holds, and past 2^53 × period, t + periodMs == t and the loop never ended.
  const count = Math.max(0, Math.ceil((until - from) / periodMs));
  if (count > MAX_PHASES) {
    throw new LoadBalancerConfigError(
      'until',
      until,
      `at most ${MAX_PHASES} periods of ${periodMs} ms after from (${from}); this asks for ${count}`,
    );
  }
  const phases: BackendPhase[] = [];
  for (let i = 0; i < count; i++) {
    const t = from + i * periodMs;
    const to = Math.min(t + downMs, until);
    if (t >= until) break;
    // An outage shorter than a clock reading can tell apart (at 2^50 ms, 0.25 ms) is none.
    if (to <= t) continue;
    phases.push({
      from: t,
      to,
      down: true,
      ...(o.label === undefined ? {} : { label: o.label }),
    });
  }
  return phases;
}

/**
 * Checks a built-in scenario's options. `loop` names the load the scenario takes: `rate` for an
 * open loop (arrivals per second), `clients` for a closed loop (calls in flight); the other one
 * is refused. `load` and `durationMs` are the scenario's defaults.
 */
function sizing<L extends 'rate' | 'clients'>(
  options: ScenarioOptions | undefined,
  loop: L,
  load: number,
  durationMs: number,
): Record<L, number> & { durationMs: number; seed: number } {
  const o = checkOptions('scenario options', options, ['rate', 'clients', 'durationMs', 'seed']);
  const refused = loop === 'rate' ? 'clients' : 'rate';
  if (o[refused] !== undefined) {
    const kind = loop === 'rate' ? 'an open-loop' : 'a closed-loop';
    throw new LoadBalancerConfigError(
      refused,
      o[refused],
      `no ${refused} (${kind} scenario: set ${loop})`,
    );
  }
  const value =
    loop === 'rate'
      ? optNumber('rate', o.rate, load, { min: 0, minExclusive: true })
      : optNumber('clients', o.clients, load, { min: 1, integer: true });
  return {
    [loop]: value,
    durationMs: optDuration('durationMs', o.durationMs, durationMs, { min: 0, minExclusive: true }),
    seed: optNumber('seed', o.seed, 1, { integer: true }),
  } as Record<L, number> & { durationMs: number; seed: number };
}

function ids(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `b${i}`);
}

/**
 * The experiment of Linkerd's "Beyond Round Robin: Load Balancing for Latency" (Steve Jenson and
 * Ruben Oanta, Buoyant, March 2016): 11 backends replaying a latency with a median of 167 ms and
 * a standard deviation of 5 ms, one client at 1000 calls/s for one minute; after 15 s one
 * backend's latency is fixed at 2 s for 30 s. The article reports that with a 1 s timeout the
 * success rate would be about 95% with round robin, 99% with least loaded and 99.9% with peak
 * EWMA.
 *
 * As in the article, the backends replay their latency whatever the load (no queueing), and the
 * client waits for every answer: the 1 s deadline only decides what counts as a success.
 *
 * @example
 * ```ts
 * const report = await simulate(linkerdScenario()); // 60 000 calls, 4 algorithms
 * ```
 */
export function linkerdScenario(options?: ScenarioOptions): Scenario {
  const { rate, durationMs, seed } = sizing(options, 'rate', 1000, 60_000);
  const slow: BackendPhase = {
    from: durationMs / 4,
    to: (durationMs * 3) / 4,
    latency: 2000,
    label: 'b0 at 2 s',
  };
  return {
    name: 'linkerd',
    description:
      "Linkerd's Beyond Round Robin experiment: 11 backends at 167 ms, one fixed at 2 s for the middle half of the run, 1 s deadline.",
    backends: ids(11).map(
      (id): SimulatedBackend => ({
        id,
        latency: { kind: 'normal', mean: 167, sd: 5 },
        ...(id === 'b0' ? { phases: [slow] } : {}),
      }),
    ),
    rate,
    durationMs,
    deadlineMs: 1000,
    cancelAtDeadline: false,
    focus: 'b0',
    seed,
  };
}

/**
 * Heavy-tailed service times (Pareto, α = 1.6: most calls take 10–30 ms, a few take seconds) on
 * 10 backends with 4 workers each and a FIFO queue, at about 80% utilization. A call stuck behind
 * a giant one waits; algorithms that see queues avoid that.
 *
 * @example
 * ```ts
 * await simulate(heavyTailScenario({ rate: 1000, durationMs: 10_000 }));
 * ```
 */
export function heavyTailScenario(options?: ScenarioOptions): Scenario {
  const { rate, durationMs, seed } = sizing(options, 'rate', 1200, 20_000);
  return {
    name: 'heavy-tail',
    description:
      'Pareto service times (α 1.6, min 10 ms) on 10 backends of 4 workers each, about 80% busy, 300 ms deadline.',
    backends: ids(10).map((id) => ({
      id,
      latency: { kind: 'pareto', min: 10, alpha: 1.6, max: 30_000 },
      concurrency: 4,
    })),
    rate,
    durationMs,
    deadlineMs: 300,
    seed,
  };
}

/**
 * One of 8 backends answers every call with an error in 2 ms during the middle half of the run
 * (a broken dependency behind a healthy process). It looks idle and fast, so load- and
 * latency-aware algorithms send it more than its share: without outlier detection, they make
 * things worse than round robin.
 *
 * @example
 * ```ts
 * await simulate(failingBackendScenario(), {
 *   algorithms: simulationCandidates(['least-connections', 'least-connections+outlier']),
 * });
 * ```
 */
export function failingBackendScenario(options?: ScenarioOptions): Scenario {
  const { rate, durationMs, seed } = sizing(options, 'rate', 800, 40_000);
  return {
    name: 'failing',
    description:
      'b0 of 8 backends answers every call with a fast error (2 ms) during the middle half; no outlier detection.',
    backends: ids(8).map(
      (id): SimulatedBackend => ({
        id,
        latency: { kind: 'lognormal', median: 50, sigma: 0.3 },
        concurrency: 32,
        ...(id === 'b0'
          ? {
              phases: [
                {
                  from: durationMs / 4,
                  to: (durationMs * 3) / 4,
                  errorRate: 1,
                  errorLatency: 2,
                  label: 'b0 failing fast',
                },
              ],
            }
          : {}),
      }),
    ),
    rate,
    durationMs,
    deadlineMs: 500,
    focus: 'b0',
    seed,
  };
}

/**
 * One of 6 backends goes down (connections refused) for 3 s in every 8 s (at the default length
 * of 40 s; the period is a fifth of the run); an active health check
 * probes every second and needs 2 failures to mark it down and 2 passes to bring it back.
 * Calls sent in the gap before the health check reacts fail.
 *
 * @example
 * ```ts
 * await simulate(flappingScenario({ seed: 3 }));
 * ```
 */
export function flappingScenario(options?: ScenarioOptions): Scenario {
  const { rate, durationMs, seed } = sizing(options, 'rate', 300, 40_000);
  const periodMs = durationMs / 5;
  const downMs = (periodMs * 3) / 8;
  return {
    name: 'flapping',
    description: `b0 of 6 backends is down ${downMs / 1000} s in every ${periodMs / 1000} s; health checks every 1 s, 2 failures to mark it down, 2 passes to restore it.`,
    backends: ids(6).map(
      (id): SimulatedBackend => ({
        id,
        latency: { kind: 'lognormal', median: 30, sigma: 0.4 },
        concurrency: 16,
        ...(id === 'b0'
          ? {
              phases: flapping({
                periodMs,
                downMs,
                until: durationMs,
                label: 'b0 down',
              }),
            }
          : {}),
      }),
    ),
    rate,
    durationMs,
    deadlineMs: 500,
    healthCheck: { intervalMs: 1000, unhealthyThreshold: 2, healthyThreshold: 2 },
    focus: 'b0',
    seed,
  };
}

/**
 * Calls carry keys with a Zipf popularity (10 000 keys, exponent 1.1: the hottest key takes 15%
 * of calls, the top three 27%) on 8 backends of 16 workers, about half busy on average; backend
 * b7 leaves at 40% of the run and b8 joins at 70%. Hash-based algorithms pin the hottest key to
 * one backend, which then runs past its capacity; bounded loads spill the excess. Reports how
 * many keys changed backend at each membership change and how often a key's consecutive calls
 * land on different backends: the figures that matter for caches and affinity.
 *
 * @example
 * ```ts
 * await simulate(hotKeysScenario(), {
 *   algorithms: simulationCandidates(['round-robin', 'consistent-hash', 'maglev']),
 * });
 * ```
 */
export function hotKeysScenario(options?: ScenarioOptions): Scenario {
  const { rate, durationMs, seed } = sizing(options, 'rate', 3000, 20_000);
  return {
    name: 'hot-keys',
    description:
      'Zipf(1.1) keys (hottest 15% of calls) on 8 backends of 16 workers, half busy; b7 leaves at 40% of the run, b8 joins at 70%.',
    backends: ids(9).map(
      (id): SimulatedBackend => ({
        id,
        latency: { kind: 'lognormal', median: 20, sigma: 0.5 },
        concurrency: 16,
        ...(id === 'b7' ? { leaveAt: durationMs * 0.4 } : {}),
        ...(id === 'b8' ? { joinAt: durationMs * 0.7 } : {}),
      }),
    ),
    rate,
    durationMs,
    deadlineMs: 250,
    keys: { count: 10_000, zipf: 1.1 },
    seed,
  };
}

/** Service time of the closed-loop scenarios' backends: about 4 ms, as the loopback benchmark's. */
const FOUR_MS: LatencyModel = { kind: 'lognormal', median: 4, sigma: 0.25 };

/**
 * The setup the tail-latency benchmark's cases share: 3 backends at about 4 ms (plus `backend`),
 * 16 calls in flight by default, b0 changed by `change` for the middle third of the run, the
 * client stalling 20 ms every 500 ms, and success an answer within 20 ms.
 */
function closedLoopScenario(
  options: ScenarioOptions | undefined,
  name: string,
  describe: (clients: number) => string,
  backend: Pick<SimulatedBackend, 'concurrency'>,
  change: Omit<BackendPhase, 'from' | 'to'>,
): Scenario {
  const { clients, durationMs, seed } = sizing(options, 'clients', 16, 3000);
  return {
    name,
    description: `${describe(clients)}; the client stalls 20 ms every 500 ms; success is an answer within 20 ms.`,
    backends: ids(3).map(
      (id): SimulatedBackend => ({
        id,
        latency: FOUR_MS,
        ...backend,
        ...(id === 'b0'
          ? { phases: [{ from: durationMs / 3, to: (2 * durationMs) / 3, ...change }] }
          : {}),
      }),
    ),
    clients,
    clientStalls: { everyMs: 500, ms: 20 },
    durationMs,
    // Five times the usual 4 ms answer: success is the share of calls that b0's slowness
    // (slow-backend) or its queue (lost-capacity) did not hold up.
    deadlineMs: 20,
    cancelAtDeadline: false,
    focus: 'b0',
    seed,
  };
}

/**
 * The tail-latency benchmark's first case on a virtual clock: 3 backends answer in about 4 ms
 * whatever their load, 16 calls in flight (a closed loop), and b0 answers in 40 ms for the
 * middle third of the run. The slowness is not queueing: b0 serves every call at once, it is
 * only slow (a GC pause, a noisy neighbour, a slow dependency). The client stalls for 20 ms every
 * 500 ms (garbage collection, a busy event loop), which inflates every backend's latency samples
 * at once, as on a real Node client.
 *
 * Finagle's cost, latency × (in flight + 1), prices a fast backend holding 8 of the 16 calls at
 * 9 × its latency, close to the idle slow backend's; peaks from the stalls then tip it.
 *
 * @example
 * ```ts
 * await simulate(slowBackendScenario(), {
 *   algorithms: simulationCandidates(['peak-ewma', 'peak-ewma+latency']),
 * });
 * ```
 */
export function slowBackendScenario(options?: ScenarioOptions): Scenario {
  return closedLoopScenario(
    options,
    'slow-backend',
    (clients) =>
      `3 backends at about 4 ms whatever their load, ${clients} calls in flight; b0 answers in 40 ms for the middle third`,
    {},
    { latency: { kind: 'lognormal', median: 40, sigma: 0.25 }, label: 'b0 at 40 ms' },
  );
}

/**
 * The tail-latency benchmark's second case on a virtual clock: 3 backends of 4 workers each
 * (about 4 ms per call, the rest queued, as a CPU-bound server), 16 calls in flight, and b0 keeps
 * 1 worker of 4 for the middle third of the run. Here slowness is queueing: b0's latency grows
 * with the calls it holds, the case Finagle's cost models.
 *
 * @example
 * ```ts
 * await simulate(lostCapacityScenario());
 * ```
 */
export function lostCapacityScenario(options?: ScenarioOptions): Scenario {
  return closedLoopScenario(
    options,
    'lost-capacity',
    (clients) =>
      `3 backends of 4 workers at about 4 ms, ${clients} calls in flight; b0 keeps 1 worker of 4 for the middle third`,
    { concurrency: 4 },
    { concurrency: 1, label: 'b0 at 1 worker' },
  );
}

/** A scenario the simulator ships with, for the API and `npm run simulate`. */
export interface BuiltInScenario {
  readonly name: string;
  /** One line for `--help`. */
  readonly summary: string;
  /** Builds the scenario, optionally resized. */
  readonly create: (options?: ScenarioOptions) => Scenario;
  /** The algorithms it compares by default (names for `simulationCandidates`). */
  readonly algorithms: readonly string[];
}

/**
 * Zone-aware routing through a zone losing half its backends: 12 backends in three zones (a, b,
 * c), the client in zone a with `zoneAware: { localZone: 'a' }`; a call to another zone takes
 * about 2 ms more (a cross-zone round trip). In the middle third of the run a0 and a1 go down
 * (connections refused); active health checks every second, 2 failures to mark a backend down
 * and 2 passes to restore it. Before the outage every call stays in a; during it, a takes 60%
 * (2 of 10 healthy backends against a third of the callers, Envoy's residual split) and b and c
 * 20% each; after it, all return to a. The `+all-zones` candidate turns zone-aware routing off
 * for comparison.
 *
 * @example
 * ```ts
 * await simulate(zoneOutageScenario(), {
 *   algorithms: simulationCandidates(['power-of-two-choices', 'power-of-two-choices+all-zones']),
 * });
 * ```
 */
export function zoneOutageScenario(options?: ScenarioOptions): Scenario {
  const { rate, durationMs, seed } = sizing(options, 'rate', 600, 30_000);
  const outage: BackendPhase = {
    from: durationMs / 3,
    to: (durationMs * 2) / 3,
    down: true,
    label: 'a0, a1 down',
  };
  return {
    name: 'zone-outage',
    description:
      'Three zones of 4 backends, the client in zone a (zone-aware), 2 ms more to other zones; a0 and a1 down for the middle third; health checks every 1 s.',
    backends: ['a', 'b', 'c'].flatMap((zone) =>
      [0, 1, 2, 3].map(
        (i): SimulatedBackend => ({
          id: `${zone}${i}`,
          zone,
          latency: { kind: 'lognormal', median: zone === 'a' ? 10 : 12, sigma: 0.3 },
          concurrency: 16,
          ...(zone === 'a' && i < 2 ? { phases: [outage] } : {}),
        }),
      ),
    ),
    rate,
    durationMs,
    deadlineMs: 250,
    healthCheck: { intervalMs: 1000, unhealthyThreshold: 2, healthyThreshold: 2 },
    pool: { zoneAware: { localZone: 'a' } },
    focus: 'a2',
    seed,
  };
}

/** The built-in scenarios, `linkerd` first. */
export const BUILT_IN_SCENARIOS: readonly BuiltInScenario[] = Object.freeze([
  {
    name: 'linkerd',
    summary: "Linkerd's Beyond Round Robin: 11 backends, one at 2 s for half the run, 1 s deadline",
    create: linkerdScenario,
    algorithms: STANDARD_ALGORITHMS,
  },
  {
    name: 'heavy-tail',
    summary: 'Pareto service times, 4 workers per backend, ~80% busy, 300 ms deadline',
    create: heavyTailScenario,
    algorithms: [...STANDARD_ALGORITHMS, 'random'],
  },
  {
    name: 'failing',
    summary: 'one backend answers errors in 2 ms for half the run (fast failures attract traffic)',
    create: failingBackendScenario,
    algorithms: [...STANDARD_ALGORITHMS, 'least-connections+outlier', 'peak-ewma+outlier'],
  },
  {
    name: 'flapping',
    summary: 'one backend down 3 s in every 8 s, with active health checks',
    create: flappingScenario,
    algorithms: [...STANDARD_ALGORITHMS, 'least-connections+outlier', 'peak-ewma+outlier'],
  },
  {
    name: 'slow-backend',
    summary: '1 of 3 backends 10x slower without queueing, 16 calls in flight (closed loop)',
    create: slowBackendScenario,
    algorithms: [...STANDARD_ALGORITHMS, 'peak-ewma-finagle'],
  },
  {
    name: 'lost-capacity',
    summary: '1 of 3 backends of 4 workers drops to 1 worker, 16 calls in flight (closed loop)',
    create: lostCapacityScenario,
    algorithms: [...STANDARD_ALGORITHMS, 'peak-ewma-finagle'],
  },
  {
    name: 'hot-keys',
    summary: 'Zipf-popular keys; a backend leaves and another joins (keys moved, key churn)',
    create: hotKeysScenario,
    algorithms: [
      'round-robin',
      'power-of-two-choices',
      'peak-ewma',
      'consistent-hash',
      'consistent-hash-bounded',
      'maglev',
    ],
  },
  {
    name: 'zone-outage',
    summary: 'zone-aware routing: three zones, the local one loses half its backends for a third',
    create: zoneOutageScenario,
    algorithms: [
      'round-robin',
      'power-of-two-choices',
      'peak-ewma',
      'peak-ewma+outlier',
      'power-of-two-choices+all-zones',
    ],
  },
]);
