/**
 * Durations of 2^31 ms or more: platform timers fire them after 1 ms (Node's
 * TimeoutOverflowWarning). The rule: every duration option is honoured exactly (systemClock
 * chains timers), and values beyond 2^50 ms or not finite are refused naming the option.
 *
 * The systemClock cases run under vitest's fake timers, which model the platform's overflow
 * (a delay above 2^31 - 1 fires after 1 ms), so nothing waits in real time.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_TIMER_MS } from '../../src/clock.js';
import {
  BackendPool,
  createBalancedFetch,
  HealthChecker,
  LoadBalancerConfigError,
  OutlierDetector,
  SessionPersistenceManager,
  systemClock,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { MAX_DURATION_MS } from '../../src/validate.js';

const DAY = 86_400_000;
const THIRTY_DAYS = 30 * DAY;

describe('systemClock honours every delay exactly', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('the fake platform timer itself fires an overlong delay after 1 ms (the defect modelled)', () => {
    const fn = vi.fn();
    setTimeout(fn, THIRTY_DAYS);
    vi.advanceTimersByTime(2);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a 30-day timer fires after 30 days, not before', () => {
    const fn = vi.fn();
    systemClock.setTimeout(fn, THIRTY_DAYS);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(THIRTY_DAYS - MAX_TIMER_MS - 1);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a chained timer can be cancelled at any link, and unref/ref reach the live link', () => {
    const fn = vi.fn();
    const h = systemClock.setTimeout(fn, 3 * MAX_TIMER_MS);
    expect(h.unref?.()).toBe(h);
    vi.advanceTimersByTime(MAX_TIMER_MS + 10);
    systemClock.clearTimeout(h);
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an infinite delay never fires and holds no platform timer', () => {
    const fn = vi.fn();
    const h = systemClock.setTimeout(fn, Number.POSITIVE_INFINITY);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 * MAX_TIMER_MS);
    expect(fn).not.toHaveBeenCalled();
    systemClock.clearTimeout(h);
  });

  it('a balanced fetch with 30-day timeoutMs and deadlineMs does not fail at once', async () => {
    const pool = new BackendPool({ backends: ['http://10.0.0.1:80'] });
    const fetch = createBalancedFetch(pool, {
      timeoutMs: THIRTY_DAYS,
      deadlineMs: THIRTY_DAYS,
      fetch: () =>
        new Promise<Response>((resolve) => setTimeout(() => resolve(new Response('ok')), 5_000)),
    });
    const call = fetch('/x');
    await vi.advanceTimersByTimeAsync(5_000);
    const res = await call;
    expect(await res.text()).toBe('ok');
    await pool.close();
  });

  it('a health check every 30 days probes once, not hundreds of times a second', async () => {
    const pool = new BackendPool({ backends: ['http://10.0.0.1:80'] });
    const probe = vi.fn(async () => true);
    const checker = new HealthChecker(pool, {
      type: 'custom',
      probe,
      intervalMs: THIRTY_DAYS,
      fastIntervalMs: THIRTY_DAYS,
      unhealthyIntervalMs: THIRTY_DAYS,
      timeoutMs: 1000,
      jitter: 0,
    }).start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(probe).toHaveBeenCalledTimes(1);
    checker.stop();
    await pool.close();
  });

  it('a 30-day ejection and a 30-day drain grace last 30 days', async () => {
    const pool = new BackendPool({
      backends: ['http://10.0.0.1:80', 'http://10.0.0.2:80'],
      skew: false,
    });
    pool.eject('10.0.0.1:80', THIRTY_DAYS, 'test');
    const lease = pool.acquire({ affinity: { id: '10.0.0.2:80' } });
    const drained = vi.fn();
    void pool.drain('10.0.0.2:80', { graceMs: THIRTY_DAYS }).then(drained);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pool.get('10.0.0.1:80')?.state).toBe('ejected');
    expect(drained).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(THIRTY_DAYS);
    expect(pool.get('10.0.0.1:80')?.state).toBe('healthy');
    expect(drained).toHaveBeenCalledTimes(1);
    lease.release({ ok: true });
    await pool.close();
  });
});

describe('ManualClock follows the same rule', () => {
  it('honours a delay past 2^31 - 1 ms and never fires an infinite one', () => {
    const clock = new ManualClock();
    const long = vi.fn();
    const never = vi.fn();
    clock.setTimeout(long, THIRTY_DAYS);
    clock.setTimeout(never, Number.POSITIVE_INFINITY);
    clock.advance(THIRTY_DAYS - 1);
    expect(long).not.toHaveBeenCalled();
    clock.advance(1);
    expect(long).toHaveBeenCalledTimes(1);
    clock.runAll();
    expect(never).not.toHaveBeenCalled();
    expect(clock.now()).toBe(THIRTY_DAYS);
  });
});

describe('duration options beyond the limit are refused, naming the option and the limit', () => {
  const clock = new ManualClock();
  const tooLong = MAX_DURATION_MS * 2;
  const pool = () => new BackendPool({ backends: ['http://10.0.0.1:80'], clock });
  const cases: [string, () => unknown][] = [
    ['slowStartMs', () => new BackendPool({ slowStartMs: tooLong })],
    ['drainGraceMs', () => new BackendPool({ drainGraceMs: tooLong })],
    ['latencyDecayMs', () => new BackendPool({ latencyDecayMs: Number.POSITIVE_INFINITY })],
    ['durationMs', () => pool().eject('10.0.0.1:80', tooLong)],
    ['timeoutMs', () => createBalancedFetch(pool(), { timeoutMs: tooLong })],
    ['deadlineMs', () => createBalancedFetch(pool(), { deadlineMs: Number.POSITIVE_INFINITY })],
    ['backoffMaxMs', () => createBalancedFetch(pool(), { backoffMaxMs: tooLong })],
    ['unreadBodyTimeoutMs', () => createBalancedFetch(pool(), { unreadBodyTimeoutMs: tooLong })],
    ['intervalMs', () => new HealthChecker(pool(), { intervalMs: tooLong })],
    ['baseEjectionMs', () => new OutlierDetector(pool(), { baseEjectionMs: tooLong })],
    ['ttlMs', () => new SessionPersistenceManager(pool(), { ttlMs: tooLong })],
  ];
  it.each(cases)('%s', (field, make) => {
    let caught: unknown;
    try {
      make();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(LoadBalancerConfigError);
    expect((caught as LoadBalancerConfigError).field).toBe(field);
    expect((caught as Error).message).toContain(String(MAX_DURATION_MS));
  });
});
