import { Response as UndiciResponse } from 'undici';
import { describe, expect, it } from 'vitest';
import { AllAttemptsFailedError } from '../../src/errors/all-attempts-failed-error.js';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { NoBackendAvailableError } from '../../src/errors/no-backend-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { BalancedFetchOptions, FetchFunction, FetchTarget } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { LeaseOutcome, PickContext } from '../../src/types.js';
import { testPool } from '../support/pools.js';

interface Released {
  backend: string;
  outcome: LeaseOutcome;
  latencyMs: number;
}

function setup(
  respond: (url: string, init: RequestInit) => Response | Promise<Response>,
  options: BalancedFetchOptions = {},
  backends = ['http://b1/api', 'http://b2/api'],
) {
  const { pool, clock } = testPool(backends);
  const released: Released[] = [];
  const contexts: (PickContext | undefined)[] = [];
  pool.on('release', (e) =>
    released.push({ backend: e.backend.id, outcome: e.outcome, latencyMs: e.latencyMs }),
  );
  pool.on('acquire', (e) => contexts.push(e.ctx));
  const urls: string[] = [];
  const fetch: FetchFunction = async (url, init) => {
    urls.push(url);
    return respond(url, init);
  };
  return {
    clock,
    pool,
    released,
    contexts,
    urls,
    fetch: createBalancedFetch(pool, { fetch, retries: 0, ...options }),
  };
}

/** A body whose chunks the test pushes. */
function controlled() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return {
    stream,
    push: (text: string) => controller.enqueue(new TextEncoder().encode(text)),
    close: () => controller.close(),
    fail: (error: unknown) => controller.error(error),
  };
}

/** Resolves after `ms` on the manual clock. */
function respondAfter<T>(clock: ManualClock, ms: number, value: () => T): Promise<T> {
  return new Promise((resolve) => clock.setTimeout(() => resolve(value()), ms));
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('lease outcome per status', () => {
  const date = 'Wed, 21 Oct 2015 07:28:00 GMT';
  it.each([
    [200, {}, { ok: true, status: 200 }],
    [404, {}, { ok: true, status: 404 }],
    [400, {}, { ok: true, status: 400 }],
    [429, { 'retry-after': '2' }, { ok: false, status: 429, failure: 'http', retryAfterMs: 2000 }],
    [500, {}, { ok: false, status: 500, failure: 'http' }],
    [
      503,
      { 'retry-after': 'Wed, 21 Oct 2015 07:30:00 GMT', date },
      { ok: false, status: 503, failure: 'http', retryAfterMs: 120_000 },
    ],
    [503, { 'retry-after': 'soon' }, { ok: false, status: 503, failure: 'http' }],
    // Retry-After only means back-off on 429 and 503.
    [500, { 'retry-after': '5' }, { ok: false, status: 500, failure: 'http' }],
  ] as const)('status %i %j -> %j', async (status, headers, expected) => {
    const { released, pool, fetch } = setup(() => new Response('x', { status, headers }));
    const res = await fetch('/x');
    await res.text();
    expect(released.length).toBe(1);
    const { latencyMs: _latency, ...outcome } = released[0]!.outcome;
    expect(outcome).toEqual(expected);
    expect(pool.stats().inFlight).toBe(0);
  });
});

describe('the lease is held for the body and released exactly once', () => {
  const consumers = [
    ['text()', (r: Response) => r.text()],
    ['json()', (r: Response) => r.json().catch(() => undefined)],
    ['arrayBuffer()', (r: Response) => r.arrayBuffer()],
    ['blob()', (r: Response) => r.blob()],
    ['bytes()', (r: Response) => (r as Response & { bytes(): Promise<Uint8Array> }).bytes()],
    [
      'body reader',
      async (r: Response) => {
        const reader = r.body!.getReader();
        while (!(await reader.read()).done) {
          // drain
        }
      },
    ],
    [
      'for await',
      async (r: Response) => {
        for await (const _chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
          // drain
        }
      },
    ],
    ['new Response(body).text()', (r: Response) => new Response(r.body).text()],
  ] as const;

  it.each(consumers)(
    '%s: in flight until the body ends, latency to the end',
    async (_name, consume) => {
      const body = controlled();
      const { clock, pool, released, fetch } = setup(() =>
        respondAfter(clock, 30, () => new Response(body.stream, { status: 200 })),
      );
      const pending = fetch('/x');
      await clock.advanceAsync(30);
      const res = await pending;
      const done = consume(res);
      expect(pool.stats().inFlight).toBe(1);
      body.push('{"a":');
      await clock.advanceAsync(50);
      body.push('1}');
      body.close();
      await done;
      await flush();
      expect(released.length).toBe(1);
      expect(released[0]!.outcome).toMatchObject({ ok: true, status: 200, latencyMs: 80 });
      expect(pool.stats().inFlight).toBe(0);
      expect(clock.pendingTimers()).toBe(0);
    },
  );

  it('cancel: released at once with the time to headers', async () => {
    const body = controlled();
    const { clock, pool, released, fetch } = setup(() =>
      respondAfter(clock, 20, () => new Response(body.stream)),
    );
    const pending = fetch('/x');
    await clock.advanceAsync(20);
    const res = await pending;
    await clock.advanceAsync(100);
    await res.body!.cancel();
    expect(released.length).toBe(1);
    expect(released[0]!.outcome).toMatchObject({ ok: true, status: 200, latencyMs: 20 });
    expect(pool.stats().inFlight).toBe(0);
  });

  it('a body that errors counts against the backend', async () => {
    const body = controlled();
    const { clock, pool, released, fetch } = setup(() => new Response(body.stream));
    const res = await fetch('/x');
    const text = res.text();
    const reset = Object.assign(new Error('socket closed'), { code: 'ECONNRESET' });
    body.fail(reset);
    await expect(text).rejects.toBe(reset);
    expect(released.length).toBe(1);
    expect(released[0]!.outcome).toMatchObject({ ok: false, failure: 'reset', error: reset });
    expect(pool.stats().backends[0]!.failures).toBe(1);
    expect(pool.stats().inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a body nobody reads is released after unreadBodyTimeoutMs, and stays readable', async () => {
    const { clock, pool, released, fetch } = setup(() => new Response('late read'), {
      unreadBodyTimeoutMs: 500,
    });
    const res = await fetch('/x');
    await clock.advanceAsync(499);
    expect(pool.stats().inFlight).toBe(1);
    await clock.advanceAsync(1);
    expect(pool.stats().inFlight).toBe(0);
    expect(released[0]!.outcome).toMatchObject({ ok: true, status: 200, latencyMs: 0 });
    expect(await res.text()).toBe('late read');
    expect(released.length).toBe(1);
  });

  it('touching response.body is not reading: a rebuilt, dropped response is still released', async () => {
    const { clock, pool, released, fetch } = setup(() => new Response('dropped'), {
      unreadBodyTimeoutMs: 500,
    });
    const res = await fetch('/x');
    const rebuilt = new Response(res.body, res);
    expect(rebuilt.status).toBe(200);
    await clock.advanceAsync(500);
    expect(pool.stats().inFlight).toBe(0);
    expect(released.length).toBe(1);
    expect(clock.pendingTimers()).toBe(0);
    // Still readable after the release, through the rebuilt response.
    expect(await rebuilt.text()).toBe('dropped');
    expect(released.length).toBe(1);
  });

  it('an afterResponse hook that rebuilds the response keeps the unread guarantee', async () => {
    const { clock, pool, released, fetch } = setup(() => new Response('hooked'), {
      unreadBodyTimeoutMs: 200,
      afterResponse: ({ response }) =>
        new Response(response.body, { status: response.status, headers: { 'x-added': '1' } }),
    });
    const res = await fetch('/x');
    expect(res.headers.get('x-added')).toBe('1');
    await clock.advanceAsync(200);
    expect(pool.stats().inFlight).toBe(0);
    expect(released[0]!.outcome).toMatchObject({ ok: true, status: 200 });
  });

  it('a rebuilt response that is read is released at the end of the body, not before', async () => {
    const body = controlled();
    const { clock, pool, released, fetch } = setup(() => new Response(body.stream), {
      unreadBodyTimeoutMs: 100,
    });
    const rebuilt = new Response((await fetch('/x')).body);
    const text = rebuilt.text();
    await clock.advanceAsync(1000);
    expect(pool.stats().inFlight).toBe(1);
    body.push('read');
    body.close();
    expect(await text).toBe('read');
    expect(pool.stats().inFlight).toBe(0);
    expect(released[0]!.outcome).toMatchObject({ ok: true, status: 200 });
  });

  it('a body being read is not cut off by the unread timeout', async () => {
    const body = controlled();
    const { clock, pool, fetch } = setup(() => new Response(body.stream), {
      unreadBodyTimeoutMs: 100,
    });
    const res = await fetch('/x');
    const text = res.text();
    await clock.advanceAsync(1000);
    expect(pool.stats().inFlight).toBe(1);
    body.push('slow');
    body.close();
    expect(await text).toBe('slow');
    expect(pool.stats().inFlight).toBe(0);
  });

  it('a response without a body (HEAD, 204) releases at the headers', async () => {
    const { pool, released, fetch } = setup(() => new Response(null, { status: 204 }));
    const res = await fetch('/x', { method: 'HEAD' });
    expect(res.status).toBe(204);
    expect(released.length).toBe(1);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('the response stays a Response of the class the fetch implementation returned', async () => {
    const { fetch } = setup(() => new UndiciResponse('u', { headers: { 'x-a': '1' } }) as never);
    const res = await fetch('/x');
    expect(res).toBeInstanceOf(UndiciResponse);
    expect(res.headers.get('x-a')).toBe('1');
    expect(res.ok).toBe(true);
    expect(await res.clone().text()).toBe('u');
    expect(await res.text()).toBe('u');
    expect(res.bodyUsed).toBe(true);
    const { fetch: f2 } = setup(() => new Response('g'));
    expect(await f2('/x')).toBeInstanceOf(Response);
  });

  it('1000 calls with every way of ending leave in-flight at 0', async () => {
    const { clock, pool, released, fetch } = setup(() => new Response('body'), {
      unreadBodyTimeoutMs: 10,
    });
    const ends = [
      (r: Response) => r.text(),
      (r: Response) => r.body!.cancel(),
      async () => undefined,
      (r: Response) => r.arrayBuffer(),
    ];
    await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => ends[i % ends.length]!(await fetch('/x'))),
    );
    await clock.advanceAsync(10);
    expect(pool.stats().inFlight).toBe(0);
    expect(released.length).toBe(1000);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('URL resolution per attempt', () => {
  it('keeps each backend base path', async () => {
    const { urls, fetch } = setup(() => new Response('ok'));
    await (await fetch('/users/1?x=y')).text();
    await (await fetch('users/2')).text();
    expect(urls).toEqual(['http://b1/api/users/1?x=y', 'http://b2/api/users/2']);
  });
});

describe('hooks', () => {
  it('key() sets the pick key', async () => {
    const { contexts, fetch } = setup(() => new Response('ok'), {
      key: (request) => request.headers.get('x-user') ?? undefined,
    });
    await (await fetch('/x', { headers: { 'x-user': 'u-42' } })).text();
    await (await fetch('/x')).text();
    expect(contexts).toEqual([{ key: 'u-42' }, {}]);
  });

  it('context() may be async; the fetch merges tried backends into exclude', async () => {
    const seen: { attempt: number; tried: readonly string[]; url: string }[] = [];
    let n = 0;
    const { clock, contexts, fetch } = setup(
      () => (++n === 1 ? new Response('', { status: 503 }) : new Response('ok')),
      {
        retries: 1,
        backoffBaseMs: 0,
        serviceOrigins: ['http://users.internal'],
        context: async (request, info) => {
          seen.push({ attempt: info.attempt, tried: info.tried, url: request.url });
          await Promise.resolve();
          return { key: 'k', exclude: ['other'] };
        },
      },
    );
    const res = await fetch('/users/1');
    await clock.advanceAsync(0);
    await res.text();
    expect(seen).toEqual([
      { attempt: 1, tried: [], url: 'http://users.internal/users/1' },
      { attempt: 2, tried: ['b1:80/api'], url: 'http://users.internal/users/1' },
    ]);
    expect(contexts).toEqual([
      { key: 'k', exclude: ['other'] },
      { key: 'k', exclude: ['other', 'b1:80/api'] },
    ]);
  });

  it('a hook that throws rejects the call with its error, holding nothing', async () => {
    const boom = new Error('hook failed');
    const { pool, fetch } = setup(() => new Response('ok'), {
      context: () => {
        throw boom;
      },
    });
    await expect(fetch('/x')).rejects.toBe(boom);
    expect(pool.stats().backends.every((b) => b.requests === 0)).toBe(true);
  });

  it('afterResponse may replace the response; the body stays tracked', async () => {
    const body = controlled();
    const { pool, released, fetch } = setup(() => new Response(body.stream), {
      afterResponse: ({ response, backend, attempt }) => {
        const headers = new Headers(response.headers);
        headers.set('set-cookie', `lb=${backend.id}; attempt=${attempt}`);
        return new Response(response.body, { status: response.status, headers });
      },
    });
    const res = await fetch('/x');
    expect(res.headers.get('set-cookie')).toBe('lb=b1:80/api; attempt=1');
    const text = res.text();
    expect(pool.stats().inFlight).toBe(1);
    body.push('hi');
    body.close();
    expect(await text).toBe('hi');
    expect(released.length).toBe(1);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('afterResponse throwing rejects the call and still releases the lease', async () => {
    const boom = new Error('cookie signer down');
    const { pool, released, fetch } = setup(() => new Response('x'), {
      afterResponse: async () => {
        throw boom;
      },
    });
    await expect(fetch('/x')).rejects.toBe(boom);
    expect(released.length).toBe(1);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('afterResponse returning something else than a Response is a config error', async () => {
    const { pool, fetch } = setup(() => new Response('x'), {
      afterResponse: () => 'nope' as never,
    });
    await expect(fetch('/x')).rejects.toBeInstanceOf(LoadBalancerConfigError);
    expect(pool.stats().inFlight).toBe(0);
  });
});

describe('events', () => {
  it('reports attempt, response, failure and retry', async () => {
    let n = 0;
    const { clock, fetch } = setup(
      () => {
        n++;
        if (n === 1) {
          return Promise.reject(
            new TypeError('fetch failed', {
              cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
            }),
          );
        }
        return respondAfter(clock, 7, () => new Response('ok', { status: 201 }));
      },
      { retries: 1, backoffBaseMs: 0 },
    );
    const log: string[] = [];
    fetch.events.on('attempt', (e) => log.push(`attempt ${e.attempt} ${e.backend.id}`));
    fetch.events.on('failure', (e) => log.push(`failure ${e.attempt} ${e.backend?.id}`));
    fetch.events.on('retry', (e) =>
      log.push(`retry ${e.attempt} ${e.backend.id} ${e.reason} ${e.delayMs}`),
    );
    fetch.events.on('response', (e) =>
      log.push(`response ${e.attempt} ${e.backend.id} ${e.status} ${e.latencyMs} ${e.request.url}`),
    );
    const pending = fetch('/x');
    await clock.advanceAsync(7);
    await (await pending).text();
    expect(log).toEqual([
      'attempt 1 b1:80/api',
      'failure 1 b1:80/api',
      'retry 1 b1:80/api connect 0',
      'attempt 2 b2:80/api',
      'response 2 b2:80/api 201 7 http://loadwise.invalid/x',
    ]);
  });

  it('builds no Request when nobody listens and no hook needs one', async () => {
    const Original = globalThis.Request;
    let constructed = 0;
    globalThis.Request = new Proxy(Original, {
      construct(target, args, newTarget) {
        constructed++;
        return Reflect.construct(target, args, newTarget);
      },
    });
    try {
      const { fetch } = setup(() => new Response('ok'));
      await (await fetch('/x')).text();
      expect(constructed).toBe(0);
      const listener = () => undefined;
      fetch.events.on('response', listener);
      await (await fetch('/x')).text();
      expect(constructed).toBe(1);
    } finally {
      globalThis.Request = Original;
    }
  });

  it('a listener that throws fails the call without leaking the lease', async () => {
    const boom = new Error('listener');
    const { pool, fetch } = setup(() => new Response('ok'));
    fetch.events.on('attempt', () => {
      throw boom;
    });
    await expect(fetch('/x')).rejects.toBe(boom);
    expect(pool.stats().inFlight).toBe(0);
    expect(pool.stats().backends[0]!.failures).toBe(0);
  });
});

describe('targets', () => {
  it('NoBackendAvailableError on the first attempt reaches the caller as is', async () => {
    const { pool, urls, fetch } = setup(() => new Response('ok'));
    void pool.drain('b1:80/api');
    void pool.drain('b2:80/api');
    const error = await fetch('/x').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NoBackendAvailableError);
    expect((error as NoBackendAvailableError).reason).toBe('all-draining');
    expect(urls).toEqual([]);
  });

  it('a retry that finds no backend ends with AllAttemptsFailedError', async () => {
    const { pool, fetch } = setup(
      () => {
        void pool.drain('b1:80/api');
        void pool.drain('b2:80/api');
        return new Response('', { status: 503 });
      },
      { retries: 2, backoffBaseMs: 0 },
    );
    const error = await fetch('/x').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect((error as AllAttemptsFailedError).attempts.map((a) => a.outcome)).toEqual([
      'http',
      'no-backend',
    ]);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('accepts a resolve() request rewritten on the logical origin', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({ backends: ['http://b1/base'], clock, random: seededRandom(2) });
    const seen: string[] = [];
    const target: FetchTarget = {
      clock,
      random: seededRandom(4),
      acquire: (ctx) => pool.acquire(ctx),
      get: (id) => pool.get(id),
      backends: () => pool.backends(),
      resolve: (request) => ({
        target: pool,
        request: new Request(request.url.replace('/old/', '/new/'), request),
      }),
    };
    const fetch = createBalancedFetch(target, {
      fetch: async (url) => {
        seen.push(url);
        return new Response('ok');
      },
    });
    await (await fetch('/old/1?q=2')).text();
    expect(seen).toEqual(['http://b1/base/new/1?q=2']);
  });

  it('works over any FetchTarget, and resolve() can re-route a request', async () => {
    const clock = new ManualClock();
    const users = new BackendPool({ backends: ['http://u1/v2'], clock, random: seededRandom(2) });
    const orders = new BackendPool({ backends: ['http://o1'], clock, random: seededRandom(3) });
    const router: FetchTarget = {
      clock,
      random: seededRandom(4),
      acquire: (ctx) => users.acquire(ctx),
      get: (id) => users.get(id) ?? orders.get(id),
      backends: () => [...users.backends(), ...orders.backends()],
      resolve(request) {
        const url = new URL(request.url);
        if (!url.pathname.startsWith('/orders/')) return undefined;
        const rewritten = new Request(`http://o1${url.pathname.slice(7)}${url.search}`, request);
        rewritten.headers.set('x-routed', 'orders');
        return { target: orders, request: rewritten, retries: 0, timeoutMs: 50 };
      },
    };
    const seen: { url: string; routed: string | null }[] = [];
    const fetch = createBalancedFetch(router, {
      fetch: async (url, init) => {
        seen.push({ url, routed: new Headers(init.headers).get('x-routed') });
        return new Response('ok');
      },
    });
    await (await fetch('/users/1')).text();
    await (await fetch('/orders/9?full=1', { headers: { accept: 'json' } })).text();
    expect(seen).toEqual([
      { url: 'http://u1/v2/users/1', routed: null },
      { url: 'http://o1/9?full=1', routed: 'orders' },
    ]);
    expect(users.stats().backends[0]!.requests).toBe(1);
    expect(orders.stats().backends[0]!.requests).toBe(1);
    expect(users.stats().inFlight + orders.stats().inFlight).toBe(0);
  });
});

describe('validation', () => {
  const pool = new BackendPool({ backends: ['http://b1'], clock: new ManualClock() });
  it.each([
    [{ retries: -1 }, 'retries'],
    [{ retries: 1.5 }, 'retries'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ deadlineMs: -5 }, 'deadlineMs'],
    [{ retryOn: [700] }, 'retryOn[0]'],
    [{ retryOn: 503 }, 'retryOn'],
    [{ retryMethods: [''] }, 'retryMethods[0]'],
    [{ bufferBody: 'yes' }, 'bufferBody'],
    [{ fetch: 'fetch' }, 'fetch'],
    [{ key: 1 }, 'key'],
    [{ serviceOrigins: ['http://a/b'] }, 'serviceOrigins[0]'],
    [{ retryBudget: { nope: 1 } }, 'retryBudget.nope'],
    [{ unknown: true }, 'BalancedFetchOptions.unknown'],
    [{ clock: {} }, 'clock'],
  ])('rejects option %j', (options, field) => {
    let caught: unknown;
    try {
      createBalancedFetch(pool, options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(LoadBalancerConfigError);
    expect((caught as LoadBalancerConfigError).field).toBe(field);
  });

  it('rejects a target that is not a pool', () => {
    expect(() => createBalancedFetch({} as never)).toThrow(LoadBalancerConfigError);
    expect(() => createBalancedFetch(undefined as never)).toThrow(/BackendPool or a FetchTarget/);
  });

  it('rejects bad call arguments', async () => {
    const fetch = createBalancedFetch(pool, { fetch: async () => new Response('') });
    await expect(fetch(42 as never)).rejects.toBeInstanceOf(LoadBalancerConfigError);
    await expect(fetch('/x', 'init' as never)).rejects.toBeInstanceOf(LoadBalancerConfigError);
  });
});
