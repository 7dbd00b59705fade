import { describe, expect, it } from 'vitest';
import { PowerOfTwoChoices } from '../../src/algorithms/power-of-two-choices.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { PoolClosedError } from '../../src/errors/pool-closed-error.js';
import { OutlierDetector, type OutlierDetectorOptions } from '../../src/health/outlier-detector.js';
import { parseRetryAfter } from '../../src/health/retry-after.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock } from '../../src/testing/index.js';
import type { LeaseOutcome } from '../../src/types.js';
import { detecting } from '../support/outliers.js';

const FAIL: LeaseOutcome = { ok: false, failure: 'connect' };
const OK: LeaseOutcome = { ok: true };

describe('OutlierDetector: configuration', () => {
  const pool = new BackendPool({ backends: ['http://a:1'], clock: new ManualClock(), skew: false });
  it.each([
    ['unknown option', { consecutive5xx: 5 }, 'OutlierDetectorOptions.consecutive5xx'],
    ['zero consecutive failures', { consecutiveFailures: 0 }, 'consecutiveFailures'],
    ['negative base ejection', { baseEjectionMs: -1 }, 'baseEjectionMs'],
    ['percent above 100', { maxEjectionPercent: 150 }, 'maxEjectionPercent'],
    ['success rate not an object', { successRate: true }, 'successRate'],
    ['unknown success-rate key', { successRate: { volume: 1 } }, 'successRate.volume'],
    [
      'failure threshold above 100',
      { failurePercentage: { threshold: 101 } },
      'failurePercentage.threshold',
    ],
    ['retry-after cap 0', { retryAfter: { maxMs: 0 } }, 'retryAfter.maxMs'],
    ['retry-after statuses not an array', { retryAfter: { statuses: 503 } }, 'retryAfter.statuses'],
    ['isFailure not a function', { isFailure: 'status >= 500' }, 'isFailure'],
  ])('rejects %s', (_name, options, field) => {
    let thrown: unknown;
    try {
      new OutlierDetector(pool, options as OutlierDetectorOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(LoadBalancerConfigError);
    expect((thrown as LoadBalancerConfigError).field).toBe(field);
  });

  it('rejects a non-pool and a closed pool', async () => {
    expect(() => new OutlierDetector({} as BackendPool)).toThrow(LoadBalancerConfigError);
    const closed = new BackendPool({ clock: new ManualClock(), skew: false });
    await closed.close();
    expect(() => new OutlierDetector(closed)).toThrow(PoolClosedError);
  });
});

describe('OutlierDetector: consecutive failures', () => {
  it('ejects after 5 consecutive failures for the 30 s base time, then returns the backend', () => {
    const t = detecting(3);
    t.call('b0', FAIL, 4);
    expect(t.state('b0')).toBe('healthy');
    t.call('b0', FAIL);
    expect(t.state('b0')).toBe('ejected');
    expect(t.ejections).toEqual([
      { id: 'b0', cause: 'consecutive-failures', durationMs: 30_000, ejections: 1 },
    ]);
    expect(t.pool.stats().backends[0]?.ejectedUntil).toBe(30_000);
    t.clock.advance(29_999);
    expect(t.state('b0')).toBe('ejected');
    t.clock.advance(1);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close();
  });

  it('a success resets the count', () => {
    const t = detecting(3);
    t.call('b0', FAIL, 4);
    t.call('b0', OK);
    t.call('b0', FAIL, 4);
    expect(t.state('b0')).toBe('healthy');
    expect(t.detector.status()[0]).toMatchObject({ id: 'b0', consecutiveFailures: 4 });
    t.detector.close();
  });

  it('never counts calls the caller aborted', () => {
    const t = detecting(3);
    t.call('b0', { ok: false, failure: 'aborted' }, 20);
    expect(t.state('b0')).toBe('healthy');
    // Aborts neither count nor break a run of real failures.
    t.call('b0', FAIL, 4);
    t.call('b0', { ok: false, failure: 'aborted' });
    t.call('b0', FAIL);
    expect(t.state('b0')).toBe('ejected');
    t.detector.close();
  });

  it('aborted calls never count, even for a custom isFailure', () => {
    const t = detecting(3, { isFailure: () => true });
    t.call('b0', { ok: false, failure: 'aborted' }, 10);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close();
  });

  it('counts 5xx and status-less failures but not 4xx by default', () => {
    const t = detecting(3);
    t.call('b0', { ok: false, status: 404, failure: 'http' }, 10);
    expect(t.state('b0')).toBe('healthy');
    t.call('b1', { ok: false, status: 502, failure: 'http' }, 2);
    t.call('b1', { ok: false, failure: 'timeout' }, 2);
    t.call('b1', { ok: false, failure: 'reset' });
    expect(t.state('b1')).toBe('ejected');
    t.detector.close();
  });

  it('takes a custom failure rule', () => {
    const t = detecting(3, { isFailure: (o) => o.status === 404 });
    t.call('b0', { ok: false, status: 404 }, 5);
    expect(t.state('b0')).toBe('ejected');
    t.detector.close();
  });

  it('can be turned off', () => {
    const t = detecting(3, { consecutiveFailures: false });
    t.call('b0', FAIL, 50);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close();
  });
});

describe('OutlierDetector: ejection time', () => {
  it('grows with each ejection (base × n) and stops at maxEjectionMs', () => {
    // A long interval: the multiplier does not decay during this test.
    const t = detecting(3, {
      intervalMs: 10_000_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 100_000,
    });
    for (let i = 0; i < 5; i++) {
      t.call('b0', FAIL, 5);
      t.clock.advance(t.ejections.at(-1)!.durationMs);
      expect(t.state('b0')).toBe('healthy');
    }
    expect(t.ejections.map((e) => [e.durationMs, e.ejections])).toEqual([
      [30_000, 1],
      [60_000, 2],
      [90_000, 3],
      [100_000, 4],
      [100_000, 5],
    ]);
    t.detector.close();
  });

  it('lowers the multiplier by one for every interval the backend stays in service', () => {
    const t = detecting(3, { intervalMs: 10_000 }); // sweeps at 10 s, 20 s, ...
    t.clock.advance(5_000);
    t.call('b0', FAIL, 5); // ejected from 5 s to 35 s
    expect(t.detector.status()[0]?.ejections).toBe(1);
    t.clock.advance(30_000);
    expect(t.state('b0')).toBe('healthy');
    t.call('b0', FAIL, 5); // multiplier 2 → 60 s
    expect(t.ejections.at(-1)?.durationMs).toBe(60_000);
    t.clock.advance(60_000); // to 95 s: sweeps during the ejection do not decay it
    expect(t.detector.status()[0]?.ejections).toBe(2);
    // Back at 95 s. The sweep at 100 s comes 5 s after the return: too soon (Envoy waits a full
    // interval since the return); those at 110 s and 120 s lower it by one each.
    t.clock.advance(5_000);
    expect(t.detector.status()[0]?.ejections).toBe(2);
    t.clock.advance(10_000);
    expect(t.detector.status()[0]?.ejections).toBe(1);
    t.clock.advance(10_000);
    expect(t.detector.status()[0]?.ejections).toBe(0);
    t.call('b0', FAIL, 5);
    expect(t.ejections.at(-1)?.durationMs).toBe(30_000);
    t.detector.close();
  });

  it('adds random jitter up to ejectionJitterMs', () => {
    const t = detecting(3, { ejectionJitterMs: 5_000 });
    t.call('b0', FAIL, 5);
    const d = t.ejections[0]!.durationMs;
    expect(d).toBeGreaterThanOrEqual(30_000);
    expect(d).toBeLessThan(35_000);
    expect(d).not.toBe(30_000);
    t.detector.close();
  });
});

describe('OutlierDetector: maxEjectionPercent', () => {
  it('ejects one backend of ten at the 10% default, then refuses', () => {
    const t = detecting(10);
    t.call('b0', FAIL, 5);
    t.call('b1', FAIL, 5);
    expect(t.state('b0')).toBe('ejected');
    expect(t.state('b1')).toBe('healthy');
    expect(t.skipped).toEqual([{ id: 'b1', ejected: 1, total: 10 }]);
    // The failures keep counting: once b0 is back, b1's next failure ejects it.
    t.clock.advance(30_000);
    t.call('b1', FAIL);
    expect(t.state('b1')).toBe('ejected');
    t.detector.close();
  });

  it('always allows one ejection, even where 10% rounds to no backend', () => {
    const t = detecting(3);
    t.call('b0', FAIL, 5);
    t.call('b1', FAIL, 5);
    expect(t.pool.backends().map((b) => b.state)).toEqual(['ejected', 'healthy', 'healthy']);
    t.detector.close();
  });

  it.each([
    [0, 4, 0],
    [50, 4, 2],
    [100, 4, 4],
  ])('at %i%% of %i backends ejects at most %i', (percent, n, max) => {
    const t = detecting(n, { maxEjectionPercent: percent });
    for (let i = 0; i < n; i++) t.call(`b${i}`, FAIL, 5);
    const ejected = t.pool.backends().filter((b) => b.state === 'ejected').length;
    expect(ejected).toBe(max);
    t.detector.close();
  });
});

describe('OutlierDetector: success rate and failure percentage', () => {
  /** `rate` share of `volume` calls succeed, interleaved so no run of 5 failures forms. */
  function traffic(
    t: ReturnType<typeof detecting>,
    id: string,
    volume: number,
    rate: number,
  ): void {
    let ok = 0;
    for (let i = 0; i < volume; i++) {
      const succeed = (ok + 1) / (i + 1) <= rate || ok / (i + 1) < rate;
      if (succeed) ok++;
      t.call(id, succeed ? OK : FAIL);
    }
  }

  it('ejects a backend whose success rate falls below mean - 1.9 stdev', () => {
    const t = detecting(6, { consecutiveFailures: false, maxEjectionPercent: 50 });
    for (let i = 0; i < 5; i++) traffic(t, `b${i}`, 100, 1);
    traffic(t, 'b5', 100, 0.5);
    expect(t.state('b5')).toBe('healthy'); // judged only at the end of the interval
    t.clock.advance(10_000);
    expect(t.state('b5')).toBe('ejected');
    expect(t.ejections).toEqual([
      { id: 'b5', cause: 'success-rate', durationMs: 30_000, ejections: 1 },
    ]);
    t.detector.close();
  });

  it.each([
    ['fewer than 5 backends with enough requests', 4, 100],
    ['fewer than 100 requests per backend', 6, 99],
  ])('does not judge success rate with %s', (_name, hosts, volume) => {
    const t = detecting(hosts, { consecutiveFailures: false, maxEjectionPercent: 50 });
    for (let i = 0; i < hosts - 1; i++) traffic(t, `b${i}`, volume, 1);
    traffic(t, `b${hosts - 1}`, volume, 0.5);
    t.clock.advance(10_000);
    expect(t.ejections).toEqual([]);
    t.detector.close();
  });

  it('counts only the current interval', () => {
    const t = detecting(6, { consecutiveFailures: false, maxEjectionPercent: 50 });
    for (let i = 0; i < 5; i++) traffic(t, `b${i}`, 60, 1);
    traffic(t, 'b5', 60, 0.5);
    t.clock.advance(10_000); // 60 < 100 requests: not judged, and the counts restart
    for (let i = 0; i < 5; i++) traffic(t, `b${i}`, 60, 1);
    traffic(t, 'b5', 60, 0.5);
    t.clock.advance(10_000);
    expect(t.ejections).toEqual([]);
    t.detector.close();
  });

  it('failure percentage is off by default and ejects at 85% when turned on', () => {
    for (const [failurePercentage, expected] of [
      [false, []],
      [{}, [{ id: 'b5', cause: 'failure-percentage', durationMs: 30_000, ejections: 1 }]],
    ] as const) {
      const t = detecting(6, {
        consecutiveFailures: false,
        successRate: false,
        maxEjectionPercent: 50,
        failurePercentage,
      });
      for (let i = 0; i < 4; i++) traffic(t, `b${i}`, 50, 1);
      traffic(t, 'b4', 50, 0.2); // 80% failures: under the 85% threshold
      traffic(t, 'b5', 50, 0.1); // 90% failures
      t.clock.advance(10_000);
      expect(t.ejections).toEqual(expected);
      t.detector.close();
    }
  });

  it('analyze() runs the interval analysis on demand', () => {
    const t = detecting(6, { consecutiveFailures: false, maxEjectionPercent: 50 });
    for (let i = 0; i < 5; i++) traffic(t, `b${i}`, 100, 1);
    traffic(t, 'b5', 100, 0.2);
    t.detector.analyze();
    expect(t.state('b5')).toBe('ejected');
    t.detector.close();
    expect(() => t.detector.analyze()).toThrow(PoolClosedError);
  });
});

describe('OutlierDetector: Retry-After backpressure', () => {
  it('holds the pause a backend asked for even while its health probes pass', () => {
    const t = detecting(3, { consecutiveFailures: 1 });
    t.call('b0', { ok: false, status: 503, retryAfterMs: 10_000 });
    t.pool.reportProbe('b0', { ok: true, source: 'readiness' });
    expect(t.state('b0')).toBe('ejected');
    t.clock.advance(10_000);
    expect(t.state('b0')).toBe('healthy');
    // An outlier ejection, by contrast, ends at the next passing probe.
    t.call('b1', FAIL);
    expect(t.state('b1')).toBe('ejected');
    t.pool.reportProbe('b1', { ok: true, source: 'readiness' });
    expect(t.state('b1')).toBe('healthy');
    t.detector.close();
  });

  it.each([
    ['503 with 5 s', { ok: false, status: 503, retryAfterMs: 5_000 }, 5_000],
    ['429 with 2 min, capped at 60 s', { ok: false, status: 429, retryAfterMs: 120_000 }, 60_000],
    ['no status (non-HTTP back-off)', { ok: false, retryAfterMs: 1_500 }, 1_500],
  ])('ejects for %s', (_name, outcome, durationMs) => {
    const t = detecting(3);
    t.call('b0', outcome);
    expect(t.state('b0')).toBe('ejected');
    expect(t.ejections).toEqual([{ id: 'b0', cause: 'retry-after', durationMs, ejections: 0 }]);
    t.clock.advance(durationMs - 1);
    expect(t.state('b0')).toBe('ejected');
    t.clock.advance(1);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close();
  });

  it.each([
    ['a 500 (not a back-off status)', {}, { ok: false, status: 500, retryAfterMs: 5_000 }],
    ['a zero wait', {}, { ok: false, status: 503, retryAfterMs: 0 }],
    ['retryAfter: false', { retryAfter: false }, { ok: false, status: 503, retryAfterMs: 5_000 }],
    ['an aborted call', {}, { ok: false, status: 503, retryAfterMs: 5_000, failure: 'aborted' }],
  ] as const)('ignores Retry-After on %s', (_name, options, outcome) => {
    const t = detecting(3, options);
    t.call('b0', outcome);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close();
  });

  it('honours an HTTP-date relative to the clock, through parseRetryAfter', () => {
    const t = detecting(2);
    const start = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    const clock = new ManualClock(start);
    const pool = new BackendPool({ backends: ['http://a:1'], clock, skew: false });
    const detector = new OutlierDetector(pool);
    const retryAfterMs = parseRetryAfter('Wed, 21 Oct 2015 07:28:20 GMT', clock.now());
    const lease = pool.acquire();
    lease.release({
      ok: false,
      status: 503,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
    expect(pool.stats().backends[0]?.ejectedUntil).toBe(start + 20_000);
    detector.close();
    t.detector.close();
  });

  it('is not limited by maxEjectionPercent: when every backend asks, panic keeps calls flowing', () => {
    const t = detecting(3);
    for (const id of ['b0', 'b1', 'b2'])
      t.call(id, { ok: false, status: 503, retryAfterMs: 10_000 });
    expect(t.pool.stats().healthy).toBe(0);
    expect(t.pool.panic).toBe(true);
    const picked = Array.from({ length: 30 }, () => {
      const lease = t.pool.acquire();
      lease.release({ ok: true });
      return lease.backend.id;
    });
    expect(new Set(picked)).toEqual(new Set(['b0', 'b1', 'b2']));
    t.detector.close();
  });

  it('does not count the 503 towards consecutive failures nor raise the multiplier', () => {
    const t = detecting(3);
    t.call('b0', FAIL, 4);
    t.call('b0', { ok: false, status: 503, retryAfterMs: 1_000 });
    t.clock.advance(1_000);
    t.call('b0', FAIL, 4);
    expect(t.state('b0')).toBe('healthy');
    expect(t.detector.status()[0]?.ejections).toBe(0);
    t.detector.close();
  });
});

describe('OutlierDetector: lifecycle', () => {
  it('close() clears its timer and stops listening', () => {
    const t = detecting(3);
    expect(t.clock.pendingTimers()).toBe(1);
    expect(t.clock.refedTimers()).toBe(0);
    t.detector.close();
    expect(t.clock.pendingTimers()).toBe(0);
    t.call('b0', FAIL, 10);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close(); // idempotent
  });

  it('closes with the pool', async () => {
    const t = detecting(3);
    await t.pool.close();
    expect(t.detector.closed).toBe(true);
    expect(t.clock.pendingTimers()).toBe(0);
  });

  it('forgets removed backends', async () => {
    const t = detecting(3);
    t.call('b0', FAIL, 3);
    await t.pool.remove('b0', { drain: false });
    t.pool.add({ url: 'http://10.0.0.1:80', id: 'b0' });
    t.call('b0', FAIL, 3);
    expect(t.state('b0')).toBe('healthy');
    t.detector.close();
  });
});

describe('OutlierDetector: recovery after a total outage', () => {
  it.each([
    ['round robin', () => new RoundRobin({ startIndex: 0 }), 0],
    ['power of two choices', () => new PowerOfTwoChoices(), 0.2],
  ])('spreads traffic over every backend again (%s)', (_name, makeAlgorithm, tolerance) => {
    const n = 4;
    const t = detecting(n, { maxEjectionPercent: 100 }, makeAlgorithm());
    const spread = (calls: number, outcome: LeaseOutcome): Map<string, number> => {
      const counts = new Map<string, number>();
      for (let i = 0; i < calls; i++) {
        const lease = t.pool.acquire();
        counts.set(lease.backend.id, (counts.get(lease.backend.id) ?? 0) + 1);
        lease.release(outcome);
      }
      return counts;
    };
    // The outage: every call fails, every backend is ejected, calls still flow under panic.
    const during = spread(200, FAIL);
    expect(t.pool.backends().every((b) => b.state === 'ejected')).toBe(true);
    expect(t.pool.panic).toBe(true);
    expect(during.size).toBe(n);
    // The backends recover; ejections run out (30 s); traffic must spread over all of them.
    t.clock.advance(30_000);
    expect(t.pool.stats().healthy).toBe(n);
    const after = spread(400, OK);
    expect(after.size).toBe(n);
    for (const count of after.values()) {
      expect(Math.abs(count - 100)).toBeLessThanOrEqual(100 * tolerance);
    }
    t.detector.close();
  });

  it('recovers with the default 10% cap too: the capped backend rejoins when its ejection ends', () => {
    const t = detecting(4);
    for (let i = 0; i < 40; i++) {
      const lease = t.pool.acquire();
      lease.release(FAIL);
    }
    expect(t.pool.backends().filter((b) => b.state === 'ejected')).toHaveLength(1);
    expect(t.skipped.length).toBeGreaterThan(0);
    t.clock.advance(30_000);
    const counts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const lease = t.pool.acquire();
      counts.set(lease.backend.id, (counts.get(lease.backend.id) ?? 0) + 1);
      lease.release(OK);
    }
    expect([...counts.values()]).toEqual([100, 100, 100, 100]);
    t.detector.close();
  });
});
