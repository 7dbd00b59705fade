/**
 * The balanced undici dispatcher against real HTTP servers on 127.0.0.1: every entry point
 * (request, stream, fetch, the platform fetch through the global dispatcher, compose()
 * interceptors), faults (refused, reset, hang), and in-flight counts back to 0.
 */
import { Writable } from 'node:stream';
import {
  Agent,
  BalancedPool,
  type Dispatcher,
  getGlobalDispatcher,
  interceptors,
  request,
  setGlobalDispatcher,
  stream,
  fetch as undiciFetch,
} from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AllAttemptsFailedError,
  BackendPool,
  OutlierDetector,
  RequestRefusedError,
  RoundRobin,
} from '../../src/index.js';
import { BalancedDispatcher, type BalancedDispatcherOptions } from '../../src/undici/index.js';
import { type FaultServer, refusedUrl, startFaultServers } from '../support/fault-servers.js';
import { closeAll, respond, startServers, type TestServer } from '../support/servers.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  n = 3,
  options: BalancedDispatcherOptions = {},
): Promise<{ servers: TestServer[]; pool: BackendPool; dispatcher: BalancedDispatcher }> {
  const servers = await startServers(n);
  cleanups.push(() => closeAll(servers));
  const pool = new BackendPool({
    backends: servers.map((s) => s.url),
    algorithm: new RoundRobin({ startIndex: 0 }),
    skew: false,
  });
  const dispatcher = new BalancedDispatcher(pool, { backoffBaseMs: 1, ...options });
  cleanups.push(() => pool.close());
  cleanups.push(() => dispatcher.close());
  return { servers, pool, dispatcher };
}

async function faultSetup(
  n: number,
  options: BalancedDispatcherOptions = {},
): Promise<{ servers: FaultServer[]; pool: BackendPool; dispatcher: BalancedDispatcher }> {
  const servers = await startFaultServers(n);
  cleanups.push(() => Promise.all(servers.map((s) => s.close())));
  const pool = new BackendPool({
    backends: servers.map((s) => s.url),
    algorithm: new RoundRobin({ startIndex: 0 }),
    skew: false,
  });
  const dispatcher = new BalancedDispatcher(pool, {
    backoffBaseMs: 1,
    retryBudget: false,
    ...options,
  });
  cleanups.push(() => pool.close());
  cleanups.push(() => dispatcher.close());
  return { servers, pool, dispatcher };
}

const inFlight = (pool: BackendPool): number => pool.stats().inFlight;

describe('BalancedDispatcher entry points', () => {
  it('undici.request(url, { dispatcher }) with a backend origin spreads over the backends', async () => {
    const { servers, pool, dispatcher } = await setup(3);
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { statusCode, body } = await request(`${servers[0]!.url}/hello`, { dispatcher });
      expect(statusCode).toBe(200);
      bodies.push(await body.text());
    }
    expect(bodies).toEqual(['0', '1', '2', '0', '1', '2']);
    expect(inFlight(pool)).toBe(0);
    expect(pool.stats().backends.map((b) => b.requests)).toEqual([2, 2, 2]);
  });

  it('dispatcher.request({ path }) without an origin, and a service origin', async () => {
    const { pool, dispatcher } = await setup(2, { serviceOrigins: ['http://users.internal'] });
    const a = await dispatcher.request({ path: '/a', method: 'GET' });
    expect(await a.body.text()).toBe('0');
    const b = await request('http://users.internal/b', { dispatcher });
    expect(await b.body.text()).toBe('1');
    const refused = await request('http://evil.example/x', { dispatcher }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RequestRefusedError);
    expect(inFlight(pool)).toBe(0);
  });

  it('undici.stream() and undici.fetch() with the dispatcher', async () => {
    const { servers, pool, dispatcher } = await setup(2);
    const chunks: Buffer[] = [];
    await stream(`${servers[0]!.url}/s`, { dispatcher, method: 'GET' }, () => {
      return new Writable({
        write(chunk: Buffer, _enc, cb) {
          chunks.push(chunk);
          cb();
        },
      });
    });
    expect(Buffer.concat(chunks).toString()).toBe('0');
    const res = await undiciFetch(`${servers[0]!.url}/f`, { dispatcher });
    expect(await res.text()).toBe('1');
    expect(inFlight(pool)).toBe(0);
  });

  it('the platform fetch through setGlobalDispatcher', async () => {
    const { servers, pool, dispatcher } = await setup(2);
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(dispatcher);
    try {
      const texts: string[] = [];
      for (let i = 0; i < 4; i++) texts.push(await (await fetch(`${servers[0]!.url}/g`)).text());
      expect(texts).toEqual(['0', '1', '0', '1']);
    } finally {
      setGlobalDispatcher(previous);
    }
    expect(inFlight(pool)).toBe(0);
  });

  it('compose(): the retry interceptor retries a 503 across backends', async () => {
    const { servers, pool, dispatcher } = await setup(2, { retries: 0 });
    servers[0]!.setHandler(respond(503, 'busy'));
    const composed = dispatcher.compose(
      interceptors.retry({ maxRetries: 2, minTimeout: 1, statusCodes: [503] }),
    );
    const { statusCode, body } = await request(`${servers[1]!.url}/r`, { dispatcher: composed });
    expect(statusCode).toBe(200);
    expect(await body.text()).toBe('1');
    expect(inFlight(pool)).toBe(0);
  });

  it('compose(): the redirect interceptor follows a redirect on the service', async () => {
    const { servers, pool, dispatcher } = await setup(2);
    servers[0]!.setHandler(respond(302, '', { location: `${servers[1]!.url}/there` }));
    servers[1]!.setHandler((req, res) => {
      res.end(`there:${req.url}`);
    });
    const composed = dispatcher.compose(interceptors.redirect({ maxRedirections: 2 }));
    const { statusCode, body } = await request(`${servers[0]!.url}/here`, {
      dispatcher: composed,
    });
    expect(statusCode).toBe(200);
    expect(await body.text()).toBe('there:/there');
    expect(inFlight(pool)).toBe(0);
  });

  it('compose(): the dns interceptor resolves the host to a backend origin', async () => {
    const { servers, pool, dispatcher } = await setup(1);
    const composed = dispatcher.compose(interceptors.dns({ affinity: 4 }));
    const { statusCode, body } = await request(`http://localhost:${servers[0]!.port}/d`, {
      dispatcher: composed,
    });
    expect(statusCode).toBe(200);
    expect(await body.text()).toBe('0');
    expect(inFlight(pool)).toBe(0);
  });

  it('compose(): the cache interceptor answers a repeat from its cache', async () => {
    const { servers, pool, dispatcher } = await setup(1);
    servers[0]!.setHandler(respond(200, 'cached', { 'cache-control': 'public, max-age=60' }));
    const composed = dispatcher.compose(interceptors.cache());
    for (let i = 0; i < 3; i++) {
      const { body } = await request(`${servers[0]!.url}/c`, { dispatcher: composed });
      expect(await body.text()).toBe('cached');
    }
    expect(servers[0]!.hits).toBe(1);
    expect(inFlight(pool)).toBe(0);
  });
});

describe('BalancedDispatcher under faults', () => {
  it('a refused backend: every call is retried onto a live one', async () => {
    const servers = await startServers(2);
    cleanups.push(() => closeAll(servers));
    const dead = await refusedUrl();
    const pool = new BackendPool({
      backends: [dead, ...servers.map((s) => s.url)],
      algorithm: new RoundRobin({ startIndex: 0 }),
      skew: false,
    });
    const dispatcher = new BalancedDispatcher(pool, { backoffBaseMs: 1, retryBudget: false });
    cleanups.push(() => pool.close());
    cleanups.push(() => dispatcher.close());
    for (let i = 0; i < 9; i++) {
      const { statusCode, body } = await dispatcher.request({ path: '/x', method: 'GET' });
      expect(statusCode).toBe(200);
      await body.text();
    }
    expect(pool.stats().backends[0]!.failures).toBeGreaterThan(0);
    expect(inFlight(pool)).toBe(0);
  });

  it('reset before headers: a GET is retried, a POST fails naming the backend', async () => {
    const { servers, pool, dispatcher } = await faultSetup(2);
    servers[0]!.setMode('reset-before-headers');
    const ok = await dispatcher.request({ path: '/x', method: 'GET' });
    expect(await ok.body.text()).toBe(servers[1]!.name);
    servers[1]!.setMode('reset-before-headers');
    const post = await dispatcher
      .request({ path: '/x', method: 'POST', body: 'order' })
      .catch((e: unknown) => e);
    // The POST may have reached the server: it is not retried, and the error names where it went.
    expect(post).toBeInstanceOf(AllAttemptsFailedError);
    expect((post as AllAttemptsFailedError).attempts).toHaveLength(1);
    expect((post as AllAttemptsFailedError).attempts[0]!.outcome).toBe('reset');
    expect(inFlight(pool)).toBe(0);
  });

  it('a hanging backend: the attempt times out and the call goes elsewhere', async () => {
    const { servers, pool, dispatcher } = await faultSetup(2, { timeoutMs: 200 });
    servers[0]!.setMode('hang');
    const { statusCode, body } = await dispatcher.request({ path: '/x', method: 'GET' });
    expect(statusCode).toBe(200);
    expect(await body.text()).toBe(servers[1]!.name);
    expect(pool.stats().backends[0]!.failures).toBe(1);
    expect(inFlight(pool)).toBe(0);
  });

  it('a 503 is retried on another backend; the last one is returned when retries run out', async () => {
    const { servers, pool, dispatcher } = await faultSetup(2, { retries: 1 });
    servers[0]!.setMode('status', { status: 503 });
    const seen: string[] = [];
    const onAttempt = (e: { attempt: number }): void => {
      seen.push(`attempt ${e.attempt}`);
    };
    dispatcher.events.on('attempt', onAttempt);
    dispatcher.events.on('response', (e) => seen.push(`response ${e.status}`));
    dispatcher.events.once('retry', (e) => seen.push(`retry ${e.reason}`));
    const ok = await dispatcher.request({ path: '/x', method: 'GET' });
    expect(ok.statusCode).toBe(200);
    await ok.body.text();
    expect(seen).toEqual([
      'attempt 1',
      'response 503',
      'retry status 503',
      'attempt 2',
      'response 200',
    ]);
    // Listeners removed or spent hear nothing more.
    dispatcher.events.off('attempt', onAttempt);
    dispatcher.events.removeAllListeners('response');
    seen.length = 0;
    servers[1]!.setMode('status', { status: 503 });
    const last = await dispatcher.request({ path: '/x', method: 'GET' });
    expect(last.statusCode).toBe(503);
    await last.body.text();
    expect(seen).toEqual([]);
    expect(inFlight(pool)).toBe(0);
  });

  it('a large body delivered after a retry arrives whole, with back-pressure', async () => {
    // The retried response is delivered after its headers were reported (the retry loop runs on
    // promises), so what arrives meanwhile is held back and replayed, and a slow reader pauses
    // undici: every byte must come through, in order.
    const { servers, pool, dispatcher } = await setup(2, { retries: 1 });
    servers[0]!.setHandler((_req, res) => {
      res.writeHead(503);
      res.end('busy');
    });
    const chunk = Buffer.alloc(64 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = i % 251;
    const chunks = 32; // 2 MiB
    servers[1]!.setHandler((_req, res) => {
      res.writeHead(200, { 'content-length': String(chunk.length * chunks) });
      for (let i = 0; i < chunks; i++) res.write(chunk);
      res.end();
    });
    const { statusCode, body } = await dispatcher.request({ path: '/big', method: 'GET' });
    expect(statusCode).toBe(200);
    let received = 0;
    let intact = true;
    for await (const part of body as AsyncIterable<Buffer>) {
      for (let i = 0; i < part.length; i++) {
        if (part[i] !== ((received + i) % (64 * 1024)) % 251) intact = false;
      }
      received += part.length;
      // A slow reader: the body's buffer fills and undici is paused meanwhile.
      if (received % (512 * 1024) < part.length) await new Promise((r) => setTimeout(r, 5));
    }
    expect(received).toBe(chunk.length * chunks);
    expect(intact).toBe(true);
    expect(servers[0]!.hits).toBe(1);
    expect(inFlight(pool)).toBe(0);
  });

  it('a hedge rescues a slow backend', async () => {
    const { servers, pool, dispatcher } = await faultSetup(2, {
      hedge: { afterMs: 50, maxExtraLoad: 0.5 },
    });
    servers[0]!.setMode('slow-headers', { delayMs: 2000 });
    const started = performance.now();
    const { body } = await dispatcher.request({ path: '/x', method: 'GET' });
    expect(await body.text()).toBe(servers[1]!.name);
    expect(performance.now() - started).toBeLessThan(1500);
    // The slow attempt was cancelled: not the backend's failure.
    expect(pool.stats().backends[0]!.failures).toBe(0);
    expect(inFlight(pool)).toBe(0);
  });

  it('a caller abort during the body releases the lease without blaming the backend', async () => {
    const { servers, pool, dispatcher } = await setup(1);
    servers[0]!.setHandler((_req, res) => {
      res.writeHead(200);
      res.write('partial');
    });
    const controller = new AbortController();
    const { body } = await dispatcher.request({
      path: '/x',
      method: 'GET',
      signal: controller.signal,
    });
    const closed = new Promise((resolve) => body.on('close', resolve));
    body.on('error', () => undefined);
    controller.abort();
    await closed;
    expect(inFlight(pool)).toBe(0);
    expect(pool.stats().backends[0]!.failures).toBe(0);
  });
});

describe('BalancedDispatcher with the pool’s other parts', () => {
  it('the outlier detector ejects a backend that answers 5xx through the dispatcher', async () => {
    const { servers, pool, dispatcher } = await faultSetup(3, { retries: 0 });
    const detector = new OutlierDetector(pool, { consecutiveFailures: 3 });
    cleanups.push(async () => detector.close());
    servers[0]!.setMode('status', { status: 503 });
    for (let i = 0; i < 12; i++) {
      const { body } = await dispatcher.request({ path: '/x', method: 'GET' });
      await body.text();
    }
    expect(pool.get(pool.backends()[0]!.id)!.state).toBe('ejected');
    // Once ejected, no new request reaches it.
    const before = servers[0]!.hits;
    for (let i = 0; i < 6; i++) {
      await (await dispatcher.request({ path: '/x', method: 'GET' })).body.text();
    }
    expect(servers[0]!.hits).toBe(before);
    expect(inFlight(pool)).toBe(0);
  });

  it('draining a backend lets its requests finish, then closes its undici pool', async () => {
    const { servers, pool, dispatcher } = await setup(2);
    servers[0]!.setHandler((_req, res) => {
      setTimeout(() => res.end('slow-0'), 80);
    });
    const slow = dispatcher.request({ path: '/x', method: 'GET' });
    await new Promise((r) => setTimeout(r, 20));
    const upstream = dispatcher.getUpstream(servers[0]!.url)!;
    const drained = pool.drain(pool.backends()[0]!.id, { graceMs: 5000 });
    expect(upstream.closed).toBe(false);
    expect(await (await slow).body.text()).toBe('slow-0');
    expect(await drained).toMatchObject({ completed: true });
    await new Promise((r) => setTimeout(r, 10));
    expect(upstream.closed).toBe(true);
    // New requests go to the other backend.
    expect(await (await dispatcher.request({ path: '/y', method: 'GET' })).body.text()).toBe('1');
    expect(inFlight(pool)).toBe(0);
  });
});

describe('BalancedDispatcher lifecycle', () => {
  it('removeUpstream closes that backend’s undici pool once its calls finished', async () => {
    const { servers, pool, dispatcher } = await setup(2);
    await (await dispatcher.request({ path: '/x', method: 'GET' })).body.text();
    const upstream = dispatcher.getUpstream(servers[0]!.url)!;
    expect(upstream).toBeDefined();
    dispatcher.removeUpstream(servers[0]!.url);
    await new Promise((r) => setTimeout(r, 20));
    expect(upstream.closed).toBe(true);
    expect(dispatcher.upstreams).toEqual([servers[1]!.url]);
    dispatcher.addUpstream(servers[0]!.url);
    expect(dispatcher.upstreams).toHaveLength(2);
    expect(inFlight(pool)).toBe(0);
  });

  it('close() waits for calls in flight, then refuses new ones', async () => {
    const { servers, dispatcher } = await setup(1);
    servers[0]!.setHandler((_req, res) => {
      setTimeout(() => res.end('late'), 50);
    });
    const pending = dispatcher.request({ path: '/x', method: 'GET' });
    const closed = dispatcher.close();
    expect(dispatcher.closed).toBe(true);
    // As undici's own dispatchers: refused as closed while closing, as destroyed once closed.
    await expect(dispatcher.request({ path: '/y', method: 'GET' })).rejects.toMatchObject({
      code: 'UND_ERR_CLOSED',
    });
    expect(await (await pending).body.text()).toBe('late');
    await closed;
    expect(dispatcher.destroyed).toBe(true);
    await expect(dispatcher.request({ path: '/y', method: 'GET' })).rejects.toMatchObject({
      code: 'UND_ERR_DESTROYED',
    });
  });

  it('destroy() aborts calls in flight', async () => {
    const { servers, pool, dispatcher } = await setup(1);
    servers[0]!.setHandler(() => undefined);
    const pending = dispatcher.request({ path: '/x', method: 'GET' }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await dispatcher.destroy();
    expect(await pending).toMatchObject({ code: 'UND_ERR_DESTROYED' });
    expect(dispatcher.destroyed).toBe(true);
    expect(inFlight(pool)).toBe(0);
  });

  it('back-pressure as BalancedPool: dispatch() answers false once every backend queues, then drain', async () => {
    const servers = await startServers(2);
    cleanups.push(() => closeAll(servers));
    const held: Array<() => void> = [];
    for (const [i, s] of servers.entries()) {
      s.setHandler((_req, res) => {
        held.push(() => res.end(String(i)));
      });
    }
    const urls = servers.map((s) => s.url);
    const poolOptions = { connections: 1, pipelining: 1 };
    const pool = new BackendPool({ backends: urls, algorithm: new RoundRobin(), skew: false });
    cleanups.push(() => pool.close());

    /** Six raw dispatches, 20 ms apart; then the held responses are let go one at a time. */
    const run = async (d: Dispatcher): Promise<{ accepted: boolean[]; drains: number[] }> => {
      const drains: number[] = [];
      d.on('drain', (_origin: URL, ...rest: unknown[]) => {
        drains.push((rest[0] as Dispatcher[]).indexOf(d));
      });
      const accepted: boolean[] = [];
      const done: Promise<unknown>[] = [];
      for (let i = 0; i < 6; i++) {
        done.push(
          new Promise((resolve, reject) => {
            accepted.push(
              d.dispatch(
                { path: '/', method: 'GET', origin: urls[0]! },
                {
                  onConnect() {},
                  onHeaders: () => true,
                  onData: () => true,
                  onComplete: resolve,
                  onError: reject,
                },
              ),
            );
          }),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      let finished = false;
      const all = Promise.all(done).then(() => {
        finished = true;
      });
      while (!finished) {
        held.shift()?.();
        await new Promise((r) => setTimeout(r, 10));
      }
      await all;
      await d.close();
      return { accepted, drains };
    };

    const theirs = await run(new BalancedPool(urls, poolOptions));
    const ours = await run(new BalancedDispatcher(pool, { poolOptions }));
    // undici's own answer first, so the comparison cannot pass by both being always true.
    expect(theirs.accepted).toContain(false);
    expect(ours.accepted).toEqual(theirs.accepted);
    // One 'drain' once room came back, naming the dispatcher first among its targets.
    expect(theirs.drains).toEqual([0]);
    expect(ours.drains).toEqual([0]);
    expect(inFlight(pool)).toBe(0);
  });

  it('back-pressure counts the backends the pool routes to: in panic, the unhealthy ones too', async () => {
    const servers = await startServers(3);
    cleanups.push(() => closeAll(servers));
    const held: Array<() => void> = [];
    for (const s of servers) {
      s.setHandler((_req, res) => {
        held.push(() => res.end('ok'));
      });
    }
    const pool = new BackendPool({
      backends: servers.map((s) => s.url),
      algorithm: new RoundRobin({ startIndex: 0 }),
      skew: false,
    });
    cleanups.push(() => pool.close());
    // Two of three unhealthy: below the panic threshold, the pool routes to all three.
    for (const b of pool.backends().slice(1)) pool.reportProbe(b.id, { ok: false });
    expect(pool.panic).toBe(true);
    const dispatcher = new BalancedDispatcher(pool, {
      poolOptions: { connections: 1, pipelining: 1 },
    });
    const accepted: boolean[] = [];
    const done: Promise<unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      done.push(
        new Promise((resolve, reject) => {
          accepted.push(
            dispatcher.dispatch(
              { path: '/', method: 'GET' },
              {
                onConnect() {},
                onHeaders: () => true,
                onData: () => true,
                onComplete: resolve,
                onError: reject,
              },
            ),
          );
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    // Only once the third backend queues too is every routable backend busy.
    expect(accepted).toEqual([true, true, false]);
    let finished = false;
    const all = Promise.all(done).then(() => {
      finished = true;
    });
    while (!finished) {
      held.shift()?.();
      await new Promise((r) => setTimeout(r, 10));
    }
    await all;
    await dispatcher.close();
    expect(inFlight(pool)).toBe(0);
  });

  it('an Agent is not needed: upstream URLs make a pool of their own', async () => {
    const servers = await startServers(2);
    cleanups.push(() => closeAll(servers));
    const dispatcher = new BalancedDispatcher(servers.map((s) => s.url));
    cleanups.push(() => dispatcher.close());
    // Ten calls at once: the pool it made (power of two choices, unseeded) sends each to the
    // backend with fewer in flight, so both serve whatever the random draws. One at a time,
    // every pick would be a tie, and all ten would land on one backend once in 512 runs.
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => dispatcher.request({ path: '/', method: 'GET' })),
    );
    const texts = new Set(await Promise.all(responses.map((r) => r.body.text())));
    expect([...texts].sort()).toEqual(['0', '1']);
    expect(Agent).toBeDefined();
  });
});
