import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BackendPool,
  type BackendPoolOptions,
  DEFAULT_DURATION_BUCKETS,
  instrument,
  instrumentPool,
  LOADWISE_METRICS,
  LoadBalancerConfigError,
  type MeterLike,
  RoundRobin,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

/** A reader collected by hand: no export timer. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

const providers: MeterProvider[] = [];
const pools: BackendPool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(providers.splice(0).map((p) => p.shutdown()));
});

function sdk(): { reader: TestReader; meter: MeterLike } {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  providers.push(provider);
  // The SDK's Meter satisfies loadwise's structural MeterLike.
  const meter: MeterLike = provider.getMeter('test');
  return { reader, meter };
}

function makePool(options: BackendPoolOptions = {}): { pool: BackendPool; clock: ManualClock } {
  const clock = new ManualClock();
  const pool = new BackendPool({
    name: 'api',
    backends: ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80'],
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    random: seededRandom(7),
    skew: false,
    ...options,
  });
  pools.push(pool);
  return { pool, clock };
}

async function collect(reader: TestReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const out = new Map<string, MetricData>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const m of scope.metrics) out.set(m.descriptor.name, m);
  }
  return out;
}

/** Data point values keyed by the listed attributes, joined with `|`. */
function byAttrs(metric: MetricData | undefined, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of (metric?.dataPoints ?? []) as DataPoint<unknown>[]) {
    out[keys.map((k) => String(p.attributes[k])).join('|')] = p.value;
  }
  return out;
}

const IDS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'] as const;

describe('instrumentPool with the OpenTelemetry SDK', () => {
  it('counts requests and failures per backend from the pool', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    const telemetry = instrumentPool(pool, { meter });
    expect(await telemetry.ready).toBe(true);
    expect(telemetry.active).toBe(true);
    for (let i = 0; i < 30; i++) {
      const lease = pool.acquire();
      const failing = lease.backend.id === IDS[1] && i % 2 === 1;
      lease.release(failing ? { ok: false, failure: 'http', status: 503 } : { ok: true });
    }
    // An aborted call counts as a request but not as a failure.
    pool.acquire().release({ ok: false, failure: 'aborted' });

    const m = await collect(reader);
    expect(m.get('loadwise.requests')?.descriptor.unit).toBe('{request}');
    expect(byAttrs(m.get('loadwise.requests'), ['pool', 'backend'])).toEqual({
      [`api|${IDS[0]}`]: 11,
      [`api|${IDS[1]}`]: 10,
      [`api|${IDS[2]}`]: 10,
    });
    // 10.0.0.2 serves i = 1, 4, 7, ..., 28 and fails the odd ones: 1, 7, 13, 19, 25.
    expect(byAttrs(m.get('loadwise.failures'), ['pool', 'backend'])).toEqual({
      [`api|${IDS[0]}`]: 0,
      [`api|${IDS[1]}`]: 5,
      [`api|${IDS[2]}`]: 0,
    });
  });

  it('records latency in seconds per backend and outcome, with the advised buckets', async () => {
    const { reader, meter } = sdk();
    const { pool, clock } = makePool();
    instrumentPool(pool, { meter });
    const lease = pool.acquire(); // 10.0.0.1
    clock.advance(30);
    lease.release({ ok: true }); // 30 ms measured on the pool's clock
    pool.acquire().release({ ok: false, latencyMs: 2000, failure: 'timeout' }); // 10.0.0.2
    pool.acquire().release({ ok: true, latencyMs: 7 }); // 10.0.0.3
    pool.acquire().release({ ok: true, latencyMs: 3 }); // 10.0.0.1
    pool.acquire().release({ ok: false, failure: 'aborted', latencyMs: 5 }); // not recorded

    const hist = (await collect(reader)).get('loadwise.request.duration');
    expect(hist?.descriptor.unit).toBe('s');
    const points = byAttrs(hist, ['backend', 'outcome']) as Record<string, Histogram>;
    expect(Object.keys(points).sort()).toEqual(
      [`${IDS[0]}|success`, `${IDS[1]}|failure`, `${IDS[2]}|success`].sort(),
    );
    const first = points[`${IDS[0]}|success`]!;
    expect(first.count).toBe(2);
    expect(first.sum).toBeCloseTo(0.033, 9);
    expect(first.min).toBeCloseTo(0.003, 9);
    expect(first.max).toBeCloseTo(0.03, 9);
    expect(first.buckets.boundaries).toEqual([...DEFAULT_DURATION_BUCKETS]);
    // 0.003 s falls in the first bucket (<= 5 ms), 0.030 s in (25 ms, 50 ms].
    expect(first.buckets.counts[0]).toBe(1);
    expect(first.buckets.counts[3]).toBe(1);
    expect(points[`${IDS[1]}|failure`]?.sum).toBeCloseTo(2, 9);
    const attrs = (hist!.dataPoints[0] as DataPoint<Histogram>).attributes;
    expect(Object.keys(attrs).sort()).toEqual(['backend', 'outcome', 'pool']);
  });

  it('takes custom bucket boundaries', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    instrumentPool(pool, { meter, durationBuckets: [0.1, 1] });
    pool.acquire().release({ ok: true, latencyMs: 500 });
    const [point] = (await collect(reader)).get('loadwise.request.duration')!
      .dataPoints as DataPoint<Histogram>[];
    expect(point?.value.buckets).toEqual({ boundaries: [0.1, 1], counts: [0, 1, 0] });
  });

  it('observes in-flight, healthy and panic gauges at collection time', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool({ panicThreshold: 0.5 });
    instrumentPool(pool, { meter });
    const held = [pool.acquire(), pool.acquire(), pool.acquire(), pool.acquire()];
    pool.setHealthy(IDS[2], false);

    let m = await collect(reader);
    expect(byAttrs(m.get('loadwise.backend.in_flight'), ['backend'])).toEqual({
      [IDS[0]]: 2,
      [IDS[1]]: 1,
      [IDS[2]]: 1,
    });
    expect(byAttrs(m.get('loadwise.backend.healthy'), ['pool', 'backend'])).toEqual({
      [`api|${IDS[0]}`]: 1,
      [`api|${IDS[1]}`]: 1,
      [`api|${IDS[2]}`]: 0,
    });
    expect(byAttrs(m.get('loadwise.pool.panic'), ['pool'])).toEqual({ api: 0 });

    pool.setHealthy(IDS[1], false); // 1 of 3 healthy < 50%: panic
    for (const lease of held) lease.release();
    m = await collect(reader);
    expect(byAttrs(m.get('loadwise.pool.panic'), ['pool'])).toEqual({ api: 1 });
    expect(Object.values(byAttrs(m.get('loadwise.backend.in_flight'), ['backend']))).toEqual([
      0, 0, 0,
    ]);
  });

  it('counts state changes by transition and ejections', async () => {
    const { reader, meter } = sdk();
    const { pool, clock } = makePool();
    instrumentPool(pool, { meter });
    pool.eject(IDS[0], 1000, 'consecutive 5xx');
    clock.advance(1000); // ejection over: back to healthy
    pool.eject(IDS[0], 500);
    pool.setHealthy(IDS[1], false);
    void pool.drain(IDS[2]);

    const m = await collect(reader);
    expect(byAttrs(m.get('loadwise.state_changes'), ['backend', 'from', 'to'])).toEqual({
      [`${IDS[0]}|healthy|ejected`]: 2,
      [`${IDS[0]}|ejected|healthy`]: 1,
      [`${IDS[1]}|healthy|unhealthy`]: 1,
      [`${IDS[2]}|healthy|draining`]: 1,
    });
    expect(byAttrs(m.get('loadwise.ejections'), ['pool', 'backend'])).toEqual({
      [`api|${IDS[0]}`]: 2,
    });
  });

  it('counts skew detections from the pool monitor', async () => {
    const { reader, meter } = sdk();
    const { pool, clock } = makePool({ skew: { windowMs: 1000, minRequests: 30, factor: 2 } });
    instrumentPool(pool, { meter });
    // Sticky traffic piles onto one backend: 40 of 50 calls is 2.4x its fair third.
    for (let i = 0; i < 50; i++) {
      pool.acquire(i < 40 ? { affinity: { id: IDS[1] } } : undefined).release();
    }
    clock.advance(1000);
    const m = await collect(reader);
    expect(byAttrs(m.get('loadwise.skew.detections'), ['pool', 'backend'])).toEqual({
      [`api|${IDS[1]}`]: 1,
    });
  });

  it('reports each pool under its own name', async () => {
    const { reader, meter } = sdk();
    const a = makePool({ name: 'users' }).pool;
    const b = makePool({ name: 'orders', backends: ['http://10.0.1.1:80'] }).pool;
    instrument({ pool: [a, b], meter });
    a.acquire().release();
    b.acquire().release();
    b.acquire().release();
    const m = await collect(reader);
    expect(byAttrs(m.get('loadwise.requests'), ['pool', 'backend'])).toEqual({
      [`users|${IDS[0]}`]: 1,
      [`users|${IDS[1]}`]: 0,
      [`users|${IDS[2]}`]: 0,
      'orders|10.0.1.1:80': 2,
    });
  });

  it('stops recording after close() and detaches from the pool', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    const before = {
      release: pool.listenerCount('release'),
      state: pool.listenerCount('state'),
    };
    const telemetry = instrumentPool(pool, { meter });
    expect(pool.listenerCount('release')).toBe(before.release + 1);
    pool.acquire().release({ ok: true, latencyMs: 1 });
    telemetry.close();
    telemetry.close(); // idempotent
    expect(telemetry.active).toBe(false);
    expect(pool.listenerCount('release')).toBe(before.release);
    expect(pool.listenerCount('state')).toBe(before.state);
    pool.acquire().release({ ok: true, latencyMs: 1 });
    pool.setHealthy(IDS[0], false);
    const m = await collect(reader);
    // Synchronous instruments keep their cumulative totals; nothing new was added.
    const [point] = m.get('loadwise.request.duration')!.dataPoints as DataPoint<Histogram>[];
    expect(point?.value.count).toBe(1);
    expect(m.get('loadwise.state_changes')).toBeUndefined();
    // Observable instruments have no callback left.
    expect(m.get('loadwise.requests')?.dataPoints ?? []).toEqual([]);
  });

  it('stops observing a pool once it is closed', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    const telemetry = instrumentPool(pool, { meter });
    pool.acquire().release();
    await pool.close();
    expect(pool.listenerCount('release')).toBe(0);
    const m = await collect(reader);
    expect(m.get('loadwise.requests')?.dataPoints ?? []).toEqual([]);
    telemetry.close();
  });

  it('leaves the release path alone with histogram: false, and still counts', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    instrumentPool(pool, { meter, histogram: false });
    expect(pool.listenerCount('release')).toBe(0);
    expect(pool.listenerCount('acquire')).toBe(0);
    pool.acquire().release({ ok: false, latencyMs: 3 });
    const m = await collect(reader);
    expect(m.get('loadwise.request.duration')?.dataPoints ?? []).toEqual([]);
    expect(byAttrs(m.get('loadwise.failures'), ['backend'])).toMatchObject({ [IDS[0]]: 1 });
  });

  it('records nothing with metrics: false', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    const telemetry = instrumentPool(pool, { meter, metrics: false });
    expect(await telemetry.ready).toBe(false);
    expect(pool.listenerCount('release')).toBe(0);
    pool.acquire().release();
    expect((await collect(reader)).size).toBe(0);
  });

  it('describes every instrument it creates', async () => {
    const { reader, meter } = sdk();
    const { pool } = makePool();
    instrumentPool(pool, { meter });
    pool.acquire().release();
    pool.eject(IDS[0], 10);
    const m = await collect(reader);
    for (const name of ['requests', 'failures', 'duration', 'inFlight', 'healthy'] as const) {
      const d = LOADWISE_METRICS[name];
      expect(m.get(d.name)?.descriptor).toMatchObject({ description: d.description, unit: d.unit });
    }
  });
});

describe('instrumentation options', () => {
  const pool = new BackendPool({ backends: ['http://10.0.0.1:80'], skew: false });
  const { meter } = { meter: { createCounter() {} } };
  it.each([
    ['an unknown option', () => instrumentPool(pool, { colour: 'red' } as never), 'colour'],
    ['a meter without methods', () => instrumentPool(pool, { meter: meter as never }), 'meter'],
    ['something that is not the API', () => instrumentPool(pool, { api: {} as never }), 'api'],
    ['a non-pool', () => instrumentPool({} as never), 'pool'],
    ['no target', () => instrument({}), 'instrument options'],
    ['a bad fetch', () => instrument({ fetch: (() => {}) as never }), 'fetch'],
    ['unsorted buckets', () => instrumentPool(pool, { durationBuckets: [1, 0.5] }), 'Buckets'],
    ['empty buckets', () => instrumentPool(pool, { durationBuckets: [] }), 'Buckets'],
    ['a non-boolean spans', () => instrumentPool(pool, { spans: 'yes' as never }), 'spans'],
    ['a non-boolean histogram', () => instrumentPool(pool, { histogram: 1 as never }), 'histogram'],
    ['an empty poolName', () => instrumentPool(pool, { poolName: '' }), 'poolName'],
  ])('rejects %s', (_what, call, field) => {
    expect(call).toThrow(LoadBalancerConfigError);
    expect(call).toThrow(field);
  });
});
