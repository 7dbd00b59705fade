import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  type BackendPool,
  type BackendPoolOptions,
  type BackendSpec,
  type BackendView,
  LeastConnections,
  LoadBalancerConfigError,
  PoolClosedError,
  RoundRobin,
  type SkewOptions,
  WeightedRoundRobin,
} from '../../src/index.js';
import { idOf, nameOf, testPool, url } from '../support/pools.js';

/** A {@link testPool} that records its state changes and panic events. */
function makePool(backends: readonly BackendSpec[], options: BackendPoolOptions = {}) {
  const { pool, clock } = testPool(backends, options);
  const states: string[] = [];
  pool.on('state', (e) => states.push(`${nameOf(e.backend.id)}:${e.from}->${e.to} (${e.reason})`));
  const panics: unknown[] = [];
  pool.on('panic', (e) => panics.push(e));
  return { pool, clock, states, panics };
}

/** How many of `count` acquires (released at once) went to each backend, by name. */
function spread(pool: BackendPool, count: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const lease = pool.acquire();
    const name = nameOf(lease.backend.id);
    counts[name] = (counts[name] ?? 0) + 1;
    lease.release();
  }
  return counts;
}

describe('states and state events', () => {
  it('emits a state event only when the state really changes', () => {
    const { pool, states } = makePool([url('a'), url('b'), url('c')]);
    pool.setHealthy(idOf('a'), true);
    pool.setHealthy(idOf('a'), false, 'probe failed');
    pool.setHealthy(idOf('a'), false);
    pool.eject(idOf('a'), 1000, 'outlier');
    pool.setHealthy(idOf('a'), true);
    pool.uneject(idOf('a'), 'manual');
    pool.uneject(idOf('a'));
    expect(states).toEqual([
      'a:healthy->unhealthy (probe failed)',
      'a:unhealthy->ejected (outlier)',
      'a:ejected->healthy (manual)',
    ]);
  });

  it('orders the flags: draining over ejected over health', async () => {
    const { pool, clock, states } = makePool([url('a'), url('b'), url('c')]);
    pool.eject(idOf('a'), 1000, 'outlier');
    await pool.drain(idOf('a'));
    clock.advance(1000);
    expect(pool.get(idOf('a'))!.state).toBe('draining');
    pool.undrain(idOf('a'));
    expect(states).toEqual([
      'a:healthy->ejected (outlier)',
      'a:ejected->draining (drain requested)',
      'a:draining->healthy (undrained)',
    ]);
  });

  it('validates setHealthy', () => {
    const { pool } = makePool([url('a')]);
    expect(() => pool.setHealthy(idOf('a'), 'no' as never)).toThrow(LoadBalancerConfigError);
    expect(() => pool.setHealthy(5 as never, true)).toThrow(LoadBalancerConfigError);
  });
});

describe('eject / uneject', () => {
  it('takes a backend out until its timer fires', () => {
    const { pool, clock, states } = makePool([url('a'), url('b'), url('c')]);
    pool.eject(idOf('a'), 5000, 'retry-after');
    expect(pool.get(idOf('a'))!.eligible).toBe(false);
    expect(spread(pool, 6)).toEqual({ b: 3, c: 3 });
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(4999);
    expect(pool.get(idOf('a'))!.state).toBe('ejected');
    clock.advance(1);
    expect(pool.get(idOf('a'))!.state).toBe('healthy');
    expect(clock.pendingTimers()).toBe(0);
    expect(states).toEqual([
      'a:healthy->ejected (retry-after)',
      'a:ejected->healthy (ejection period over)',
    ]);
  });

  it('extends with a longer ejection and ignores a shorter one', () => {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')]);
    pool.eject(idOf('a'), 1000);
    pool.eject(idOf('a'), 3000);
    pool.eject(idOf('a'), 500);
    expect(clock.pendingTimers()).toBe(1);
    expect(pool.stats().backends[0]!.ejectedUntil).toBe(3000);
    clock.advance(2999);
    expect(pool.get(idOf('a'))!.state).toBe('ejected');
    clock.advance(1);
    expect(pool.get(idOf('a'))!.state).toBe('healthy');
  });

  it('uneject ends it early and cancels the timer', () => {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')]);
    pool.eject(idOf('a'), 60_000);
    pool.uneject(idOf('a'));
    expect(clock.pendingTimers()).toBe(0);
    expect(pool.get(idOf('a'))!.state).toBe('healthy');
  });

  it('an unhealthy backend returns unhealthy after its ejection', () => {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')]);
    pool.setHealthy(idOf('a'), false);
    pool.eject(idOf('a'), 100);
    clock.advance(100);
    expect(pool.get(idOf('a'))!.state).toBe('unhealthy');
  });

  it('validates durations', () => {
    const { pool } = makePool([url('a')]);
    for (const ms of [-1, Number.NaN, Number.POSITIVE_INFINITY, '10']) {
      expect(() => pool.eject(idOf('a'), ms as never)).toThrow(LoadBalancerConfigError);
    }
  });

  it('refuses after close', async () => {
    const { pool } = makePool([url('a')]);
    await pool.close();
    expect(() => pool.eject(idOf('a'), 10)).toThrow(PoolClosedError);
  });
});

describe('reportProbe()', () => {
  it('marks a backend unhealthy after unhealthyThreshold consecutive failures', () => {
    const { pool, states } = makePool([url('a'), url('b'), url('c')]);
    const fail = { ok: false, unhealthyThreshold: 3 };
    expect(pool.reportProbe(idOf('a'), fail)).toBe('healthy');
    expect(pool.reportProbe(idOf('a'), fail)).toBe('healthy');
    expect(pool.reportProbe(idOf('a'), fail)).toBe('unhealthy');
    expect(states).toEqual(['a:healthy->unhealthy (3 consecutive failing probes (default))']);
  });

  it('a pass resets the failure run', () => {
    const { pool } = makePool([url('a'), url('b'), url('c')]);
    const fail = { ok: false, unhealthyThreshold: 2 };
    pool.reportProbe(idOf('a'), fail);
    pool.reportProbe(idOf('a'), { ok: true });
    expect(pool.reportProbe(idOf('a'), fail)).toBe('healthy');
    expect(pool.reportProbe(idOf('a'), fail)).toBe('unhealthy');
  });

  it('recovers after healthyThreshold consecutive passes', () => {
    const { pool, states } = makePool([url('a'), url('b'), url('c')]);
    pool.reportProbe(idOf('a'), { ok: false });
    const pass = { ok: true, healthyThreshold: 2, reason: 'HTTP 200' };
    expect(pool.reportProbe(idOf('a'), pass)).toBe('unhealthy');
    expect(pool.reportProbe(idOf('a'), pass)).toBe('healthy');
    expect(states.at(-1)).toBe('a:unhealthy->healthy (HTTP 200)');
  });

  it('counts each source separately', () => {
    const { pool } = makePool([url('a'), url('b'), url('c')]);
    const report = (source: string) =>
      pool.reportProbe(idOf('a'), { ok: false, source, unhealthyThreshold: 2 });
    expect(report('http')).toBe('healthy');
    expect(report('tcp')).toBe('healthy');
    // Two failures in a row from http, with tcp's in between.
    expect(report('http')).toBe('unhealthy');
  });

  it('a passing probe ends an ejection', () => {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')]);
    pool.eject(idOf('a'), 60_000);
    expect(pool.reportProbe(idOf('a'), { ok: true, source: 'http' })).toBe('healthy');
    expect(clock.pendingTimers()).toBe(0);
  });

  it.each([
    { report: {}, field: 'ok' },
    { report: { ok: 1 }, field: 'ok' },
    { report: { ok: true, healthyThreshold: 0 }, field: 'healthyThreshold' },
    { report: { ok: false, unhealthyThreshold: 1.5 }, field: 'unhealthyThreshold' },
    { report: { ok: true, source: '' }, field: 'source' },
    { report: { ok: true, why: 'x' }, field: 'probe report.why' },
  ])('rejects $report', ({ report, field }) => {
    const { pool } = makePool([url('a')]);
    expect(() => pool.reportProbe(idOf('a'), report as never)).toThrow(
      expect.objectContaining({ field }),
    );
  });
});

describe('panic mode (minHealthy, panicThreshold)', () => {
  it('enters below the panic threshold and routes across every backend that is not draining', async () => {
    const { pool, panics } = makePool(['a', 'b', 'c', 'd', 'e'].map(url));
    await pool.drain(idOf('e'));
    pool.setHealthy(idOf('a'), false);
    pool.setHealthy(idOf('c'), false);
    // 2 healthy of 4 routable: exactly at 50%, not below.
    expect(pool.panic).toBe(false);
    expect(panics).toEqual([]);
    pool.eject(idOf('b'), 60_000);
    expect(pool.panic).toBe(true);
    expect(panics).toEqual([{ active: true, healthy: 1, total: 4, threshold: 0.5 }]);
    // The unhealthy and the ejected backend take calls again; the draining one does not.
    expect(spread(pool, 8)).toEqual({ a: 2, b: 2, c: 2, d: 2 });
    expect(pool.stats().panic).toBe(true);
    pool.uneject(idOf('b'));
    expect(pool.panic).toBe(false);
    expect(panics.at(-1)).toEqual({ active: false, healthy: 2, total: 4, threshold: 0.5 });
    expect(spread(pool, 4)).toEqual({ b: 2, d: 2 });
  });

  it('enters when fewer than minHealthy backends are healthy', () => {
    const { pool, panics } = makePool(['a', 'b', 'c', 'd'].map(url), {
      minHealthy: 3,
      panicThreshold: 0,
    });
    pool.setHealthy(idOf('a'), false);
    expect(pool.panic).toBe(false);
    pool.setHealthy(idOf('b'), false);
    expect(pool.panic).toBe(true);
    expect(panics).toEqual([{ active: true, healthy: 2, total: 4, threshold: 0 }]);
  });

  it('with minHealthy: 1 (the default) never routes to nothing while something is up', () => {
    const { pool } = makePool(['a', 'b'].map(url), { panicThreshold: 0 });
    pool.setHealthy(idOf('a'), false);
    expect(pool.panic).toBe(false);
    expect(spread(pool, 3)).toEqual({ b: 3 });
    pool.setHealthy(idOf('b'), false);
    expect(pool.panic).toBe(true);
    expect(spread(pool, 4)).toEqual({ a: 2, b: 2 });
  });

  it('emits one event per transition', () => {
    const { pool, panics } = makePool(['a', 'b'].map(url));
    pool.setHealthy(idOf('a'), false);
    pool.setHealthy(idOf('b'), false);
    pool.eject(idOf('a'), 100);
    expect(panics).toHaveLength(1);
  });
});

describe('priority tiers', () => {
  const tiers = [
    { url: url('a'), priority: 0 },
    { url: url('b'), priority: 0 },
    { url: url('c'), priority: 1 },
    { url: url('d'), priority: 2 },
  ];

  it('the best tier with a healthy backend takes every call', () => {
    const { pool } = makePool(tiers);
    expect(spread(pool, 4)).toEqual({ a: 2, b: 2 });
    expect(pool.explain().excluded.map((e) => nameOf(e.id))).toEqual(['c', 'd']);
  });

  it('a worse tier takes the share a better tier cannot (Envoy priority load)', () => {
    const { pool } = makePool(tiers);
    const loads = () => pool.explain().tiers.map((t) => t.load);
    pool.setHealthy(idOf('a'), false);
    // Tier 0 at 1 of 2 healthy: health 1.4 × 50% = 70%, the other 30% go to tier 1.
    expect(loads()).toEqual([70, 30, 0]);
    const split = spread(pool, 1000);
    expect(Object.keys(split).sort()).toEqual(['b', 'c']);
    expect(split.b! / 1000).toBeCloseTo(0.7, 1);
    pool.eject(idOf('b'), 10_000);
    expect(loads()).toEqual([0, 100, 0]);
    expect(spread(pool, 2)).toEqual({ c: 2 });
    pool.setHealthy(idOf('c'), false);
    expect(loads()).toEqual([0, 0, 100]);
    expect(spread(pool, 2)).toEqual({ d: 2 });
    pool.uneject(idOf('b'));
    expect(loads()).toEqual([70, 0, 30]);
    expect(Object.keys(spread(pool, 100)).sort()).toEqual(['b', 'd']);
  });

  it('with no healthy backend anywhere, panic spreads over every tier by backend count', () => {
    const { pool } = makePool(tiers);
    for (const n of ['a', 'b', 'c', 'd']) pool.setHealthy(idOf(n), false);
    expect(pool.panic).toBe(true);
    expect(pool.explain().tiers.map((t) => [t.load, t.panic])).toEqual([
      [50, true],
      [25, true],
      [25, true],
    ]);
    const split = spread(pool, 2000);
    expect((split.a! + split.b!) / 2000).toBeCloseTo(0.5, 1);
    expect(split.c! / 2000).toBeCloseTo(0.25, 1);
    expect(split.d! / 2000).toBeCloseTo(0.25, 1);
  });

  it('a retry that excludes every candidate of the drawn tier goes to another tier', () => {
    const { pool } = makePool([url('a'), url('b'), { url: url('x'), priority: 1 }]);
    pool.setHealthy(idOf('b'), false); // tier 0 takes 70%, all on a; tier 1 30%, on x
    const picked = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const lease = pool.acquire({ exclude: [idOf('a')] });
      picked.add(nameOf(lease.backend.id));
      lease.release();
    }
    expect(picked).toEqual(new Set(['x']));
    // With nothing else left, an excluded backend is still better than no call.
    const lease = pool.acquire({ exclude: [idOf('a'), idOf('x')] });
    expect(['a', 'x']).toContain(nameOf(lease.backend.id));
    lease.release();
  });

  it('draining a whole tier moves the calls to the next one', async () => {
    const { pool } = makePool(tiers);
    await pool.drain(idOf('a'));
    await pool.drain(idOf('b'));
    expect(spread(pool, 2)).toEqual({ c: 2 });
  });
});

describe('slow start', () => {
  it('starts backends present at construction at full weight', () => {
    const { pool } = makePool([{ url: url('a'), weight: 4 }], { slowStartMs: 10_000 });
    expect(pool.get(idOf('a'))!.effectiveWeight).toBe(4);
  });

  it('ramps an added backend from the floor to its weight over slowStartMs', () => {
    const { pool, clock } = makePool([url('a')], { slowStartMs: 10_000 });
    const b = pool.add({ url: url('b'), weight: 4 });
    const at = (ms: number) => {
      clock.advance(ms - clock.now());
      pool.acquire().release();
      return b.effectiveWeight;
    };
    expect(b.effectiveWeight).toBeCloseTo(0.4, 9);
    expect(at(500)).toBeCloseTo(0.4, 9);
    expect(at(2500)).toBeCloseTo(1, 9);
    expect(at(5000)).toBeCloseTo(2, 9);
    expect(at(9000)).toBeCloseTo(3.6, 9);
    expect(at(10_000)).toBe(4);
    expect(at(20_000)).toBe(4);
    expect(pool.stats().backends[1]!.effectiveWeight).toBe(4);
  });

  it.each([
    { aggression: 2, minWeight: 0.1, atQuarter: 0.5 },
    { aggression: 1, minWeight: 0.5, atQuarter: 0.5 },
    { aggression: 0.5, minWeight: 0.01, atQuarter: 0.0625 },
  ])(
    'shapes the ramp with aggression $aggression and floor $minWeight',
    ({ aggression, minWeight, atQuarter }) => {
      const { pool, clock } = makePool([url('a')], {
        slowStartMs: 1000,
        slowStartAggression: aggression,
        slowStartMinWeight: minWeight,
      });
      const b = pool.add(url('b'));
      clock.advance(250);
      pool.acquire().release();
      expect(b.effectiveWeight).toBeCloseTo(atQuarter, 9);
    },
  );

  it('ramps a backend that recovers, and one that returns from an ejection', () => {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')], { slowStartMs: 1000 });
    pool.setHealthy(idOf('a'), false);
    pool.eject(idOf('b'), 100);
    clock.advance(500);
    pool.setHealthy(idOf('a'), true);
    expect(pool.get(idOf('a'))!.effectiveWeight).toBeCloseTo(0.1, 9);
    expect(pool.get(idOf('b'))!.effectiveWeight).toBeCloseTo(0.1, 9);
    clock.advance(500);
    pool.acquire().release();
    expect(pool.get(idOf('a'))!.effectiveWeight).toBeCloseTo(0.5, 9);
    // b came back when its ejection ended, at 100 ms.
    expect(pool.get(idOf('b'))!.effectiveWeight).toBeCloseTo(0.9, 9);
  });

  it.each([
    { name: 'WeightedRoundRobin', make: (): Algorithm => new WeightedRoundRobin() },
    { name: 'LeastConnections', make: (): Algorithm => new LeastConnections() },
  ])('steers $name: the newcomer gets a small share first, an equal share after', ({ make }) => {
    const { pool, clock } = makePool([url('a')], { slowStartMs: 10_000, algorithm: make() });
    pool.add(url('b'));
    // LeastConnections compares in-flight per weight: hold calls so that weights matter.
    const held = Array.from({ length: 22 }, () => pool.acquire());
    const early = held.filter((l) => l.backend.id === idOf('b')).length;
    for (const l of held) l.release();
    clock.advance(10_000);
    const late = Array.from({ length: 22 }, () => pool.acquire());
    const after = late.filter((l) => l.backend.id === idOf('b')).length;
    // 0.1 / 1.1 of 22 is 2; half is 11.
    expect(early).toBeLessThanOrEqual(3);
    expect(after).toBe(11);
  });

  it('stats() and explain() show the ramp without waiting for a pick', () => {
    const { pool, clock } = makePool([url('a')], { slowStartMs: 1000 });
    pool.add(url('b'));
    clock.advance(500);
    expect(pool.stats().backends[1]!.effectiveWeight).toBeCloseTo(0.5, 9);
    clock.advance(500);
    expect(pool.explain().eligible[1]!.effectiveWeight).toBe(1);
  });

  it('is off by default: an added backend starts at full weight', () => {
    const { pool } = makePool([url('a')]);
    expect(pool.add({ url: url('b'), weight: 3 }).effectiveWeight).toBe(3);
  });

  it('forgets a removed backend that was ramping', async () => {
    const { pool, clock } = makePool([url('a')], { slowStartMs: 1000 });
    pool.add(url('b'));
    await pool.remove(idOf('b'));
    const c = pool.add(url('c'));
    clock.advance(1000);
    pool.acquire().release();
    expect(c.effectiveWeight).toBe(1);
  });

  it('setWeight during the ramp ramps towards the new weight', () => {
    const { pool, clock } = makePool([url('a')], { slowStartMs: 1000 });
    const b = pool.add(url('b'));
    clock.advance(500);
    pool.setWeight(idOf('b'), 10);
    expect(b.effectiveWeight).toBeCloseTo(5, 9);
  });
});

describe('skew monitor', () => {
  /** Always the first candidate: the distribution mistake the monitor is for. */
  class FirstAlways implements Algorithm {
    readonly name = 'first-always';
    pick(candidates: readonly BackendView[]): BackendView | undefined {
      return candidates[0];
    }
  }

  function skewed(options: SkewOptions | false, algorithm: Algorithm = new FirstAlways()) {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')], {
      skew: options,
      algorithm,
    });
    const events: unknown[] = [];
    pool.on('skew', (e) => events.push({ ...e, backend: nameOf(e.backend.id) }));
    return { pool, clock, events };
  }

  it('reports a backend whose share exceeds factor x its fair share', () => {
    const { pool, clock, events } = skewed({ windowMs: 1000, minRequests: 10 });
    for (let i = 0; i < 30; i++) pool.acquire().release();
    clock.advance(999);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events).toEqual([
      { backend: 'a', share: 1, expectedShare: 1 / 3, factor: 3, requests: 30 },
    ]);
  });

  it('judges each window on its own', () => {
    const { pool, clock, events } = skewed({ windowMs: 1000, minRequests: 10 });
    for (let i = 0; i < 30; i++) pool.acquire().release();
    clock.advance(1000);
    clock.advance(1000);
    expect(events).toHaveLength(1);
  });

  it('stays quiet below minRequests, below the factor, and for a fair algorithm', () => {
    const few = skewed({ windowMs: 1000, minRequests: 50 });
    for (let i = 0; i < 30; i++) few.pool.acquire().release();
    few.clock.advance(1000);
    expect(few.events).toEqual([]);

    const lenient = skewed({ windowMs: 1000, minRequests: 10, factor: 3.5 });
    for (let i = 0; i < 30; i++) lenient.pool.acquire().release();
    lenient.clock.advance(1000);
    expect(lenient.events).toEqual([]);

    const fair = skewed({ windowMs: 1000, minRequests: 10 }, new RoundRobin());
    for (let i = 0; i < 300; i++) fair.pool.acquire().release();
    fair.clock.advance(1000);
    expect(fair.events).toEqual([]);
  });

  it('measures fair shares by effective weight', () => {
    const { pool, clock } = makePool(
      [
        { url: url('a'), weight: 3 },
        { url: url('b'), weight: 1 },
      ],
      { skew: { windowMs: 1000, minRequests: 10 }, algorithm: new FirstAlways() },
    );
    const events: unknown[] = [];
    pool.on('skew', (e) => events.push(e.expectedShare));
    for (let i = 0; i < 40; i++) pool.acquire().release();
    clock.advance(1000);
    // a takes 100% against a fair 75%: under 2x, no event.
    expect(events).toEqual([]);
  });

  it("measures fair shares within each priority tier's share of the calls", () => {
    // Tier 0 at 1 of 2 healthy takes 70%, all on a; tier 1 takes 30% over x and y. Against the
    // union of eligible backends a's fair share would be a third, and 70% more than twice that.
    const { pool, clock } = makePool(
      [url('a'), url('b'), { url: url('x'), priority: 1 }, { url: url('y'), priority: 1 }],
      { skew: { windowMs: 1000, minRequests: 10 } },
    );
    pool.setHealthy(idOf('b'), false);
    const events: unknown[] = [];
    pool.on('skew', (e) => events.push([nameOf(e.backend.id), e.expectedShare]));
    for (let i = 0; i < 1000; i++) pool.acquire().release();
    clock.advance(1000);
    expect(events).toEqual([]);
  });

  it('runs one unref-ed timer, none when off, and none after close', async () => {
    const on = skewed({ windowMs: 1000 });
    expect(on.clock.pendingTimers()).toBe(1);
    expect(on.clock.refedTimers()).toBe(0);
    on.clock.advance(5000);
    expect(on.clock.pendingTimers()).toBe(1);
    await on.pool.close();
    expect(on.clock.pendingTimers()).toBe(0);
    const off = skewed(false);
    expect(off.clock.pendingTimers()).toBe(0);
  });
});

describe('ejections that a passing probe may not end', () => {
  it('keeps a Retry-After style ejection through passing probes, and ends a plain one', async () => {
    const { BackendPool, RoundRobin } = await import('../../src/index.js');
    const { ManualClock } = await import('../../src/testing/index.js');
    const clock = new ManualClock();
    const pool = new BackendPool({
      backends: ['http://a:1', 'http://b:1', 'http://c:1'],
      algorithm: new RoundRobin({ startIndex: 0 }),
      clock,
      skew: false,
    });
    pool.eject('a:1', 30_000, 'backpressure: Retry-After 30', { endsOnProbe: false });
    pool.eject('b:1', 30_000, 'outlier');
    pool.reportProbe('a:1', { ok: true });
    pool.reportProbe('b:1', { ok: true });
    expect(pool.get('a:1')!.state).toBe('ejected');
    expect(pool.get('b:1')!.state).toBe('healthy');
    clock.advance(30_000);
    expect(pool.get('a:1')!.state).toBe('healthy');
    expect(() => pool.eject('a:1', 10, 'x', { endsOnProbe: 'no' } as never)).toThrow(/endsOnProbe/);
    await pool.close();
  });
});
