/**
 * The metrics loadwise records, described once: the instrumentation creates them from this
 * table, the docs list them, and adapters for other metric libraries (prom-client in
 * `examples/prometheus.ts`) read their label names from it.
 */

/** The kind of instrument a metric is recorded with. */
export type MetricKind = 'counter' | 'histogram' | 'observableCounter' | 'observableGauge';

/** One metric loadwise records. */
export interface MetricDescriptor {
  /** OpenTelemetry instrument name, e.g. `loadwise.requests`. */
  readonly name: string;
  readonly kind: MetricKind;
  /** UCUM unit (`s`) or an annotation in braces (`{request}`), per OpenTelemetry conventions. */
  readonly unit: string;
  readonly description: string;
  /** Attribute keys every data point carries. */
  readonly attributes: readonly string[];
}

/** Attribute keys of loadwise metrics. Low cardinality: one value per backend or pool. */
export const METRIC_ATTRIBUTES = {
  /** The pool's `name` option (`'default'` unless set). */
  pool: 'pool',
  /** The backend's id (`host:port` unless set). */
  backend: 'backend',
  /** `success` or `failure`, on the duration histogram. */
  outcome: 'outcome',
  /** Why an attempt was retried (`connect`, `timeout`, `reset`, `status 503`, ...). */
  reason: 'reason',
  /** Previous and new backend state, on state changes. */
  from: 'from',
  to: 'to',
} as const;

/** Span attribute and event names set on the active span of a balanced fetch attempt. */
export const SPAN_ATTRIBUTES = {
  /** Id of the backend the current (last) attempt went to. */
  backend: 'loadwise.backend',
  /** Number of the current (last) attempt, from 1. */
  attempt: 'loadwise.attempt',
  /** Name of the pool the backend belongs to. */
  pool: 'loadwise.pool',
  /** Retry reason, on `loadwise.retry` span events. */
  retryReason: 'loadwise.retry.reason',
  /** Back-off before the next attempt in ms, on `loadwise.retry` span events. */
  retryDelayMs: 'loadwise.retry.delay_ms',
  /** Name of the span event added for each retry. */
  retryEvent: 'loadwise.retry',
  /** Name of the span event added for each hedge. */
  hedgeEvent: 'loadwise.hedge',
  /** The backend that was slow to answer, on `loadwise.hedge` span events. */
  hedgeSlowBackend: 'loadwise.hedge.slow_backend',
  /** The delay the hedge waited in ms, on `loadwise.hedge` span events. */
  hedgeDelayMs: 'loadwise.hedge.delay_ms',
} as const;

const { pool, backend, outcome, reason, from, to } = METRIC_ATTRIBUTES;

/**
 * Bucket boundaries of the duration histogram, in seconds: those OpenTelemetry's semantic
 * conventions advise for `http.client.request.duration`.
 */
export const DEFAULT_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
]);

/**
 * Every metric loadwise records. In Prometheus (through OpenTelemetry's exporter or the
 * prom-client example) dots become underscores, counters end in `_total` and the histogram in
 * `_seconds`: `loadwise_requests_total`, `loadwise_request_duration_seconds_bucket`, ...
 */
export const LOADWISE_METRICS = Object.freeze({
  requests: {
    name: 'loadwise.requests',
    kind: 'observableCounter',
    unit: '{request}',
    description: 'Calls handed to a backend (leases taken from the pool).',
    attributes: [pool, backend],
  },
  failures: {
    name: 'loadwise.failures',
    kind: 'observableCounter',
    unit: '{request}',
    description: 'Calls released as failed (calls aborted by the caller are not counted).',
    attributes: [pool, backend],
  },
  duration: {
    name: 'loadwise.request.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Latency of calls from acquire to release, as reported to the pool.',
    attributes: [pool, backend, outcome],
  },
  retries: {
    name: 'loadwise.retries',
    kind: 'counter',
    unit: '{retry}',
    description: 'Balanced fetch attempts that failed and were retried, by the failing backend.',
    attributes: [pool, backend, reason],
  },
  hedges: {
    name: 'loadwise.hedges',
    kind: 'counter',
    unit: '{hedge}',
    description:
      'Hedges sent by balanced fetches, by the backend that was slow to answer (the extra load hedging adds).',
    attributes: [pool, backend],
  },
  ejections: {
    name: 'loadwise.ejections',
    kind: 'counter',
    unit: '{ejection}',
    description: 'Times a backend was ejected (outlier detection, Retry-After).',
    attributes: [pool, backend],
  },
  stateChanges: {
    name: 'loadwise.state_changes',
    kind: 'counter',
    unit: '{change}',
    description: 'Backend state transitions (healthy, unhealthy, draining, ejected).',
    attributes: [pool, backend, from, to],
  },
  skew: {
    name: 'loadwise.skew.detections',
    kind: 'counter',
    unit: '{detection}',
    description: 'Windows in which a backend took more than the skew factor times its fair share.',
    attributes: [pool, backend],
  },
  inFlight: {
    name: 'loadwise.backend.in_flight',
    kind: 'observableGauge',
    unit: '{request}',
    description: 'Calls in flight on a backend now.',
    attributes: [pool, backend],
  },
  healthy: {
    name: 'loadwise.backend.healthy',
    kind: 'observableGauge',
    unit: '{backend}',
    description: 'Whether a backend is healthy now (1) or not (0); sum by pool to count them.',
    attributes: [pool, backend],
  },
  panic: {
    name: 'loadwise.pool.panic',
    kind: 'observableGauge',
    unit: '{pool}',
    description: 'Whether the pool is in panic mode now (1), routing across unhealthy backends.',
    attributes: [pool],
  },
} as const satisfies Record<string, MetricDescriptor>);
