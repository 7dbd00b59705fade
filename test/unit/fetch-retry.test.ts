import { describe, expect, it } from 'vitest';
import { RandomPick } from '../../src/algorithms/random-pick.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { backoffDelay } from '../../src/backoff.js';
import { RetryBudget } from '../../src/call/retry-budget.js';
import { AllAttemptsFailedError } from '../../src/errors/all-attempts-failed-error.js';
import { TimeoutError } from '../../src/errors/timeout-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { BalancedFetchOptions, FetchFunction } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { Algorithm } from '../../src/types.js';

type Behaviour = number | 'refuse' | 'reset' | 'hang' | ((init: RequestInit) => Response);

interface Call {
  url: string;
  host: string;
  init: RequestInit;
  at: number;
}

/**
 * A network double: each call answers as `behaviour(host, n, index)` says (`n` counts calls to
 * that host, `index` all calls, from 1).
 */
function setup(
  behaviour: (host: string, n: number, index: number) => Behaviour,
  options: BalancedFetchOptions = {},
  algorithm: Algorithm = new RoundRobin({ startIndex: 0 }),
) {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends: ['http://b1', 'http://b2', 'http://b3'],
    algorithm,
    clock,
    random: seededRandom(3),
    skew: false,
  });
  const calls: Call[] = [];
  const perHost = new Map<string, number>();
  const fetch: FetchFunction = (url, init) => {
    const host = new URL(url).host;
    const n = (perHost.get(host) ?? 0) + 1;
    perHost.set(host, n);
    calls.push({ url, host, init, at: clock.now() });
    const b = behaviour(host, n, calls.length);
    if (b === 'refuse') return Promise.reject(networkError('ECONNREFUSED'));
    if (b === 'reset') return Promise.reject(networkError('ECONNRESET'));
    if (b === 'hang') {
      return new Promise((_resolve, reject) => {
        init.signal?.addEventListener('abort', () => reject(init.signal?.reason), { once: true });
      });
    }
    if (typeof b === 'function') return Promise.resolve(b(init));
    return Promise.resolve(new Response(`${host}:${b}`, { status: b }));
  };
  const balanced = createBalancedFetch(pool, {
    fetch,
    random: seededRandom(99),
    ...options,
  });
  return { clock, pool, calls, fetch: balanced };
}

function networkError(code: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
}

/** Drives the manual clock until `promise` settles. */
async function drive<T>(clock: ManualClock, promise: Promise<T>, stepMs = 5): Promise<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 2000 && !settled; i++) await clock.advanceAsync(stepMs);
  return promise;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

const inFlight = (pool: BackendPool): number => pool.stats().inFlight;

describe('backoffDelay (Envoy: full jitter in [0, (2^n - 1) x base), capped)', () => {
  it.each([
    [1, 24],
    [2, 74],
    [3, 174],
    [4, 249],
    [10, 249],
    [100, 249],
  ])('retry %i waits at most %i ms with base 25, cap 250', (n, max) => {
    expect(backoffDelay(n, 25, 250, () => 0.999_999)).toBe(max);
    expect(backoffDelay(n, 25, 250, () => 0)).toBe(0);
  });

  it('is uniform over its range', () => {
    const random = seededRandom(5);
    const samples = Array.from({ length: 4000 }, () => backoffDelay(2, 25, 250, random));
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(Math.min(...samples)).toBe(0);
    expect(Math.max(...samples)).toBe(74);
    expect(mean).toBeGreaterThan(35);
    expect(mean).toBeLessThan(39);
  });
});

describe('retries', () => {
  it('retries a refused connection on another backend, waiting the backoff on the clock', async () => {
    const { clock, pool, calls, fetch } = setup((host) => (host === 'b1' ? 'refuse' : 200));
    const delays: number[] = [];
    fetch.events.on('retry', (e) => delays.push(e.delayMs));
    const res = await drive(clock, fetch('/x'), 1);
    expect(calls.length).toBe(2);
    expect(calls[0]!.host).toBe('b1');
    expect(calls[1]!.host).not.toBe('b1');
    expect(await res.text()).toBe(`${calls[1]!.host}:200`);
    // The second attempt starts once the jittered delay has passed on the manual clock.
    expect(delays).toEqual([backoffDelay(1, 25, 250, seededRandom(99))]);
    expect(calls[1]!.at - calls[0]!.at).toBe(delays[0]);
    expect(pool.stats().backends.map((b) => b.failures)).toEqual([1, 0, 0]);
    expect(inFlight(pool)).toBe(0);
  });

  it('follows the jittered exponential schedule from the injected random', async () => {
    const { clock, calls, fetch } = setup(() => 'refuse', { retries: 4 });
    const delays: number[] = [];
    fetch.events.on('retry', (e) => delays.push(e.delayMs));
    await rejection(drive(clock, fetch('/x'), 1));
    const random = seededRandom(99);
    const expected = [1, 2, 3, 4].map((n) => backoffDelay(n, 25, 250, random));
    expect(delays).toEqual(expected);
    const gaps = calls.slice(1).map((c, i) => c.at - calls[i]!.at);
    expect(gaps).toEqual(expected);
  });

  it.each([
    [500, 1],
    [501, 1],
    [502, 2],
    [503, 2],
    [504, 2],
    [429, 1],
    [404, 1],
    [200, 1],
  ])('status %i on the first backend: %i attempt(s)', async (status, attempts) => {
    const { clock, calls, pool, fetch } = setup((host) => (host === 'b1' ? status : 200));
    const res = await drive(clock, fetch('/x'));
    await res.text();
    expect(calls.length).toBe(attempts);
    expect(res.status).toBe(attempts === 1 ? status : 200);
    expect(inFlight(pool)).toBe(0);
  });

  it('returns the last response when every attempt got a retryable status', async () => {
    const { clock, calls, pool, fetch } = setup((_host, _n, index) => (index === 3 ? 504 : 503));
    const res = await drive(clock, fetch('/x'));
    expect(new Set(calls.map((c) => c.host)).size).toBe(3);
    expect(res.status).toBe(504);
    expect(await res.text()).toBe(`${calls[2]!.host}:504`);
    expect(inFlight(pool)).toBe(0);
    expect(pool.stats().backends.map((b) => b.failures)).toEqual([1, 1, 1]);
  });

  it('tries a different backend on each retry', async () => {
    for (let seed = 0; seed < 20; seed++) {
      const clock = new ManualClock();
      const pool = new BackendPool({
        backends: ['http://b1', 'http://b2', 'http://b3'],
        algorithm: new RandomPick(),
        clock,
        random: seededRandom(seed),
        skew: false,
      });
      const hosts: string[] = [];
      const fetch = createBalancedFetch(pool, {
        fetch: (url) => {
          hosts.push(new URL(url).host);
          return Promise.reject(networkError('ECONNREFUSED'));
        },
      });
      const error = await rejection(drive(clock, fetch('/x')));
      expect(error).toBeInstanceOf(AllAttemptsFailedError);
      expect(new Set(hosts).size).toBe(3);
    }
  });

  it('says which backends were tried and why, with the last error as cause', async () => {
    const { clock, calls, fetch } = setup((_host, _n, index) =>
      index === 1 ? 'refuse' : index === 2 ? 503 : 'reset',
    );
    const error = (await rejection(drive(clock, fetch('/x')))) as AllAttemptsFailedError;
    const [a, b, c] = calls.map((call) => `${call.host}:80`);
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect(error.code).toBe('LB_ALL_ATTEMPTS_FAILED');
    expect(
      error.attempts.map(({ backend, outcome, status }) => ({ backend, outcome, status })),
    ).toEqual([
      { backend: a, outcome: 'connect', status: undefined },
      { backend: b, outcome: 'http', status: 503 },
      { backend: c, outcome: 'reset', status: undefined },
    ]);
    expect(new Set([a, b, c]).size).toBe(3);
    expect((error.cause as TypeError).message).toBe('fetch failed');
    expect(error.message).toContain(
      `${a} connect (ECONNREFUSED); ${b} status 503; ${c} reset (ECONNRESET)`,
    );
    expect(error.message).toMatch(/all 2 retries were used/);
  });

  it('retries: 0 makes one attempt', async () => {
    const { clock, calls, fetch } = setup(() => 'refuse', { retries: 0 });
    const error = (await rejection(drive(clock, fetch('/x')))) as AllAttemptsFailedError;
    expect(calls.length).toBe(1);
    expect(error.stoppedBecause).toMatch(/retries are off/);
  });
});

describe('which requests may be retried', () => {
  it.each([
    ['GET', 'reset', 2],
    ['PUT', 'reset', 2],
    ['DELETE', 503, 2],
    ['HEAD', 502, 2],
    ['OPTIONS', 'reset', 2],
    ['POST', 'reset', 1],
    ['POST', 503, 1],
    ['POST', 'hang', 1],
    ['PATCH', 504, 1],
    // Nothing was sent: any method may go to another backend.
    ['POST', 'refuse', 2],
    ['PATCH', 'refuse', 2],
  ] as const)('%s after %s: %i attempt(s)', async (method, failure, attempts) => {
    const { clock, calls, pool, fetch } = setup((host) => (host === 'b1' ? failure : 200), {
      timeoutMs: 100,
    });
    const body = method === 'GET' || method === 'HEAD' ? null : 'payload';
    const result = await drive(clock, fetch('/x', { method, body })).then(
      (r) => r,
      (e: unknown) => e,
    );
    expect(calls.length).toBe(attempts);
    if (result instanceof Response) await result.arrayBuffer();
    if (attempts === 1 && !(result instanceof Response)) {
      expect((result as AllAttemptsFailedError).stoppedBecause).toMatch(/not idempotent/);
    }
    expect(inFlight(pool)).toBe(0);
  });

  it('a request with an Idempotency-Key is retried whatever its method', async () => {
    const { clock, calls, fetch } = setup((host) => (host === 'b1' ? 503 : 200));
    const res = await drive(
      clock,
      fetch('/x', { method: 'POST', body: 'p', headers: { 'Idempotency-Key': 'k-1' } }),
    );
    expect(res.status).toBe(200);
    expect(calls.length).toBe(2);
  });

  it('retryMethods and idempotencyKeyHeader are configurable', async () => {
    const a = setup((host) => (host === 'b1' ? 503 : 200), { retryMethods: ['get'] });
    await drive(a.clock, a.fetch('/x', { method: 'PUT', body: 'p' }));
    expect(a.calls.length).toBe(1);
    const b = setup((host) => (host === 'b1' ? 503 : 200), { idempotencyKeyHeader: false });
    await drive(
      b.clock,
      b.fetch('/x', { method: 'POST', body: 'p', headers: [['idempotency-key', 'k']] }),
    );
    expect(b.calls.length).toBe(1);
    const c = setup((host) => (host === 'b1' ? 500 : 200), { retryOn: [500] });
    await drive(c.clock, c.fetch('/x'));
    expect(c.calls.length).toBe(2);
  });

  it('replays a string body on the retry', async () => {
    const seen: string[] = [];
    const { clock, fetch } = setup((host) =>
      host === 'b1'
        ? 'reset'
        : (init) => {
            seen.push(String(init.body));
            return new Response('ok');
          },
    );
    await drive(clock, fetch('/x', { method: 'PUT', body: 'hello' }));
    expect(seen).toEqual(['hello']);
  });

  it('does not retry a streaming body unless it is buffered by choice', async () => {
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode('streamed'));
          c.close();
        },
      });
    const a = setup((host) => (host === 'b1' ? 503 : 200));
    const res = await drive(a.clock, a.fetch('/x', { method: 'PUT', body: stream() }));
    expect(res.status).toBe(503);
    expect(a.calls.length).toBe(1);
    expect((a.calls[0]!.init as { duplex?: string }).duplex).toBe('half');

    const bodies: string[] = [];
    const b = setup(
      (host) =>
        host === 'b1'
          ? 503
          : (init) => {
              bodies.push(new TextDecoder().decode(init.body as Uint8Array));
              return new Response('ok');
            },
      { bufferBody: true },
    );
    const ok = await drive(b.clock, b.fetch('/x', { method: 'PUT', body: stream() }));
    expect(ok.status).toBe(200);
    expect(b.calls.length).toBe(2);
    expect(bodies).toEqual(['streamed']);
  });

  it("buffers a Request's body when its Content-Length is small ('auto')", async () => {
    const bodies: string[] = [];
    const { clock, calls, fetch } = setup((host) =>
      host === 'b1'
        ? 'reset'
        : (init) => {
            bodies.push(new TextDecoder().decode(init.body as Uint8Array));
            return new Response('ok');
          },
    );
    const request = new Request('http://b1/x', {
      method: 'PUT',
      body: 'abc',
      headers: { 'content-length': '3' },
    });
    await drive(clock, fetch(request));
    expect(calls.length).toBe(2);
    expect(bodies).toEqual(['abc']);
    // Without a Content-Length the body is a one-shot stream: no retry.
    const again = setup((host) => (host === 'b1' ? 'reset' : 200));
    await rejection(
      drive(again.clock, again.fetch(new Request('http://b1/x', { method: 'PUT', body: 'abc' }))),
    );
    expect(again.calls.length).toBe(1);
  });

  it('drops a sticky pin to a backend that failed in this call', async () => {
    const { clock, calls, fetch } = setup((host) => (host === 'b2' ? 'refuse' : 200), {
      context: () => ({ affinity: { id: 'b2:80' } }),
    });
    await drive(clock, fetch('/x'));
    expect(calls.map((c) => c.host)).toEqual(['b2', 'b1']);
  });
});

describe('retry budget', () => {
  it('stops retrying when the budget is spent', async () => {
    const budget = new RetryBudget({
      minRetriesPerSec: 0,
      percentCanRetry: 0.5,
      clock: new ManualClock(),
    });
    const { clock, calls, fetch } = setup(() => 'refuse', { retryBudget: budget });
    expect(fetch.retryBudget).toBe(budget);
    const first = (await rejection(drive(clock, fetch('/x')))) as AllAttemptsFailedError;
    expect(first.attempts.length).toBe(1);
    expect(first.stoppedBecause).toMatch(/retry budget/);
    const second = (await rejection(drive(clock, fetch('/x')))) as AllAttemptsFailedError;
    expect(second.attempts.length).toBe(2);
    expect(calls.length).toBe(3);
  });

  it('is on by default and can be turned off', () => {
    expect(setup(() => 200).fetch.retryBudget).toBeInstanceOf(RetryBudget);
    expect(setup(() => 200, { retryBudget: false }).fetch.retryBudget).toBeUndefined();
    expect(
      setup(() => 200, { retryBudget: { percentCanRetry: 0.1 } }).fetch.retryBudget
        ?.percentCanRetry,
    ).toBe(0.1);
  });
});

describe('timeouts and aborts', () => {
  it('a hanging attempt times out and the retry goes elsewhere', async () => {
    const { clock, calls, pool, fetch } = setup((host) => (host === 'b1' ? 'hang' : 200), {
      timeoutMs: 100,
    });
    const errors: unknown[] = [];
    fetch.events.on('failure', (e) => errors.push(e.error));
    const res = await drive(clock, fetch('/x'));
    expect(calls.length).toBe(2);
    expect(calls[0]!.host).toBe('b1');
    expect(await res.text()).toBe(`${calls[1]!.host}:200`);
    expect(calls[1]!.host).not.toBe('b1');
    expect(errors.length).toBe(1);
    expect(errors[0]).toBeInstanceOf(TimeoutError);
    expect((errors[0] as TimeoutError).scope).toBe('attempt');
    expect((errors[0] as TimeoutError).backend).toBe('b1:80');
    expect(pool.stats().backends[0]!.failures).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('times out even when the fetch implementation ignores the signal', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({ backends: ['http://b1'], clock, random: seededRandom(1) });
    let release: ((r: Response) => void) | undefined;
    const late = new Response('late');
    const fetch = createBalancedFetch(pool, {
      retries: 0,
      timeoutMs: 50,
      fetch: () =>
        new Promise<Response>((resolve) => {
          release = resolve;
        }),
    });
    const error = (await rejection(drive(clock, fetch('/x')))) as AllAttemptsFailedError;
    expect(error.cause).toBeInstanceOf(TimeoutError);
    expect(pool.stats().inFlight).toBe(0);
    release!(late);
    await clock.advanceAsync(0);
    expect(late.bodyUsed).toBe(true);
  });

  describe('default time limits (nothing configured)', () => {
    it('a hanging backend: each retryable attempt gets 5 s, the call ends at the 15 s deadline', async () => {
      const { clock, calls, pool, fetch } = setup(() => 'hang', { backoffBaseMs: 0 });
      const error = (await rejection(drive(clock, fetch('/x'), 100))) as TimeoutError;
      expect(error).toBeInstanceOf(TimeoutError);
      expect(error.scope).toBe('deadline');
      expect(error.timeoutMs).toBe(15_000);
      expect(calls.map((c) => c.at)).toEqual([0, 5000, 10_000]);
      expect(error.attempts.map((a) => a.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
      expect(clock.now()).toBe(15_000);
      expect(inFlight(pool)).toBe(0);
      expect(clock.pendingTimers()).toBe(0);
    });

    it('a request that may not be retried after a timeout gets the whole deadline', async () => {
      const { clock, calls, pool, fetch } = setup(() => 'hang');
      const error = (await rejection(
        drive(clock, fetch('/x', { method: 'POST', body: 'x' }), 100),
      )) as TimeoutError;
      expect(error.scope).toBe('deadline');
      expect(calls.map((c) => c.at)).toEqual([0]);
      expect(clock.now()).toBe(15_000);
      expect(inFlight(pool)).toBe(0);
    });

    it('the default deadline bounds the time to the response, not the body', async () => {
      let push!: (text: string | null) => void;
      const { clock, pool, fetch } = setup(() => () => {
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            push = (t) => (t === null ? c.close() : c.enqueue(new TextEncoder().encode(t)));
          },
        });
        return new Response(body);
      });
      const res = await fetch('/stream');
      const text = res.text();
      for (let i = 0; i < 6; i++) {
        await clock.advanceAsync(10_000);
        push(`${i}`);
      }
      push(null);
      expect(await text).toBe('012345');
      expect(inFlight(pool)).toBe(0);
      expect(clock.pendingTimers()).toBe(0);
    });

    it('false turns both limits off', async () => {
      const { clock, calls, pool, fetch } = setup(() => 'hang', {
        timeoutMs: false,
        deadlineMs: false,
      });
      const controller = new AbortController();
      const pending = fetch('/x', { signal: controller.signal });
      await clock.advanceAsync(600_000);
      expect(calls.length).toBe(1);
      expect(inFlight(pool)).toBe(1);
      expect(clock.pendingTimers()).toBe(0);
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      expect(inFlight(pool)).toBe(0);
    });

    it('an explicit deadline still covers the body', async () => {
      // Like a real fetch, the body errors when the request's signal aborts.
      const { clock, fetch } = setup(
        () => (init) =>
          new Response(
            new ReadableStream({
              start(c) {
                init.signal?.addEventListener('abort', () => c.error(init.signal?.reason));
              },
            }),
          ),
        { deadlineMs: 1000 },
      );
      const res = await fetch('/stream');
      const text = res.text().catch((e: unknown) => e);
      await clock.advanceAsync(1000);
      expect(await text).toMatchObject({ scope: 'deadline' });
    });
  });

  it('the deadline covers every attempt and backoff', async () => {
    const { clock, calls, pool, fetch } = setup(() => 'hang', {
      timeoutMs: 100,
      deadlineMs: 250,
      backoffBaseMs: 0,
    });
    const error = (await rejection(drive(clock, fetch('/x')))) as TimeoutError;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error.scope).toBe('deadline');
    expect(error.code).toBe('LB_TIMEOUT');
    expect(clock.now()).toBeLessThanOrEqual(255);
    expect(calls.length).toBe(3);
    expect(error.attempts.map((a) => a.outcome)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(inFlight(pool)).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('the caller signal aborts a running attempt at once and is never retried', async () => {
    const { clock, calls, pool, fetch } = setup(() => 'hang');
    const controller = new AbortController();
    const reason = new Error('user went away');
    const pending = fetch('/x', { signal: controller.signal });
    await clock.advanceAsync(10);
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    await clock.advanceAsync(1000);
    expect(calls.length).toBe(1);
    expect(inFlight(pool)).toBe(0);
    // An abort by the caller is not the backend's failure.
    expect(pool.stats().backends[0]!.failures).toBe(0);
  });

  it('the caller signal aborts the backoff wait', async () => {
    const { clock, calls, fetch } = setup(() => 'refuse', {
      backoffBaseMs: 10_000,
      backoffMaxMs: 10_000,
    });
    const controller = new AbortController();
    const pending = fetch('/x', { signal: controller.signal });
    await clock.advanceAsync(1);
    expect(calls.length).toBe(1);
    controller.abort();
    const error = await rejection(pending);
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe('AbortError');
    expect(calls.length).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('an already aborted signal rejects before anything is acquired', async () => {
    const { calls, pool, fetch } = setup(() => 200);
    const reason = new Error('too late');
    await expect(fetch('/x', { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(calls.length).toBe(0);
    expect(pool.stats().backends.every((b) => b.requests === 0)).toBe(true);
  });

  it('removes its listener from the caller signal when the call ends', async () => {
    const { clock, fetch } = setup(() => 200, { deadlineMs: 1000, timeoutMs: 100 });
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const signal = controller.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++;
      add(...args);
    }) as typeof add;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed++;
      remove(...args);
    }) as typeof remove;
    for (let i = 0; i < 5; i++) {
      const res = await drive(clock, fetch('/x', { signal }));
      await res.text();
    }
    expect(added).toBeGreaterThan(0);
    expect(removed).toBe(added);
    expect(clock.pendingTimers()).toBe(0);
  });
});
