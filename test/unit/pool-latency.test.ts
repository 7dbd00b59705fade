import { describe, expect, it } from 'vitest';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { latencyDecay, observeLatency } from '../../src/pool/latency-estimate.js';
import { seededRandom } from '../../src/testing/index.js';
import { idOf, testPool, url } from '../support/pools.js';

const TAU = 10_000;

describe('latency estimate: one sample', () => {
  // [estimate before, ms since its last sample, sample, ok, calls] -> estimate after
  it.each([
    { name: 'first sample', before: 0, dt: 5, rtt: 42, ok: true, calls: 100, after: 42 },
    {
      name: 'a higher sample replaces it',
      before: 10,
      dt: 1,
      rtt: 30,
      ok: true,
      calls: 100,
      after: 30,
    },
    {
      name: 'time only (Finagle) for a lower sample',
      before: 100,
      dt: 5000,
      rtt: 10,
      ok: true,
      calls: Number.POSITIVE_INFINITY,
      after: 100 * Math.exp(-0.5) + 10 * (1 - Math.exp(-0.5)),
    },
    {
      name: 'the per-call bound on a busy backend',
      before: 100,
      dt: 1,
      rtt: 10,
      ok: true,
      calls: 100,
      after: 100 * Math.exp(-0.01) + 10 * (1 - Math.exp(-0.01)),
    },
    {
      name: 'time wins after a long gap',
      before: 100,
      dt: 5000,
      rtt: 10,
      ok: true,
      calls: 100,
      after: 100 * Math.exp(-0.5) + 10 * (1 - Math.exp(-0.5)),
    },
    {
      name: 'a failed call decays with time only',
      before: 100,
      dt: 1,
      rtt: 2,
      ok: false,
      calls: 100,
      after: 100 * Math.exp(-1 / TAU) + 2 * (1 - Math.exp(-1 / TAU)),
    },
  ])('$name', ({ before, dt, rtt, ok, calls, after }) => {
    const r = { latencyEwma: before, latencyStamp: 1000 };
    const decay = latencyDecay(TAU, calls);
    observeLatency(r, rtt, 1000 + dt, ok, decay);
    expect(r.latencyEwma).toBeCloseTo(after, 9);
    expect(r.latencyStamp).toBe(1000 + dt);
  });
});

describe('latency decay', () => {
  it('keeps at most e^(-1/calls) of the estimate per successful call, all of it for Infinity', () => {
    expect(latencyDecay(TAU, 100).callKeep).toBe(Math.exp(-1 / 100));
    expect(latencyDecay(TAU, 1).callKeep).toBe(Math.exp(-1));
    expect(latencyDecay(TAU, Number.POSITIVE_INFINITY).callKeep).toBe(1);
  });
});

describe('latency estimate in the pool', () => {
  /** One call on `name`, taking `ms` on the pool's clock. */
  function call(pool: ReturnType<typeof testPool>, name: string, ms: number, ok = true): void {
    const lease = pool.pool.acquire({ affinity: { id: idOf(name) } });
    pool.clock.advance(ms);
    lease.release({ ok });
  }

  // A backend whose first call took 250 ms (a cold connection, a pause of the client), then 300
  // calls of 5 ms, 1.5 s in all. With time alone the estimate is still 5 + 245 e^-0.15 = 216 ms;
  // with the per-call bound 5 + 245 e^-1 = 95 ms (300 calls, the default), 5 + 245 e^-3 = 17 ms
  // (100 calls) or 5 ms (20 calls).
  it.each([
    { calls: undefined, below: 95.2, above: 94.9 },
    { calls: 100, below: 17.3, above: 17.1 },
    { calls: 20, below: 5.01, above: 5 },
    { calls: Number.POSITIVE_INFINITY, below: 216, above: 215.5 },
  ])(
    'a cold peak followed by 300 fast calls, latencyDecayCalls $calls',
    ({ calls, below, above }) => {
      const p = testPool([url('a')], calls === undefined ? {} : { latencyDecayCalls: calls });
      call(p, 'a', 250);
      for (let i = 0; i < 300; i++) call(p, 'a', 5);
      const a = p.pool.get(idOf('a'))!;
      expect(a.latencyEwma).toBeLessThan(below);
      expect(a.latencyEwma).toBeGreaterThan(above);
    },
  );

  it('still jumps to a slow call at once, and keeps an idle backend decaying with time', () => {
    const p = testPool([url('a')]);
    for (let i = 0; i < 50; i++) call(p, 'a', 4);
    call(p, 'a', 40);
    const a = p.pool.get(idOf('a'))!;
    expect(a.latencyEwma).toBe(40);
    p.clock.advance(TAU);
    expect(p.pool.decayedLatency(a)).toBeCloseTo(40 / Math.E, 9);
  });

  it('does not let fast failures talk the estimate down faster than time', () => {
    const p = testPool([url('a')]);
    call(p, 'a', 100);
    for (let i = 0; i < 300; i++) call(p, 'a', 1, false);
    // 300 ms of time-only decay from 100 towards 1 ms.
    expect(p.pool.get(idOf('a'))!.latencyEwma).toBeGreaterThan(95);
  });

  it('follows a seeded stream of samples within the bounds of its two decays', () => {
    const random = seededRandom(11);
    const p = testPool([url('a')]);
    let previous = 0;
    for (let i = 0; i < 2000; i++) {
      const ms = 1 + Math.floor(random() * 20);
      call(p, 'a', ms);
      const now = p.pool.get(idOf('a'))!.latencyEwma;
      if (previous === 0 || ms > previous) expect(now).toBe(ms);
      else {
        // A lower sample moves the estimate towards it by at least 1 - e^(-1/300) (the default
        // latencyDecayCalls), never past it.
        expect(now).toBeLessThanOrEqual(
          previous - (previous - ms) * (1 - Math.exp(-1 / 300)) + 1e-9,
        );
        expect(now).toBeGreaterThanOrEqual(ms);
      }
      previous = now;
    }
  });

  it.each([0, 1.5, -1, Number.NaN, '10', null])('rejects latencyDecayCalls %s', (value) => {
    expect(() => testPool([url('a')], { latencyDecayCalls: value as never })).toThrow(
      LoadBalancerConfigError,
    );
  });

  it.each([1, 100, Number.POSITIVE_INFINITY])('accepts latencyDecayCalls %s', (value) => {
    expect(() => testPool([url('a')], { latencyDecayCalls: value })).not.toThrow();
  });
});
