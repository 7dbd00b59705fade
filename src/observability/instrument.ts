import '../disposable.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { blamesBackend } from '../failure.js';
import type { BackendPool } from '../pool/backend-pool.js';
import type { BackendView, PoolEvents } from '../types.js';
import { checkBoolean, checkOptions, checkString, hasMethods } from '../validate.js';
import {
  DEFAULT_DURATION_BUCKETS,
  LOADWISE_METRICS,
  type MetricDescriptor,
  SPAN_ATTRIBUTES,
} from './metrics.js';
import { checkApi, checkMeter, isNoopInstrument, loadOpenTelemetryApi } from './otel-api.js';
import type {
  AttributesLike,
  CounterLike,
  FetchAttemptEvent,
  FetchHedgeEvent,
  FetchRetryEvent,
  HistogramLike,
  Instrumentation,
  InstrumentOptionsLike,
  MeterLike,
  ObservableCallbackLike,
  ObservableFetch,
  ObservableLike,
  ObservableResultLike,
  OpenTelemetryApiLike,
} from './types.js';

/** Options shared by {@link instrument}, {@link instrumentPool} and {@link instrumentFetch}. */
export interface InstrumentOptions {
  /**
   * The `@opentelemetry/api` module (`import * as otel from '@opentelemetry/api'`). The meter
   * comes from its global meter provider and span attributes go to `trace.getActiveSpan()`.
   * @default loaded with a dynamic `import('@opentelemetry/api')`; when that fails, nothing is
   * recorded and {@link Instrumentation.ready} resolves `false`
   */
  api?: OpenTelemetryApiLike;
  /**
   * The meter to record with (any object with `createCounter`, `createHistogram`,
   * `createObservableCounter` and `createObservableGauge`).
   * @default api.metrics.getMeter('loadwise')
   */
  meter?: MeterLike;
  /**
   * Record metrics.
   * @default true
   */
  metrics?: boolean;
  /**
   * Set `loadwise.backend`, `loadwise.attempt` and `loadwise.pool` on the active span of each
   * balanced fetch attempt, and add a `loadwise.retry` span event for each retry.
   * @default true
   */
  spans?: boolean;
  /**
   * Record the `loadwise.request.duration` histogram: one record per released call, which with
   * the JavaScript SDK costs a few microseconds (it hashes the attribute set on every record).
   * `false` keeps the pick path free of metrics work; every other metric is still recorded
   * (requests and failures are read from the pool's counters at collection time).
   * @default true
   */
  histogram?: boolean;
  /**
   * Bucket boundaries of the `loadwise.request.duration` histogram, in seconds, increasing.
   * Passed to the SDK as advice (a View configured in the SDK takes precedence).
   * @default the boundaries advised for `http.client.request.duration` (5 ms to 10 s)
   */
  durationBuckets?: readonly number[];
  /**
   * The `pool` attribute of fetch metrics and spans for backends that belong to none of the
   * instrumented pools.
   * @default 'default'
   */
  poolName?: string;
}

/** What {@link instrument} observes, and how. */
export interface InstrumentTargets extends InstrumentOptions {
  /** The pool or pools whose metrics to record. */
  pool?: BackendPool | readonly BackendPool[];
  /** The balanced fetch or fetches whose retries and attempts to record. */
  fetch?: ObservableFetch | readonly ObservableFetch[];
}

const OPTION_KEYS = [
  'api',
  'meter',
  'metrics',
  'spans',
  'histogram',
  'durationBuckets',
  'poolName',
] as const;

/**
 * Records OpenTelemetry metrics for pools and balanced fetches, and annotates the active span of
 * each fetch attempt. Runs everywhere the core runs; `@opentelemetry/api` is an optional peer
 * dependency: when it is neither given nor importable, nothing is recorded and nothing fails.
 *
 * Metrics (see `LOADWISE_METRICS` and docs/observability.md), each with `pool` and `backend`
 * attributes: `loadwise.requests` and `loadwise.failures` (read from the pool's own counters at
 * collection time, so they cost nothing per call), the `loadwise.request.duration` histogram,
 * `loadwise.retries`, `loadwise.ejections`, `loadwise.state_changes`, `loadwise.skew.detections`,
 * and the gauges `loadwise.backend.in_flight`, `loadwise.backend.healthy`, `loadwise.pool.panic`.
 *
 * With OpenTelemetry's no-op meter (no SDK registered), nothing is attached to the pool at all:
 * the pick path runs as if uninstrumented. Register the SDK's MeterProvider before calling this.
 *
 * @example
 * ```ts
 * import * as otel from '@opentelemetry/api';
 * const pool = new BackendPool({ name: 'users', backends: [...] });
 * const fetch = createBalancedFetch(pool, { retries: 2 });
 * const telemetry = instrument({ pool, fetch, api: otel });
 * // ... later
 * telemetry.close();
 * ```
 */
export function instrument(targets: InstrumentTargets): Instrumentation {
  const t = checkOptions<InstrumentTargets>('instrument options', targets, [
    'pool',
    'fetch',
    ...OPTION_KEYS,
  ]);
  const pools = listOf('pool', t.pool, checkPool);
  const fetches = listOf('fetch', t.fetch, checkFetch);
  if (pools.length === 0 && fetches.length === 0) {
    throw new LoadBalancerConfigError('instrument options', targets, 'at least a pool or a fetch');
  }
  const { pool: _p, fetch: _f, ...options } = t;
  return new OpenTelemetryInstrumentation(pools, fetches, parseOptions(options));
}

/**
 * Records a pool's metrics: {@link instrument} with `{ pool, ...options }`.
 *
 * @example
 * ```ts
 * const telemetry = instrumentPool(pool, { meter: meterProvider.getMeter('my-service') });
 * ```
 */
export function instrumentPool(
  pool: BackendPool,
  options: InstrumentOptions = {},
): Instrumentation {
  const o = checkOptions<InstrumentOptions>('instrumentPool options', options, OPTION_KEYS);
  return new OpenTelemetryInstrumentation([checkPool('pool', pool)], [], parseOptions(o));
}

/**
 * Records a balanced fetch's retries and annotates the active span of each attempt:
 * {@link instrument} with `{ fetch, ...options }`. Pass `pools` to name the `pool` attribute of
 * backends from those pools (the pools' own metrics still need {@link instrumentPool}).
 *
 * @example
 * ```ts
 * const telemetry = instrumentFetch(fetch, { api: otel, pools: [pool] });
 * ```
 */
export function instrumentFetch(
  fetch: ObservableFetch,
  options: InstrumentOptions & { pools?: readonly BackendPool[] } = {},
): Instrumentation {
  const o = checkOptions<InstrumentOptions & { pools?: readonly BackendPool[] }>(
    'instrumentFetch options',
    options,
    [...OPTION_KEYS, 'pools'],
  );
  const { pools, ...rest } = o;
  const parsed = parseOptions(rest);
  parsed.namingPools = listOf('pools', pools, checkPool);
  return new OpenTelemetryInstrumentation([], [checkFetch('fetch', fetch)], parsed);
}

interface ParsedOptions {
  api: OpenTelemetryApiLike | undefined;
  meter: MeterLike | undefined;
  metrics: boolean;
  spans: boolean;
  histogram: boolean;
  buckets: readonly number[];
  poolName: string;
  /** Pools used only to name the `pool` attribute of fetch backends. */
  namingPools: readonly BackendPool[];
}

function parseOptions(o: InstrumentOptions): ParsedOptions {
  return {
    api: o.api === undefined ? undefined : checkApi('api', o.api),
    meter: o.meter === undefined ? undefined : checkMeter('meter', o.meter),
    metrics: o.metrics === undefined ? true : checkBoolean('metrics', o.metrics),
    spans: o.spans === undefined ? true : checkBoolean('spans', o.spans),
    histogram: o.histogram === undefined ? true : checkBoolean('histogram', o.histogram),
    buckets:
      o.durationBuckets === undefined
        ? DEFAULT_DURATION_BUCKETS
        : checkBuckets('durationBuckets', o.durationBuckets),
    poolName: o.poolName === undefined ? 'default' : checkString('poolName', o.poolName),
    namingPools: [],
  };
}

function checkBuckets(field: string, value: unknown): readonly number[] {
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (x, i) =>
        typeof x === 'number' && Number.isFinite(x) && (i === 0 || x > (value[i - 1] as number)),
    );
  if (!ok) {
    throw new LoadBalancerConfigError(field, value, 'a non-empty array of increasing numbers');
  }
  return Object.freeze([...(value as number[])]);
}

function listOf<T>(field: string, value: unknown, check: (field: string, x: unknown) => T): T[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.map((x, i) => check(`${field}[${i}]`, x));
  return [check(field, value)];
}

function checkPool(field: string, value: unknown): BackendPool {
  if (
    !hasMethods(value, ['on', 'off', 'backends', 'get']) ||
    typeof (value as { name?: unknown }).name !== 'string'
  ) {
    throw new LoadBalancerConfigError(field, value, 'a BackendPool');
  }
  return value as BackendPool;
}

function checkFetch(field: string, value: unknown): ObservableFetch {
  const events = (value as { events?: Partial<Record<string, unknown>> } | null)?.events;
  if (
    (typeof value !== 'function' && typeof value !== 'object') ||
    value === null ||
    typeof events !== 'object' ||
    events === null ||
    typeof events['on'] !== 'function' ||
    typeof events['off'] !== 'function'
  ) {
    throw new LoadBalancerConfigError(field, value, 'a balanced fetch (createBalancedFetch())');
  }
  return value as ObservableFetch;
}

/** Cached attribute sets of one backend, so recording allocates nothing per call. */
interface BackendAttributes {
  readonly poolName: string;
  readonly base: AttributesLike;
  readonly success: AttributesLike;
  readonly failure: AttributesLike;
}

interface SyncInstruments {
  readonly duration: HistogramLike;
  readonly retries: CounterLike;
  readonly hedges: CounterLike;
  readonly ejections: CounterLike;
  readonly stateChanges: CounterLike;
  readonly skew: CounterLike;
}

const METER_NAME = 'loadwise';

class OpenTelemetryInstrumentation implements Instrumentation {
  readonly ready: Promise<boolean>;
  readonly #options: ParsedOptions;
  readonly #pools: BackendPool[];
  readonly #fetches: readonly ObservableFetch[];
  readonly #attributes = new WeakMap<BackendView, BackendAttributes>();
  /** Undo functions of everything attached, run by close(). */
  readonly #undo: Array<() => void> = [];
  #instruments: SyncInstruments | undefined;
  #trace: OpenTelemetryApiLike['trace'] | undefined;
  #retryAttached = false;
  #attemptAttached = false;
  #metricsStarted = false;
  #active = false;
  #closed = false;

  constructor(
    pools: readonly BackendPool[],
    fetches: readonly ObservableFetch[],
    options: ParsedOptions,
  ) {
    this.#options = options;
    this.#pools = [...new Set(pools)];
    this.#fetches = [...new Set(fetches)];
    const { api, meter } = options;
    const wantSpans = options.spans && this.#fetches.length > 0;
    if (options.metrics && (meter !== undefined || api !== undefined)) this.#startMetrics(api);
    if (wantSpans && api !== undefined) this.#trace = api.trace;
    this.#attachFetches();
    const needApi = api === undefined && ((options.metrics && meter === undefined) || wantSpans);
    if (!needApi) {
      this.ready = Promise.resolve(this.#active);
      return;
    }
    this.ready = loadOpenTelemetryApi().then((loaded) => {
      if (this.#closed || loaded === undefined) return false;
      if (options.metrics && !this.#metricsStarted) this.#startMetrics(loaded);
      if (wantSpans) this.#trace = loaded.trace;
      this.#attachFetches();
      return this.#active;
    });
  }

  get active(): boolean {
    return this.#active;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#active = false;
    for (const undo of this.#undo.splice(0)) undo();
    this.#pools.length = 0;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---------------------------------------------------------------- metrics

  #startMetrics(api: OpenTelemetryApiLike | undefined): void {
    this.#metricsStarted = true;
    const meter = this.#options.meter ?? api?.metrics.getMeter(METER_NAME);
    if (meter === undefined) return;
    const duration = meter.createHistogram(
      LOADWISE_METRICS.duration.name,
      instrumentOptions(LOADWISE_METRICS.duration, {
        explicitBucketBoundaries: [...this.#options.buckets],
      }),
    );
    // No SDK registered: the meter drops everything, so attach nothing (zero cost per pick).
    if (isNoopInstrument(api, duration)) return;
    this.#instruments = {
      duration,
      retries: meter.createCounter(
        LOADWISE_METRICS.retries.name,
        instrumentOptions(LOADWISE_METRICS.retries),
      ),
      hedges: meter.createCounter(
        LOADWISE_METRICS.hedges.name,
        instrumentOptions(LOADWISE_METRICS.hedges),
      ),
      ejections: meter.createCounter(
        LOADWISE_METRICS.ejections.name,
        instrumentOptions(LOADWISE_METRICS.ejections),
      ),
      stateChanges: meter.createCounter(
        LOADWISE_METRICS.stateChanges.name,
        instrumentOptions(LOADWISE_METRICS.stateChanges),
      ),
      skew: meter.createCounter(
        LOADWISE_METRICS.skew.name,
        instrumentOptions(LOADWISE_METRICS.skew),
      ),
    };
    this.#observe(meter, LOADWISE_METRICS.requests, (b) => b.requests);
    this.#observe(meter, LOADWISE_METRICS.failures, (b) => b.failures);
    this.#observe(meter, LOADWISE_METRICS.inFlight, (b) => b.inFlight);
    this.#observe(meter, LOADWISE_METRICS.healthy, (b) => (b.state === 'healthy' ? 1 : 0));
    const panic = meter.createObservableGauge(
      LOADWISE_METRICS.panic.name,
      instrumentOptions(LOADWISE_METRICS.panic),
    );
    const observePanic: ObservableCallbackLike = (result) => {
      for (const pool of this.#pools) result.observe(pool.panic ? 1 : 0, { pool: pool.name });
    };
    this.#addCallback(panic, observePanic);
    for (const pool of [...this.#pools]) this.#attachPool(pool);
  }

  /** An observable instrument reading one figure of every backend of every pool. */
  #observe(
    meter: MeterLike,
    descriptor: MetricDescriptor,
    read: (backend: BackendView) => number,
  ): void {
    const options = instrumentOptions(descriptor);
    const observable =
      descriptor.kind === 'observableCounter'
        ? meter.createObservableCounter(descriptor.name, options)
        : meter.createObservableGauge(descriptor.name, options);
    const callback = (result: ObservableResultLike): void => {
      for (const pool of this.#pools) {
        for (const b of pool.backends()) result.observe(read(b), this.#attrs(b, pool.name).base);
      }
    };
    this.#addCallback(observable, callback);
  }

  #addCallback(observable: ObservableLike, callback: ObservableCallbackLike): void {
    observable.addCallback(callback);
    this.#undo.push(() => observable.removeCallback(callback));
    this.#active = true;
  }

  #attachPool(pool: BackendPool): void {
    const ins = this.#instruments!;
    const name = pool.name;
    const onRelease: PoolEvents['release'] = (e) => {
      // The pool leaves caller-aborted and local failures out of its statistics; so does the
      // histogram.
      if (!blamesBackend(e.outcome.failure)) return;
      const a = this.#attrs(e.backend, name);
      ins.duration.record(e.latencyMs / 1000, e.outcome.ok ? a.success : a.failure);
    };
    const onState: PoolEvents['state'] = (e) => {
      ins.stateChanges.add(1, { pool: name, backend: e.backend.id, from: e.from, to: e.to });
      if (e.to === 'ejected') ins.ejections.add(1, this.#attrs(e.backend, name).base);
    };
    const onSkew: PoolEvents['skew'] = (e) => {
      ins.skew.add(1, this.#attrs(e.backend, name).base);
    };
    const detach = (): void => {
      pool.off('release', onRelease);
      pool.off('state', onState);
      pool.off('skew', onSkew);
      pool.off('close', onClose);
      const i = this.#pools.indexOf(pool);
      if (i >= 0) this.#pools.splice(i, 1);
    };
    // A closed pool stops reporting: its series end with it.
    const onClose = (): void => detach();
    if (this.#options.histogram) pool.on('release', onRelease);
    pool.on('state', onState);
    pool.on('skew', onSkew);
    pool.on('close', onClose);
    this.#undo.push(detach);
    this.#active = true;
    if (pool.closed) detach();
  }

  // ---------------------------------------------------------------- fetch

  /**
   * Listens to the fetches once something can use their events: the retry counter (at once when
   * a meter is given) or span annotations (once the API is loaded). Called again after loading.
   */
  #attachFetches(): void {
    if (this.#closed || this.#fetches.length === 0) return;
    const wantRetry = this.#instruments !== undefined || this.#trace !== undefined;
    if (wantRetry && !this.#retryAttached) {
      this.#retryAttached = true;
      const onRetry = (e: FetchRetryEvent): void => this.#onRetry(e);
      const onHedge = (e: FetchHedgeEvent): void => this.#onHedge(e);
      for (const { events } of this.#fetches) {
        events.on('retry', onRetry);
        events.on('hedge', onHedge);
        this.#undo.push(() => {
          events.off('retry', onRetry);
          events.off('hedge', onHedge);
        });
      }
      this.#active = true;
    }
    if (this.#trace !== undefined && !this.#attemptAttached) {
      this.#attemptAttached = true;
      const onAttempt = (e: FetchAttemptEvent): void => this.#onAttempt(e);
      for (const { events } of this.#fetches) {
        events.on('attempt', onAttempt);
        this.#undo.push(() => events.off('attempt', onAttempt));
      }
      this.#active = true;
    }
  }

  #onRetry(e: FetchRetryEvent): void {
    const retries = this.#instruments?.retries;
    if (retries !== undefined) {
      const a = this.#attrs(e.backend, undefined);
      retries.add(1, { pool: a.poolName, backend: e.backend.id, reason: e.reason });
    }
    const span = this.#trace?.getActiveSpan();
    if (span?.isRecording()) {
      span.addEvent(SPAN_ATTRIBUTES.retryEvent, {
        [SPAN_ATTRIBUTES.backend]: e.backend.id,
        [SPAN_ATTRIBUTES.attempt]: e.attempt,
        [SPAN_ATTRIBUTES.retryReason]: e.reason,
        [SPAN_ATTRIBUTES.retryDelayMs]: e.delayMs,
      });
    }
  }

  #onHedge(e: FetchHedgeEvent): void {
    const hedges = this.#instruments?.hedges;
    if (hedges !== undefined) {
      const a = this.#attrs(e.slow, undefined);
      hedges.add(1, { pool: a.poolName, backend: e.slow.id });
    }
    const span = this.#trace?.getActiveSpan();
    if (span?.isRecording()) {
      span.addEvent(SPAN_ATTRIBUTES.hedgeEvent, {
        [SPAN_ATTRIBUTES.backend]: e.backend.id,
        [SPAN_ATTRIBUTES.attempt]: e.attempt,
        [SPAN_ATTRIBUTES.hedgeSlowBackend]: e.slow.id,
        [SPAN_ATTRIBUTES.hedgeDelayMs]: e.delayMs,
      });
    }
  }

  #onAttempt(e: FetchAttemptEvent): void {
    const span = this.#trace?.getActiveSpan();
    if (!span?.isRecording()) return;
    span.setAttribute(SPAN_ATTRIBUTES.backend, e.backend.id);
    span.setAttribute(SPAN_ATTRIBUTES.attempt, e.attempt);
    span.setAttribute(SPAN_ATTRIBUTES.pool, this.#attrs(e.backend, undefined).poolName);
  }

  // ---------------------------------------------------------------- attributes

  #attrs(backend: BackendView, poolName: string | undefined): BackendAttributes {
    let a = this.#attributes.get(backend);
    if (a === undefined) {
      const pool = poolName ?? this.#poolNameOf(backend);
      const base = { pool, backend: backend.id };
      a = Object.freeze({
        poolName: pool,
        base: Object.freeze(base),
        success: Object.freeze({ ...base, outcome: 'success' }),
        failure: Object.freeze({ ...base, outcome: 'failure' }),
      });
      this.#attributes.set(backend, a);
    }
    return a;
  }

  #poolNameOf(backend: BackendView): string {
    for (const list of [this.#pools, this.#options.namingPools]) {
      for (const pool of list) if (pool.get(backend.id) === backend) return pool.name;
    }
    return this.#options.poolName;
  }
}

function instrumentOptions(
  d: MetricDescriptor,
  advice?: InstrumentOptionsLike['advice'],
): InstrumentOptionsLike {
  const o: InstrumentOptionsLike = { description: d.description, unit: d.unit };
  if (advice !== undefined) o.advice = advice;
  return o;
}
