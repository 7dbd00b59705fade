import type { BackendPool, BackendPoolOptions } from '../pool/backend-pool.js';
import type { Algorithm } from '../types.js';

/**
 * A distribution of service times, in milliseconds. A plain number is a constant.
 *
 * - `constant`: always `ms`;
 * - `normal`: `mean` ± `sd`, cut at `min` (a replayed, well-behaved production latency);
 * - `lognormal`: `median` × e^(`sigma` × Z), the usual shape of RPC latency;
 * - `pareto`: `min` × U^(-1/`alpha`), a heavy tail (infinite variance for `alpha` <= 2);
 * - `exponential`: memoryless with the given `mean`.
 *
 * `max`, where offered, caps a sample (a server-side timeout, for instance).
 *
 * @example
 * ```ts
 * const latency: LatencyModel = { kind: 'lognormal', median: 20, sigma: 0.8, max: 5_000 };
 * ```
 */
export type LatencyModel =
  | number
  | { readonly kind: 'constant'; readonly ms: number }
  | { readonly kind: 'normal'; readonly mean: number; readonly sd: number; readonly min?: number }
  | {
      readonly kind: 'lognormal';
      readonly median: number;
      readonly sigma: number;
      readonly max?: number;
    }
  | { readonly kind: 'pareto'; readonly min: number; readonly alpha: number; readonly max?: number }
  | { readonly kind: 'exponential'; readonly mean: number; readonly max?: number };

/**
 * A stretch of time during which a simulated backend behaves differently. Fields left out keep
 * the backend's own values. When phases overlap, the one listed last wins.
 *
 * @example
 * ```ts
 * // b0 answers in 2 s from 15 s to 45 s into the run.
 * const phase: BackendPhase = { from: 15_000, to: 45_000, latency: 2_000, label: 'b0 slow' };
 * ```
 */
export interface BackendPhase {
  /** Start, in ms since the run began (inclusive). */
  readonly from: number;
  /**
   * End, in ms since the run began (exclusive).
   * @default the end of the run
   */
  readonly to?: number;
  /** Service time during the phase. @default the backend's `latency` */
  readonly latency?: LatencyModel;
  /**
   * Calls served in parallel during the phase (a server losing workers, or gaining them). Calls
   * already being served finish; new ones wait for one of the remaining workers.
   * @default the backend's `concurrency`
   */
  readonly concurrency?: number;
  /**
   * Share of calls answered with an error during the phase, in [0, 1].
   * @default the backend's `errorRate`
   */
  readonly errorRate?: number;
  /** Service time of an error answer. @default the backend's `errorLatency` */
  readonly errorLatency?: LatencyModel;
  /**
   * The backend is down: connections are refused after 1 ms and health probes fail.
   * @default false
   */
  readonly down?: boolean;
  /** A name for charts and reports, e.g. `'b0 slow'`. @default none */
  readonly label?: string;
}

/**
 * One simulated backend: how long it takes to serve a call, how many calls it serves at once,
 * how often it fails, and how that changes over time.
 *
 * The service model: a call arriving at time t gets a service time drawn from `latency` (or
 * `errorLatency` for an error answer), multiplied by `1 + slowdownPerInFlight × n` where n is the
 * number of calls the backend holds at t; it then waits in a FIFO queue for one of `concurrency`
 * workers. The backend finishes every call it accepted, even one whose client gave up.
 *
 * @example
 * ```ts
 * const b: SimulatedBackend = {
 *   id: 'b0',
 *   latency: { kind: 'normal', mean: 167, sd: 5 },
 *   concurrency: 32,
 *   phases: [{ from: 15_000, to: 45_000, latency: 2_000 }],
 * };
 * ```
 */
export interface SimulatedBackend {
  /** Identity in the pool and in reports. */
  readonly id: string;
  /** Weight given to the pool. @default 1 */
  readonly weight?: number;
  /** Zone given to the pool. @default none */
  readonly zone?: string;
  /** Service time of a successful call. */
  readonly latency: LatencyModel;
  /**
   * Calls served in parallel; more wait in a FIFO queue. `Infinity` replays `latency` whatever
   * the load.
   * @default Infinity
   */
  readonly concurrency?: number;
  /**
   * Relative service-time growth per call the backend already holds (contention on a shared
   * resource): 0.05 makes a call 5% slower for each other call in the backend.
   * @default 0
   */
  readonly slowdownPerInFlight?: number;
  /** Share of calls answered with an error, in [0, 1]. @default 0 */
  readonly errorRate?: number;
  /** Service time of an error answer. @default the same as `latency` */
  readonly errorLatency?: LatencyModel;
  /** Changes of behaviour over time. @default [] */
  readonly phases?: readonly BackendPhase[];
  /** Joins the pool at this time (ms) instead of at the start. @default 0 */
  readonly joinAt?: number;
  /**
   * Leaves the pool at this time (ms): removed at once, its calls in flight still finish.
   * @default never
   */
  readonly leaveAt?: number;
}

/** Periodic client stalls, see {@link Scenario.clientStalls}. */
export interface ClientStalls {
  /** Time from one stall's start to the next, in ms. */
  readonly everyMs: number;
  /** Length of each stall, in ms (less than `everyMs`). */
  readonly ms: number;
}

/** Affinity keys attached to calls, for hash-based algorithms and for measuring key movement. */
export interface KeySpace {
  /** Number of distinct keys (`key-0` … `key-<count-1>`). */
  readonly count: number;
  /**
   * Zipf exponent of key popularity: 0 is uniform; around 1 a few hot keys take a large share
   * (key `key-0` is the hottest).
   * @default 0
   */
  readonly zipf?: number;
}

/**
 * Active health checking inside the simulation: every `intervalMs` each backend in the pool is
 * probed through `pool.reportProbe`; a probe fails while the backend is down (a `down` phase)
 * and passes otherwise, so a backend that answers with errors still passes, as it does against a
 * separate health endpoint.
 */
export interface SimulatedHealthCheck {
  /** Time between probe rounds, in ms. */
  readonly intervalMs: number;
  /** Consecutive failures that mark a backend unhealthy. @default 1 */
  readonly unhealthyThreshold?: number;
  /** Consecutive passes that mark it healthy again. @default 1 */
  readonly healthyThreshold?: number;
}

/** Pool options a scenario or a candidate may set (the simulator owns the rest). */
export type SimulationPoolOptions = Omit<
  BackendPoolOptions,
  'backends' | 'algorithm' | 'clock' | 'random' | 'name'
>;

/**
 * A workload and a set of backends to run every algorithm against.
 *
 * @example
 * ```ts
 * const scenario: Scenario = {
 *   name: 'one-slow',
 *   backends: Array.from({ length: 5 }, (_, i) => ({
 *     id: `b${i}`,
 *     latency: { kind: 'lognormal', median: 20, sigma: 0.5 },
 *     phases: i === 0 ? [{ from: 5_000, to: 15_000, latency: 500 }] : [],
 *   })),
 *   rate: 200,
 *   durationMs: 20_000,
 *   deadlineMs: 250,
 * };
 * ```
 */
export interface Scenario {
  /** A short name, used in file names and reports. */
  readonly name: string;
  /** One or two sentences on what the scenario shows. @default '' */
  readonly description?: string;
  /** The backends (at least one). */
  readonly backends: readonly SimulatedBackend[];
  /**
   * Mean arrival rate of calls, per second (an open loop: calls arrive whatever happened to the
   * earlier ones). Required unless `clients` is given.
   */
  readonly rate?: number;
  /**
   * How calls arrive in an open loop: a Poisson process (exponential gaps) or evenly spaced.
   * @default 'poisson'
   */
  readonly arrivals?: 'poisson' | 'uniform';
  /**
   * A closed loop instead of `rate`: this many clients, each sending its next call as soon as its
   * previous one ended (answered, failed, given up at the deadline; 1 ms after a call the pool
   * could not place). All start at time 0. The number of calls in flight then stays at
   * `clients`, as with a load generator that keeps N requests outstanding.
   * @default none (open loop at `rate`)
   */
  readonly clients?: number;
  /**
   * The client stalls now and then (a garbage-collection pause, a busy event loop): for `ms`
   * every `everyMs`, starting at `everyMs`. Answers that arrive during a stall are seen at its
   * end, so their latency includes the rest of the stall, and calls due during a stall leave at
   * its end. Every backend's samples are inflated at once, as on a real client.
   * @default none
   */
  readonly clientStalls?: ClientStalls;
  /**
   * Stop sending calls at this time (ms). At least one of `durationMs` and `requests` is required.
   * @default no limit
   */
  readonly durationMs?: number;
  /**
   * Stop after this many calls. At least one of `durationMs` and `requests` is required.
   * @default no limit
   */
  readonly requests?: number;
  /**
   * The client's deadline: a call succeeds only when it gets a good answer within this many ms.
   * @default 1000
   */
  readonly deadlineMs?: number;
  /**
   * Whether the client gives up at the deadline (its lease is released then, as a `timeout`
   * failure with a latency of `deadlineMs`). With `false` the client waits for the answer and
   * the deadline only decides whether the call counts as a success.
   * @default true
   */
  readonly cancelAtDeadline?: boolean;
  /** Affinity keys attached to calls. @default no keys */
  readonly keys?: KeySpace;
  /** Active health checking. @default none */
  readonly healthCheck?: SimulatedHealthCheck;
  /** Pool options applied to every candidate (a candidate's own `pool` options win). @default {} */
  readonly pool?: SimulationPoolOptions;
  /**
   * The backend whose share of traffic the charts follow.
   * @default the first backend with phases
   */
  readonly focus?: string;
  /** Seed of the run. @default 1 */
  readonly seed?: number;
}

/** An algorithm to simulate, with the pool options and extra components it runs with. */
export interface AlgorithmCandidate {
  /** Name in reports and charts, e.g. `'peak-ewma'`. */
  readonly name: string;
  /** Creates a fresh algorithm (an algorithm instance serves one pool only). */
  readonly create: () => Algorithm;
  /** Pool options for this candidate, over the scenario's. @default {} */
  readonly pool?: SimulationPoolOptions;
  /**
   * Attaches further components to the pool (an outlier detector, a health checker); they see
   * the pool's `clock` and `random`. If it returns a function, that function stops them at the
   * end of the run. When a setup is given, the simulator lets pending promise callbacks run
   * after every step of the clock.
   * @default none
   */
  readonly setup?: (pool: BackendPool) => unknown;
}

/** Options of {@link simulate}. */
export interface SimulateOptions {
  /**
   * The algorithms to compare.
   * @default RoundRobin, LeastConnections, PowerOfTwoChoices, PeakEwma (`STANDARD_ALGORITHMS`)
   */
  readonly algorithms?: readonly AlgorithmCandidate[];
  /** Seed of the run (workload and pool randomness). @default the scenario's `seed`, else 1 */
  readonly seed?: number;
  /**
   * Width of one bucket of the timeline, in ms; a report holds at most 100,000 buckets.
   * @default the smallest of 1, 2 or 5 × 10^k ms that is at least 1/60 of the run
   */
  readonly timelineBucketMs?: number;
}

/** Latency figures of a run, in ms (the client's view; refused calls left out). */
export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

/** How the calls of a run ended. The five counts add up to the number of calls. */
export interface OutcomeCounts {
  /** Good answers within the deadline. */
  readonly ok: number;
  /** Good answers after the deadline (only when `cancelAtDeadline` is false). */
  readonly late: number;
  /** Calls the client gave up on at the deadline. */
  readonly timedOut: number;
  /** Error answers and refused connections within the deadline. */
  readonly failed: number;
  /** Calls the pool could not place (`NoBackendAvailableError`). */
  readonly rejected: number;
}

/** Per-backend figures of one run. */
export interface BackendResult {
  readonly id: string;
  /** Calls sent to the backend. */
  readonly requests: number;
  /** Its share of all placed calls. */
  readonly share: number;
  /** Calls to it that did not succeed within the deadline. */
  readonly failures: number;
  /** The most calls it had in flight at once, as the pool counted them. */
  readonly peakInFlight: number;
}

/** A stretch of the run between two changes (phase starts and ends, joins, leaves). */
export interface WindowResult {
  readonly label: string;
  readonly from: number;
  readonly to: number;
  /** Calls that arrived in the window. */
  readonly requests: number;
  /** Share of those calls that succeeded. */
  readonly successRate: number;
  /** Share of the window's placed calls per backend id. */
  readonly share: Readonly<Record<string, number>>;
  /**
   * Traffic moved since the previous window: the total-variation distance between the two
   * windows' per-backend shares, ½ Σ |share_now − share_before|. 0 for the first window.
   */
  readonly moved: number;
  /**
   * With keys: among keys seen in both this window and the previous one, the share whose first
   * backend here differs from their last backend there. Undefined without keys or for the first
   * window.
   */
  readonly keysMoved: number | undefined;
}

/** One bucket of the timeline. */
export interface TimelineBucket {
  /** Start of the bucket (ms). */
  readonly from: number;
  /** Calls that arrived in the bucket. */
  readonly requests: number;
  /** Of those, calls that succeeded. */
  readonly succeeded: number;
  /** Calls per backend, in the order of the scenario's backends. */
  readonly byBackend: readonly number[];
}

/** The figures of one algorithm on one scenario. */
export interface AlgorithmResult {
  /** The candidate's name. */
  readonly name: string;
  /** The algorithm's own `name`. */
  readonly algorithm: string;
  /** Calls sent. */
  readonly requests: number;
  /** Calls that got a good answer within the deadline. */
  readonly succeeded: number;
  /** `succeeded / requests`. */
  readonly successRate: number;
  readonly outcomes: OutcomeCounts;
  readonly latency: LatencySummary;
  /** In the order of the scenario's backends. */
  readonly backends: readonly BackendResult[];
  /**
   * Load skew, max/mean over the backends (1 is perfectly even): of request rates while each
   * backend was in the pool (so one that joined late does not look idle), and of peak in-flight.
   */
  readonly skew: { readonly requests: number; readonly peakInFlight: number };
  readonly windows: readonly WindowResult[];
  /**
   * With keys: share of calls whose key was seen before and that went to a different backend
   * than that key's previous call. 0 is perfect affinity; about 1 − 1/n is none.
   */
  readonly keyChurn: number | undefined;
  readonly timeline: readonly TimelineBucket[];
  /** Calls still in flight in the pool after the run (0 unless a lease leaked). */
  readonly inFlightAtEnd: number;
}

/** What {@link simulate} returns. */
export interface SimulationReport {
  readonly scenario: string;
  readonly description: string;
  readonly seed: number;
  readonly deadlineMs: number;
  readonly cancelAtDeadline: boolean;
  /**
   * Length of the run: the scenario's `durationMs`, or, for a run bounded by `requests` only, the
   * time of the last arrival rounded up to a whole ms (at least 1 ms).
   */
  readonly durationMs: number;
  /** Backend ids, in the scenario's order. */
  readonly backendIds: readonly string[];
  /** The backend the charts follow, if any. */
  readonly focus: string | undefined;
  /** Labelled phases of the focus backend, for charts. */
  readonly focusPhases: readonly { from: number; to: number; label: string }[];
  readonly timelineBucketMs: number;
  /** One result per candidate, in the order given. */
  readonly results: readonly AlgorithmResult[];
}

/** A horizontal reference line, e.g. a deadline or a fair share. */
export interface ReferenceLine {
  readonly value: number;
  readonly label: string;
}

/** Input of {@link barChart}. */
export interface BarChartSpec {
  readonly title: string;
  /** A second line under the title. @default none */
  readonly subtitle?: string;
  /** One group of bars per category (e.g. per algorithm). */
  readonly categories: readonly string[];
  /** One bar per series in each group, `values[i]` for `categories[i]`. */
  readonly series: readonly { readonly name: string; readonly values: readonly number[] }[];
  readonly yLabel: string;
  /** Formats bar labels. @default up to 1 decimal */
  readonly format?: (value: number) => string;
  /** Formats axis ticks. @default `format` */
  readonly tickFormat?: (value: number) => string;
  /** Bottom of the value axis; a value above 0 is stated in the subtitle line. @default 0 */
  readonly yMin?: number;
  /** Top of the value axis. @default a round number above the largest value */
  readonly yMax?: number;
  /** Dashed horizontal lines, named in the legend. @default none */
  readonly refLines?: readonly ReferenceLine[];
  /** Print each bar's value above it. @default true */
  readonly valueLabels?: boolean;
  /** @default 720 */
  readonly width?: number;
  /** @default 380 */
  readonly height?: number;
}

/** Input of {@link lineChart}. */
export interface LineChartSpec {
  readonly title: string;
  /** A second line under the title. @default none */
  readonly subtitle?: string;
  readonly series: readonly {
    readonly name: string;
    readonly points: readonly (readonly [number, number])[];
  }[];
  readonly xLabel: string;
  readonly yLabel: string;
  /** Formats x ticks. @default up to 1 decimal */
  readonly formatX?: (value: number) => string;
  /** Formats y ticks. @default up to 1 decimal */
  readonly formatY?: (value: number) => string;
  /** Shaded stretches of x, e.g. an incident. @default none */
  readonly bands?: readonly {
    readonly from: number;
    readonly to: number;
    readonly label: string;
  }[];
  readonly refLines?: readonly ReferenceLine[];
  /** @default 0 */
  readonly yMin?: number;
  /** @default a round number above the largest value */
  readonly yMax?: number;
  /** @default 720 */
  readonly width?: number;
  /** @default 380 */
  readonly height?: number;
}
