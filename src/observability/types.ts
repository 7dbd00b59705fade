/**
 * Structural types for the parts of `@opentelemetry/api` that loadwise uses. They mirror the
 * API's own interfaces (a real `Meter`, `Span` or the module namespace fits them), so the public
 * types of loadwise never name the optional peer dependency: a project without
 * `@opentelemetry/api` still type-checks.
 */
import '../disposable.js';
import type { BackendView } from '../types.js';

/** Attribute values, as in `@opentelemetry/api`'s `AttributeValue` (the scalar ones). */
export type AttributeValueLike = string | number | boolean;

/** A set of metric or span attributes. */
export type AttributesLike = Readonly<Record<string, AttributeValueLike>>;

/** Options of an instrument (`MetricOptions` in `@opentelemetry/api`). */
export interface InstrumentOptionsLike {
  description?: string;
  unit?: string;
  /** Bucket boundaries suggested to the SDK (`advice` needs `@opentelemetry/api` >= 1.7). */
  advice?: { explicitBucketBoundaries?: number[] };
}

/** A synchronous counter (`Counter`). */
export interface CounterLike {
  add(value: number, attributes?: AttributesLike): void;
}

/** A histogram (`Histogram`). */
export interface HistogramLike {
  record(value: number, attributes?: AttributesLike): void;
}

/** What an observable callback reports to (`ObservableResult`). */
export interface ObservableResultLike {
  observe(value: number, attributes?: AttributesLike): void;
}

/** A callback of an observable instrument. */
export type ObservableCallbackLike = (result: ObservableResultLike) => void | Promise<void>;

/** An asynchronous instrument (`ObservableCounter`, `ObservableGauge`). */
export interface ObservableLike {
  addCallback(callback: ObservableCallbackLike): void;
  removeCallback(callback: ObservableCallbackLike): void;
}

/**
 * The instrument factory loadwise records with: a subset of `Meter` from `@opentelemetry/api`.
 * Any object with these four methods works, which lets other metric libraries stand in (see
 * `examples/prometheus.ts`, which adapts prom-client).
 */
export interface MeterLike {
  createCounter(name: string, options?: InstrumentOptionsLike): CounterLike;
  createHistogram(name: string, options?: InstrumentOptionsLike): HistogramLike;
  createObservableCounter(name: string, options?: InstrumentOptionsLike): ObservableLike;
  createObservableGauge(name: string, options?: InstrumentOptionsLike): ObservableLike;
}

/** The parts of a `Span` that loadwise touches. */
export interface SpanLike {
  isRecording(): boolean;
  setAttribute(key: string, value: AttributeValueLike): unknown;
  addEvent(name: string, attributes?: AttributesLike): unknown;
}

/**
 * The parts of the `@opentelemetry/api` module that loadwise uses. Pass the module itself:
 * `import * as otel from '@opentelemetry/api'`.
 */
export interface OpenTelemetryApiLike {
  metrics: { getMeter(name: string, version?: string): MeterLike };
  trace: { getActiveSpan(): SpanLike | undefined };
  /** Present in the real API; used to recognize the no-op meter. */
  createNoopMeter?: () => MeterLike;
}

/** Payload of a balanced fetch's `attempt` event: one attempt is about to go to `backend`. */
export interface FetchAttemptEvent {
  readonly request: Request;
  readonly backend: BackendView;
  /** Whether the attempt is a hedge (an extra attempt sent because an earlier one was slow). */
  readonly hedge?: boolean;
  /** Counts from 1. */
  readonly attempt: number;
}

/** Payload of a balanced fetch's `retry` event: an attempt failed and the call will retry. */
export interface FetchRetryEvent {
  readonly request: Request;
  /** The attempt that failed. */
  readonly attempt: number;
  /** The backend that failed it. */
  readonly backend: BackendView;
  /** The failed attempt's outcome: `connect`, `timeout`, `reset`, `status 503`, ... */
  readonly reason: string;
  /** Back-off before the next attempt. */
  readonly delayMs: number;
}

/**
 * Payload of a balanced fetch's `hedge` event: `slow` had not answered within `delayMs`, so a
 * hedge goes to `backend`.
 */
export interface FetchHedgeEvent {
  readonly request: Request;
  /** The backend the hedge goes to. */
  readonly backend: BackendView;
  /** The backend of the attempt that was slow to answer. */
  readonly slow: BackendView;
  /** The hedge's attempt number. */
  readonly attempt: number;
  readonly delayMs: number;
}

/** Payload of a balanced fetch's `response` event: headers arrived (`latencyMs` to headers). */
export interface FetchResponseEvent {
  readonly request: Request;
  readonly backend: BackendView;
  readonly attempt: number;
  readonly status: number;
  readonly latencyMs: number;
}

/**
 * Payload of a balanced fetch's `failure` event: an attempt failed without a response
 * (`backend` is undefined when none could be picked).
 */
export interface FetchFailureEvent {
  readonly request: Request;
  readonly backend: BackendView | undefined;
  readonly attempt: number;
  readonly error: unknown;
}

/**
 * A balanced fetch as observers see it: anything whose `events` emitter (eventemitter3 or
 * `node:events`) emits `attempt`, `retry`, `response`, `failure` and `hedge` with the payloads
 * above.
 * `createBalancedFetch()` returns one.
 */
export interface ObservableFetch {
  readonly events: {
    on(event: 'attempt', listener: (e: FetchAttemptEvent) => void): unknown;
    on(event: 'retry', listener: (e: FetchRetryEvent) => void): unknown;
    on(event: 'response', listener: (e: FetchResponseEvent) => void): unknown;
    on(event: 'failure', listener: (e: FetchFailureEvent) => void): unknown;
    on(event: 'hedge', listener: (e: FetchHedgeEvent) => void): unknown;
    off(event: 'attempt', listener: (e: FetchAttemptEvent) => void): unknown;
    off(event: 'retry', listener: (e: FetchRetryEvent) => void): unknown;
    off(event: 'response', listener: (e: FetchResponseEvent) => void): unknown;
    off(event: 'failure', listener: (e: FetchFailureEvent) => void): unknown;
    off(event: 'hedge', listener: (e: FetchHedgeEvent) => void): unknown;
  };
}

/** A handle on an instrumentation. */
export interface Instrumentation {
  /**
   * Settles once the OpenTelemetry API is resolved: `true` when recording started, `false` when
   * nothing will be recorded (the API could not be loaded, the meter is OpenTelemetry's no-op
   * one and spans are off, or the handle was closed first). It rejects only when the meter
   * itself throws.
   */
  readonly ready: Promise<boolean>;
  /** Whether listeners and callbacks are attached now. */
  readonly active: boolean;
  /** Detaches every listener and observable callback. Idempotent. */
  close(): void;
  /** Same as {@link Instrumentation.close}, for `using`. */
  [Symbol.dispose](): void;
}
