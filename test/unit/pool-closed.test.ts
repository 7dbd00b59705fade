/**
 * After `close()`, every call that would change a pool throws `PoolClosedError`; calls already
 * in flight still release, and the pool's own observers stay quiet while it closes.
 */
import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  HealthChecker,
  OutlierDetector,
  PoolClosedError,
  type Probe,
  RoundRobin,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';

function open() {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends: ['http://10.0.0.1:80', 'http://10.0.0.2:80'],
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    skew: false,
  });
  return { pool, clock };
}

const A = '10.0.0.1:80';

/** Every call that changes a pool, with valid arguments. */
const MUTATIONS: readonly [string, (pool: BackendPool) => unknown][] = [
  ['acquire', (p) => p.acquire()],
  ['add', (p) => p.add('http://10.0.0.3:80')],
  ['remove', (p) => p.remove(A)],
  ['remove without draining', (p) => p.remove(A, { drain: false })],
  ['setWeight', (p) => p.setWeight(A, 5)],
  ['drain', (p) => p.drain(A)],
  ['undrain', (p) => p.undrain(A)],
  ['setHealthy', (p) => p.setHealthy(A, false)],
  ['reportProbe', (p) => p.reportProbe(A, { ok: false })],
  ['eject', (p) => p.eject(A, 1000)],
  ['uneject', (p) => p.uneject(A)],
];

describe('BackendPool after close()', () => {
  it.each(MUTATIONS)('%s throws PoolClosedError and changes nothing', async (_name, call) => {
    const { pool } = open();
    await pool.close();
    const before = JSON.stringify(pool.stats());
    let thrown: unknown;
    try {
      // Async methods throw before returning a promise, like the others.
      const result = call(pool);
      if (result instanceof Promise) await result;
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PoolClosedError);
    expect(JSON.stringify(pool.stats())).toBe(before);
  });

  it.each(MUTATIONS)(
    '%s throws PoolClosedError while close({ graceMs }) waits for calls',
    async (_name, call) => {
      const { pool, clock } = open();
      const lease = pool.acquire();
      const closing = pool.close({ graceMs: 5_000 });
      let thrown: unknown;
      try {
        const result = call(pool);
        if (result instanceof Promise) await result;
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(PoolClosedError);
      // The call in flight still releases, and the close completes with it.
      expect(lease.release({ ok: true })).toBe(true);
      await closing;
      expect(clock.pendingTimers()).toBe(0);
    },
  );

  it('reads still answer after close', async () => {
    const { pool } = open();
    await pool.close();
    expect(pool.has(A)).toBe(true);
    expect(pool.get(A)?.state).toBe('healthy');
    expect(pool.backends()).toHaveLength(2);
    expect(pool.stats().total).toBe(2);
    expect(pool.closed).toBe(true);
  });

  it('an ejection that ends while close({ graceMs }) waits does not throw from its timer', async () => {
    const { pool, clock } = open();
    pool.eject(A, 1_000);
    const lease = pool.acquire();
    const closing = pool.close({ graceMs: 5_000 });
    clock.advance(1_000);
    expect(pool.get(A)?.state).toBe('healthy');
    lease.release();
    await closing;
  });

  it('an outlier detector does not throw out of release() while the pool closes', async () => {
    const { pool } = open();
    new OutlierDetector(pool, { consecutiveFailures: 1 });
    const leases = [pool.acquire(), pool.acquire()];
    const closing = pool.close({ graceMs: 5_000 });
    const changes: string[] = [];
    pool.on('state', (e) => changes.push(`${e.backend.id}:${e.to}`));
    expect(() => leases[0]!.release({ ok: false, failure: 'connect' })).not.toThrow();
    expect(() => leases[1]!.release({ ok: false, status: 503, retryAfterMs: 1_000 })).not.toThrow();
    expect(changes).toEqual([]);
    await closing;
  });

  it('a health probe that ends while the pool closes reports nothing and throws nothing', async () => {
    const { pool, clock } = open();
    let finish: ((ok: boolean) => void) | undefined;
    const probe: Probe = () =>
      new Promise<boolean>((resolve) => {
        finish ??= resolve;
      });
    const checker = new HealthChecker(pool, {
      probe,
      intervalMs: 1_000,
      timeoutMs: 500,
      jitter: 0,
      unhealthyThreshold: 1,
    });
    const results: boolean[] = [];
    checker.on('probe', (e) => results.push(e.ok));
    checker.start();
    await clock.advanceAsync(0);
    expect(finish).toBeDefined();
    const lease = pool.acquire();
    const closing = pool.close({ graceMs: 5_000 });
    const changes: string[] = [];
    pool.on('state', (e) => changes.push(`${e.backend.id}:${e.to}`));
    finish!(false);
    await clock.advanceAsync(0);
    expect(results).toEqual([false]);
    expect(changes).toEqual([]);
    lease.release();
    await closing;
  });
});
