/**
 * How the instrumentation finds `@opentelemetry/api`: given, loaded lazily, or a no-op meter
 * (no SDK registered), in which case nothing at all is attached to the pool.
 */
import * as otel from '@opentelemetry/api';
import { type DataPoint, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { BackendPool, instrumentPool, RoundRobin } from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';

class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function makePool(): BackendPool {
  const pool = new BackendPool({
    name: 'api',
    backends: ['http://10.0.0.1:80', 'http://10.0.0.2:80'],
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock: new ManualClock(),
    skew: false,
  });
  cleanup.push(() => pool.close());
  return pool;
}

function registerGlobalSdk(): TestReader {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  expect(otel.metrics.setGlobalMeterProvider(provider)).toBe(true);
  cleanup.push(async () => {
    otel.metrics.disable();
    await provider.shutdown();
  });
  return reader;
}

async function requests(reader: TestReader): Promise<Record<string, number>> {
  const { resourceMetrics } = await reader.collect();
  const out: Record<string, number> = {};
  for (const scope of resourceMetrics.scopeMetrics) {
    expect(scope.scope.name).toBe('loadwise');
    for (const m of scope.metrics) {
      if (m.descriptor.name !== 'loadwise.requests') continue;
      for (const p of m.dataPoints as DataPoint<number>[])
        out[String(p.attributes['backend'])] = p.value;
    }
  }
  return out;
}

function listeners(pool: BackendPool): number {
  return pool.eventNames().reduce((n, e) => n + pool.listenerCount(e), 0);
}

describe('resolving the OpenTelemetry API', () => {
  it('attaches nothing when the API has no SDK (the no-op meter)', async () => {
    const pool = makePool();
    const telemetry = instrumentPool(pool, { api: otel });
    expect(await telemetry.ready).toBe(false);
    expect(telemetry.active).toBe(false);
    expect(listeners(pool)).toBe(0);
    pool.acquire().release({ ok: false });
    telemetry.close();
  });

  it('also recognizes an explicit no-op meter', async () => {
    const pool = makePool();
    const telemetry = instrumentPool(pool, { meter: otel.createNoopMeter() });
    expect(await telemetry.ready).toBe(false);
    expect(listeners(pool)).toBe(0);
  });

  it('records through the global MeterProvider of the given API', async () => {
    const reader = registerGlobalSdk();
    const pool = makePool();
    const telemetry = instrumentPool(pool, { api: otel });
    // Synchronous when the API is given: recording starts before ready settles.
    expect(telemetry.active).toBe(true);
    pool.acquire().release();
    expect(await telemetry.ready).toBe(true);
    expect(await requests(reader)).toEqual({ '10.0.0.1:80': 1, '10.0.0.2:80': 0 });
    telemetry.close();
  });

  it('loads @opentelemetry/api lazily when neither api nor meter is given', async () => {
    const reader = registerGlobalSdk();
    const pool = makePool();
    const telemetry = instrumentPool(pool);
    cleanup.push(() => telemetry.close());
    expect(await telemetry.ready).toBe(true);
    pool.acquire().release();
    pool.acquire().release();
    pool.acquire().release();
    expect(await requests(reader)).toEqual({ '10.0.0.1:80': 2, '10.0.0.2:80': 1 });
  });

  it('loads lazily and attaches nothing while no SDK is registered', async () => {
    const pool = makePool();
    const telemetry = instrumentPool(pool);
    expect(await telemetry.ready).toBe(false);
    expect(listeners(pool)).toBe(0);
  });

  it('starts nothing when closed before the API has loaded', async () => {
    registerGlobalSdk();
    const pool = makePool();
    const telemetry = instrumentPool(pool);
    telemetry.close();
    expect(await telemetry.ready).toBe(false);
    expect(listeners(pool)).toBe(0);
  });

  it('propagates an error thrown by the meter', () => {
    const pool = makePool();
    const noop = otel.createNoopMeter();
    const meter = {
      createCounter: noop.createCounter,
      createObservableCounter: noop.createObservableCounter,
      createObservableGauge: noop.createObservableGauge,
      createHistogram: () => {
        throw new Error('meter broken');
      },
    };
    expect(() => instrumentPool(pool, { meter })).toThrow('meter broken');
  });
});
