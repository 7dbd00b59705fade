/**
 * Hedged requests on the injected clock: when the first attempt of a call that is safe to repeat
 * has not answered within the hedge delay, one more attempt goes to another backend, the first
 * response wins, and the other attempt is aborted and released as `cancelled`.
 */
import { describe, expect, it } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { AllAttemptsFailedError } from '../../src/errors/all-attempts-failed-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { BalancedFetchOptions, FetchFunction } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { LeaseOutcome } from '../../src/types.js';

/** How a backend answers an attempt: after `ms` with `status`, or never (`hang`), or refuses. */
type Plan = { ms: number; status?: number } | 'hang' | 'refuse';

function setup(
  plan: (host: string, n: number) => Plan,
  options: BalancedFetchOptions = {},
  backends = ['http://b1', 'http://b2', 'http://b3'],
) {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends,
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    random: seededRandom(3),
    skew: false,
  });
  const released: { backend: string; outcome: LeaseOutcome; latencyMs: number }[] = [];
  pool.on('release', (e) =>
    released.push({ backend: name(e.backend.id), outcome: e.outcome, latencyMs: e.latencyMs }),
  );
  const sent: { host: string; at: number }[] = [];
  const aborted: string[] = [];
  const perHost = new Map<string, number>();
  const transport: FetchFunction = (url, init) => {
    const host = new URL(url).host;
    const n = (perHost.get(host) ?? 0) + 1;
    perHost.set(host, n);
    sent.push({ host, at: clock.now() });
    const p = plan(host, n);
    if (p === 'refuse') {
      const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      return Promise.reject(new TypeError('fetch failed', { cause }));
    }
    return new Promise<Response>((resolve, reject) => {
      init.signal?.addEventListener(
        'abort',
        () => {
          aborted.push(host);
          reject(init.signal?.reason);
        },
        { once: true },
      );
      if (p !== 'hang') {
        clock.setTimeout(() => resolve(new Response(host, { status: p.status ?? 200 })), p.ms);
      }
    });
  };
  const fetch = createBalancedFetch(pool, {
    fetch: transport,
    backoffBaseMs: 0,
    retryBudget: false,
    deadlineMs: false,
    timeoutMs: false,
    ...options,
  });
  const hedges: { backend: string; slow: string; delayMs: number }[] = [];
  fetch.events.on('hedge', (e) =>
    hedges.push({ backend: name(e.backend.id), slow: name(e.slow.id), delayMs: e.delayMs }),
  );
  return { clock, pool, fetch, released, sent, aborted, hedges };
}

/** `b1` for the id `b1:80`. */
const name = (id: string): string => id.replace(/:80$/, '');

/** Runs the clock in small steps until `promise` settles. */
async function drive<T>(clock: ManualClock, promise: Promise<T>, stepMs = 5): Promise<T> {
  let settled = false;
  const done = () => {
    settled = true;
  };
  promise.then(done, done);
  for (let i = 0; i < 4000 && !settled; i++) await clock.advanceAsync(stepMs);
  return promise;
}

const fixed = (afterMs: number): BalancedFetchOptions => ({
  hedge: { afterMs, maxExtraLoad: 0.5 },
});

describe('hedged requests', () => {
  it('a slow first attempt is backed up; the hedge wins and the loser is released as cancelled', async () => {
    const { clock, pool, fetch, released, sent, aborted, hedges } = setup(
      (host) => (host === 'b1' ? 'hang' : { ms: 10 }),
      fixed(50),
    );
    const res = await drive(clock, fetch('/x'));
    expect(await res.text()).toBe('b2');
    expect(sent).toEqual([
      { host: 'b1', at: 0 },
      { host: 'b2', at: 50 },
    ]);
    expect(hedges).toEqual([{ backend: 'b2', slow: 'b1', delayMs: 50 }]);
    expect(aborted).toEqual(['b1']);
    const b1 = released.find((r) => r.backend === 'b1')!;
    // Not the backend's failure, but its time so far counts as latency.
    expect(b1.outcome).toMatchObject({ ok: false, failure: 'cancelled' });
    expect(b1.latencyMs).toBe(60);
    expect(pool.get('b1:80')!.failures).toBe(0);
    expect(pool.get('b1:80')!.latencyEwma).toBe(60);
    expect(pool.stats().inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a first attempt that answers in time is not hedged, and leaves no timer', async () => {
    const { clock, pool, fetch, sent, hedges } = setup(() => ({ ms: 20 }), fixed(50));
    const res = await drive(clock, fetch('/x'));
    expect(await res.text()).toBe('b1');
    expect(sent).toHaveLength(1);
    expect(hedges).toEqual([]);
    expect(pool.stats().inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('when the first attempt answers after the hedge was sent, the hedge is cancelled', async () => {
    const { clock, pool, fetch, released, aborted } = setup(
      (host) => (host === 'b1' ? { ms: 70 } : { ms: 100 }),
      fixed(50),
    );
    const res = await drive(clock, fetch('/x'));
    expect(await res.text()).toBe('b1');
    expect(aborted).toEqual(['b2']);
    expect(released.find((r) => r.backend === 'b2')!.outcome).toMatchObject({
      failure: 'cancelled',
    });
    expect(pool.stats().inFlight).toBe(0);
  });

  it('requests that are not safe to repeat are never hedged', async () => {
    const { clock, fetch, sent } = setup(
      (host) => (host === 'b1' ? { ms: 200 } : { ms: 1 }),
      fixed(50),
    );
    await drive(clock, fetch('/x', { method: 'POST', body: 'order' }));
    expect(sent.map((s) => s.host)).toEqual(['b1']);
    // An idempotency key makes a POST safe to repeat.
    const keyed = setup((host) => (host === 'b1' ? { ms: 200 } : { ms: 1 }), fixed(50));
    const res = await drive(
      keyed.clock,
      keyed.fetch('/x', { method: 'POST', body: 'order', headers: { 'idempotency-key': 'k1' } }),
    );
    expect(await res.text()).toBe('b2');
  });

  it('with a single backend there is nowhere to hedge: the first attempt goes on alone', async () => {
    const { clock, pool, fetch, sent } = setup(() => ({ ms: 80 }), fixed(50), ['http://b1']);
    const res = await drive(clock, fetch('/x'));
    expect(await res.text()).toBe('b1');
    expect(sent).toHaveLength(1);
    expect(pool.get('b1:80')!.failures).toBe(0);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('a retryable status from one attempt waits for the other, and is released as a failure', async () => {
    const { clock, pool, fetch, released } = setup(
      (host) => (host === 'b1' ? { ms: 60, status: 503 } : { ms: 30 }),
      fixed(50),
    );
    const res = await drive(clock, fetch('/x'));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('b2');
    expect(released.find((r) => r.backend === 'b1')!.outcome).toMatchObject({
      ok: false,
      status: 503,
      failure: 'http',
    });
    expect(pool.stats().inFlight).toBe(0);
  });

  it('when both attempts fail, retries go on, and the error names the hedge', async () => {
    const { clock, pool, fetch, sent } = setup(
      (host) => (host === 'b3' ? 'refuse' : { ms: 100, status: 503 }),
      { ...fixed(50), retries: 1, retryOn: [] },
    );
    const res = await drive(clock, fetch('/x'));
    // b1 and b2 answered 503 (not retried here: retryOn is empty); the first 503 is returned.
    expect(res.status).toBe(503);
    expect(sent.map((s) => s.host)).toEqual(['b1', 'b2']);
    expect(pool.stats().inFlight).toBe(1);
    await res.text();
    expect(pool.stats().inFlight).toBe(0);

    const all = setup(() => 'refuse', { ...fixed(50), retries: 1 });
    const error = (await drive(all.clock, all.fetch('/x')).catch(
      (e: unknown) => e,
    )) as AllAttemptsFailedError;
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    // Refused at once: no hedge was needed, the retry went to the next backend.
    expect(all.sent.map((s) => s.host)).toEqual(['b1', 'b2']);

    const slowThenRefused = setup((host) => (host === 'b1' ? { ms: 300, status: 502 } : 'refuse'), {
      ...fixed(50),
      retries: 0,
    });
    const failed = (await drive(slowThenRefused.clock, slowThenRefused.fetch('/x')).catch(
      (e: unknown) => e,
    )) as Response;
    // The hedge on b2 was refused; b1's 502 arrives later and is what the call returns.
    expect(failed.status).toBe(502);
    await failed.text();
    expect(slowThenRefused.pool.stats().inFlight).toBe(0);
  });

  it('an error lists the hedge among the attempts', async () => {
    const { clock, pool, fetch } = setup((host) => (host === 'b1' ? 'hang' : 'refuse'), {
      ...fixed(50),
      retries: 0,
      timeoutMs: 200,
    });
    const error = (await drive(clock, fetch('/x')).catch(
      (e: unknown) => e,
    )) as AllAttemptsFailedError;
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect(error.attempts.map((a) => [a.backend, a.outcome, a.hedge ?? false])).toEqual([
      ['b2:80', 'connect', true],
      ['b1:80', 'timeout', false],
    ]);
    expect(error.message).toContain('b2:80 (hedge) connect (ECONNREFUSED)');
    expect(pool.stats().inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a caller abort during a race ends both attempts without blaming either backend', async () => {
    const { clock, pool, fetch, released } = setup(() => 'hang', fixed(50));
    const controller = new AbortController();
    const call = fetch('/x', { signal: controller.signal });
    await clock.advanceAsync(60);
    controller.abort();
    await expect(call).rejects.toMatchObject({ name: 'AbortError' });
    expect(released.map((r) => r.outcome.failure).sort()).toEqual(['aborted', 'aborted']);
    expect(pool.stats().backends.every((b) => b.failures === 0)).toBe(true);
    expect(pool.stats().inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('hedges spend a budget: at most maxExtraLoad of calls are hedged', async () => {
    const { clock, fetch, hedges } = setup((host) => (host === 'b1' ? { ms: 100 } : { ms: 10 }), {
      hedge: { afterMs: 20, maxExtraLoad: 0.05, minHedgesPerSec: 0 },
    });
    for (let i = 0; i < 200; i++) await (await drive(clock, fetch('/x'), 10)).text();
    // Round robin sends a third of the first attempts to the slow b1; without a budget about
    // 67 calls would be hedged. With no per-second floor, 5% of 200 calls is the bound.
    expect(hedges.length).toBeGreaterThan(5);
    expect(hedges.length).toBeLessThanOrEqual(10);
    expect(fetch.explainHedging()).toMatchObject({ mode: 'fixed', delayMs: 20 });
  });

  it('hedges also need the retry budget', async () => {
    const { clock, fetch, hedges } = setup((host) => (host === 'b1' ? { ms: 100 } : { ms: 10 }), {
      ...fixed(20),
      retryBudget: { percentCanRetry: 0, minRetriesPerSec: 0 },
    });
    await (await drive(clock, fetch('/x'))).text();
    expect(hedges).toEqual([]);
  });

  it('the default delay is the p95 of recent latencies, once enough samples were seen', async () => {
    // 19 of every 20 attempts on b2/b3 take 10 ms; b1 takes 200 ms.
    const { clock, fetch, hedges } = setup((host) => (host === 'b1' ? { ms: 200 } : { ms: 10 }), {
      hedge: true,
    });
    expect(fetch.explainHedging()).toMatchObject({ mode: 'percentile', percentile: 95 });
    expect(fetch.explainHedging()!.delayMs).toBeUndefined();
    expect(fetch.explainHedging()!.note).toMatch(/no hedge yet: 0 of the 20 latency samples/);
    // The first calls: no samples, no hedge.
    const first = drive(clock, fetch('/x'), 10);
    expect((await first).status).toBe(200);
    expect(hedges).toEqual([]);
    for (let i = 0; i < 40; i++) await (await drive(clock, fetch('/x'), 10)).text();
    await clock.advanceAsync(1000);
    const explained = fetch.explainHedging()!;
    // 28 samples at 10 ms and 13 at 200 ms: the p95 is 200 ms, so hedging would not help; the
    // percentile follows the distribution, as Finagle's does.
    expect(explained.samples).toBe(41);
    expect(explained.delayMs).toBe(200);
    expect(explained.note).toContain('p95 of 41 latencies');
  });

  it('hedging starts with the minSamples-th latency, not a refresh period later', async () => {
    // 20 calls of 10 ms, all within the first refresh period (1 s), then one slow attempt.
    let n = 0;
    const { clock, fetch, hedges } = setup(() => (++n === 21 ? { ms: 300 } : { ms: 10 }), {
      hedge: true,
    });
    for (let i = 0; i < 19; i++) await (await drive(clock, fetch('/x'), 10)).text();
    expect(fetch.explainHedging()).toMatchObject({ samples: 19, delayMs: undefined });
    expect(fetch.explainHedging()!.note).toMatch(/no hedge yet: 19 of the 20 latency samples/);
    await (await drive(clock, fetch('/x'), 10)).text();
    expect(clock.now()).toBeLessThan(1000);
    expect(fetch.explainHedging()).toMatchObject({ samples: 20, delayMs: 10 });
    const res = await drive(clock, fetch('/x'), 1);
    await res.text();
    expect(hedges).toEqual([{ backend: 'b1', slow: 'b3', delayMs: 10 }]);
  });

  it('explainHedging is undefined when hedging is off, and options are validated', () => {
    const { fetch, pool } = setup(() => ({ ms: 1 }));
    expect(fetch.explainHedging()).toBeUndefined();
    for (const [hedge, field] of [
      [{ maxExtraLoad: 0 }, 'hedge.maxExtraLoad'],
      [{ maxExtraLoad: 1.5 }, 'hedge.maxExtraLoad'],
      [{ afterMs: -1 }, 'hedge.afterMs'],
      [{ minSamples: 0 }, 'hedge.minSamples'],
      [{ windowMs: 0 }, 'hedge.windowMs'],
      [{ other: 1 }, 'hedge.other'],
      ['yes', 'hedge'],
    ] as const) {
      expect(() => createBalancedFetch(pool, { hedge: hedge as never })).toThrow(
        expect.objectContaining({ field }),
      );
    }
  });
});
