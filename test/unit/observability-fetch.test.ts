/**
 * The fetch side of the instrumentation, driven by a stand-in emitter that emits the balanced
 * fetch's event shapes (src/fetch/types.ts), so these tests do not depend on the network.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as otel from '@opentelemetry/api';
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { EventEmitter } from 'eventemitter3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BalancedFetch, BalancedFetchEvents } from '../../src/fetch/types.js';
import {
  BackendPool,
  type BackendView,
  createBalancedFetch,
  instrument,
  instrumentFetch,
  type MeterLike,
  type OpenTelemetryApiLike,
  RoundRobin,
  SPAN_ATTRIBUTES,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';

/** A context manager over AsyncLocalStorage, so the active span follows awaits. */
class AlsContextManager implements otel.ContextManager {
  readonly #storage = new AsyncLocalStorage<otel.Context>();
  active(): otel.Context {
    return this.#storage.getStore() ?? otel.ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: otel.Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.#storage.run(context, () => fn.apply(thisArg, args));
  }
  bind<T>(context: otel.Context, target: T): T {
    if (typeof target !== 'function') return target;
    const run = (...args: unknown[]): unknown =>
      this.with(context, target as (...a: unknown[]) => unknown, undefined, ...args);
    return run as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#storage.disable();
    return this;
  }
}

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(spans)],
});
const tracer = tracerProvider.getTracer('test');
const handles: Array<{ close(): void }> = [];

beforeAll(() => {
  otel.context.setGlobalContextManager(new AlsContextManager());
});
afterAll(async () => {
  otel.context.disable();
  await tracerProvider.shutdown();
});
const pools: BackendPool[] = [];
afterEach(async () => {
  for (const h of handles.splice(0)) h.close();
  spans.reset();
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

/** A stand-in balanced fetch: typed as the real one, events emitted by the test. */
function standInFetch(): BalancedFetch & { events: EventEmitter<BalancedFetchEvents> } {
  const events = new EventEmitter<BalancedFetchEvents>();
  return Object.assign(async () => new Response('ok'), {
    events,
    retryBudget: undefined,
    explainHedging: () => undefined,
  });
}

function setup(name = 'users') {
  const pool = new BackendPool({
    name,
    backends: ['http://10.0.0.1:80', 'http://10.0.0.2:80'],
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock: new ManualClock(),
    skew: false,
  });
  pools.push(pool);
  const a = pool.get('10.0.0.1:80')!;
  const b = pool.get('10.0.0.2:80')!;
  const request = new Request('http://users.internal/api/42');
  return { pool, a, b, request, fetch: standInFetch() };
}

function sdk(): { reader: TestReader; meter: MeterLike } {
  const reader = new TestReader();
  return { reader, meter: new MeterProvider({ readers: [reader] }).getMeter('test') };
}

async function retryPoints(reader: TestReader): Promise<Record<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const out: Record<string, number> = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) {
      if (m.descriptor.name !== 'loadwise.retries') continue;
      for (const p of m.dataPoints as DataPoint<number>[]) {
        const { pool, backend, reason } = p.attributes;
        out[`${pool}|${backend}|${reason}`] = p.value;
      }
    }
  }
  return out;
}

function retry(backend: BackendView, request: Request, attempt: number, reason: string) {
  return { request, backend, attempt, reason, delayMs: 10 * attempt };
}

describe('instrumenting a balanced fetch', () => {
  it('accepts the OpenTelemetry API module as it is', () => {
    const api: OpenTelemetryApiLike = otel;
    expect(typeof api.trace.getActiveSpan).toBe('function');
  });

  it('counts retries by pool, failing backend and reason', async () => {
    const { reader, meter } = sdk();
    const { pool, a, b, request, fetch } = setup();
    handles.push(instrument({ pool, fetch, meter, spans: false }));
    fetch.events.emit('retry', retry(a, request, 1, 'connect'));
    fetch.events.emit('retry', retry(b, request, 2, 'status 503'));
    fetch.events.emit('retry', retry(a, request, 1, 'connect'));
    expect(await retryPoints(reader)).toEqual({
      'users|10.0.0.1:80|connect': 2,
      'users|10.0.0.2:80|status 503': 1,
    });
  });

  it('counts hedges by pool and the backend that was slow, and marks the span', async () => {
    const { reader, meter } = sdk();
    const { pool, a, b, request, fetch } = setup();
    handles.push(instrument({ pool, fetch, meter, api: otel }));
    await tracer.startActiveSpan('GET /api/42', async (span) => {
      fetch.events.emit('hedge', { request, backend: b, slow: a, attempt: 2, delayMs: 12 });
      span.end();
    });
    fetch.events.emit('hedge', { request, backend: b, slow: a, attempt: 2, delayMs: 12 });
    const { resourceMetrics } = await reader.collect();
    const points: Record<string, number> = {};
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const m of scope.metrics) {
        if (m.descriptor.name !== 'loadwise.hedges') continue;
        for (const p of m.dataPoints as DataPoint<number>[]) {
          points[`${p.attributes['pool']}|${p.attributes['backend']}`] = p.value;
        }
      }
    }
    expect(points).toEqual({ 'users|10.0.0.1:80': 2 });
    const events = spans.getFinishedSpans().flatMap((s) => s.events);
    expect(events.map((e) => [e.name, e.attributes])).toEqual([
      [
        'loadwise.hedge',
        {
          'loadwise.backend': '10.0.0.2:80',
          'loadwise.attempt': 2,
          'loadwise.hedge.slow_backend': '10.0.0.1:80',
          'loadwise.hedge.delay_ms': 12,
        },
      ],
    ]);
  });

  it('names the pool of a backend from `pools`, else from `poolName`', async () => {
    const { reader, meter } = sdk();
    const { pool, a, request, fetch } = setup('users');
    const other = new BackendPool({ backends: ['http://10.9.9.9:80'], skew: false });
    handles.push(instrumentFetch(fetch, { meter, spans: false, pools: [pool], poolName: 'edge' }));
    fetch.events.emit('retry', retry(a, request, 1, 'timeout'));
    fetch.events.emit('retry', retry(other.get('10.9.9.9:80')!, request, 1, 'reset'));
    expect(await retryPoints(reader)).toEqual({
      'users|10.0.0.1:80|timeout': 1,
      'edge|10.9.9.9:80|reset': 1,
    });
    await other.close();
  });

  it('sets the backend and attempt on the active span, across awaits', async () => {
    const { pool, a, b, request, fetch } = setup();
    const telemetry = instrument({ pool, fetch, api: otel });
    handles.push(telemetry);
    // No MeterProvider is registered: spans alone make it active.
    expect(await telemetry.ready).toBe(true);
    await tracer.startActiveSpan('GET /api/42', async (span) => {
      await Promise.resolve();
      fetch.events.emit('attempt', { request, backend: a, attempt: 1, hedge: false });
      await new Promise((resolve) => setImmediate(resolve));
      fetch.events.emit('retry', retry(a, request, 1, 'status 503'));
      fetch.events.emit('attempt', { request, backend: b, attempt: 2, hedge: false });
      span.end();
    });
    const [finished] = spans.getFinishedSpans();
    expect(finished?.attributes).toMatchObject({
      [SPAN_ATTRIBUTES.backend]: '10.0.0.2:80',
      [SPAN_ATTRIBUTES.attempt]: 2,
      [SPAN_ATTRIBUTES.pool]: 'users',
    });
    expect(finished?.events.map((e) => [e.name, e.attributes])).toEqual([
      [
        'loadwise.retry',
        {
          'loadwise.backend': '10.0.0.1:80',
          'loadwise.attempt': 1,
          'loadwise.retry.reason': 'status 503',
          'loadwise.retry.delay_ms': 10,
        },
      ],
    ]);
  });

  it('leaves spans alone with spans: false, and ignores attempts outside any span', async () => {
    const { reader, meter } = sdk();
    const { pool, a, request, fetch } = setup();
    handles.push(instrument({ pool, fetch, api: otel, meter, spans: false }));
    expect(fetch.events.listenerCount('attempt')).toBe(0);
    tracer.startActiveSpan('call', (span) => {
      fetch.events.emit('attempt', { request, backend: a, attempt: 1, hedge: false });
      fetch.events.emit('retry', retry(a, request, 1, 'reset'));
      span.end();
    });
    const [finished] = spans.getFinishedSpans();
    expect(finished?.attributes).toEqual({});
    expect(finished?.events).toEqual([]);
    expect(await retryPoints(reader)).toEqual({ 'users|10.0.0.1:80|reset': 1 });

    handles.push(instrument({ fetch, api: otel }));
    // No active span: nothing to annotate, nothing thrown.
    expect(() =>
      fetch.events.emit('attempt', { request, backend: a, attempt: 1, hedge: false }),
    ).not.toThrow();
  });

  it('loads @opentelemetry/api lazily for spans when only a meter is given', async () => {
    const { reader, meter } = sdk();
    const { a, request, fetch } = setup();
    const telemetry = instrumentFetch(fetch, { meter });
    handles.push(telemetry);
    // Metrics start at once; span attributes once the import resolves.
    fetch.events.emit('retry', retry(a, request, 1, 'connect'));
    expect(await telemetry.ready).toBe(true);
    tracer.startActiveSpan('call', (span) => {
      fetch.events.emit('attempt', { request, backend: a, attempt: 1, hedge: false });
      span.end();
    });
    expect(spans.getFinishedSpans()[0]?.attributes).toMatchObject({
      'loadwise.backend': '10.0.0.1:80',
      'loadwise.pool': 'default',
    });
    expect(await retryPoints(reader)).toEqual({ 'default|10.0.0.1:80|connect': 1 });
  });

  it('detaches from the fetch on close()', async () => {
    const { fetch } = setup();
    const { meter } = sdk();
    const telemetry = instrumentFetch(fetch, { meter, api: otel });
    expect(fetch.events.listenerCount('retry')).toBe(1);
    expect(fetch.events.listenerCount('attempt')).toBe(1);
    telemetry[Symbol.dispose]();
    expect(fetch.events.listenerCount('retry')).toBe(0);
    expect(fetch.events.listenerCount('attempt')).toBe(0);
    expect(await telemetry.ready).toBe(true);
    expect(telemetry.active).toBe(false);
  });

  it('works with the real createBalancedFetch: retry counted, last backend on the span', async () => {
    const { reader, meter } = sdk();
    const { pool } = setup('users');
    // A stand-in platform fetch: 10.0.0.1 answers 503, 10.0.0.2 answers 200.
    const platformFetch = async (url: string): Promise<Response> =>
      new Response('body', { status: new URL(url).hostname === '10.0.0.1' ? 503 : 200 });
    const fetch = createBalancedFetch(pool, { fetch: platformFetch, retries: 1, backoffBaseMs: 0 });
    handles.push(instrument({ pool, fetch, meter, api: otel }));
    const status = await tracer.startActiveSpan('GET /users/42', async (span) => {
      const res = await fetch('/users/42');
      await res.text();
      span.end();
      return res.status;
    });
    expect(status).toBe(200);
    expect(spans.getFinishedSpans()[0]?.attributes).toMatchObject({
      'loadwise.backend': '10.0.0.2:80',
      'loadwise.attempt': 2,
      'loadwise.pool': 'users',
    });
    expect(spans.getFinishedSpans()[0]?.events[0]?.attributes).toMatchObject({
      'loadwise.backend': '10.0.0.1:80',
      'loadwise.retry.reason': 'status 503',
    });
    expect(await retryPoints(reader)).toEqual({ 'users|10.0.0.1:80|status 503': 1 });
    const { resourceMetrics } = await reader.collect();
    const duration = resourceMetrics.scopeMetrics
      .flatMap((sm) => sm.metrics)
      .find((m) => m.descriptor.name === 'loadwise.request.duration');
    const outcomes = (duration?.dataPoints ?? []).map((p) => [
      p.attributes['backend'],
      p.attributes['outcome'],
    ]);
    expect(outcomes.sort()).toEqual([
      ['10.0.0.1:80', 'failure'],
      ['10.0.0.2:80', 'success'],
    ]);
  });
});
