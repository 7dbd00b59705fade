import { afterEach, describe, expect, it } from 'vitest';
import {
  AllAttemptsFailedError,
  BackendPool,
  createBalancedFetch,
  NoRouteError,
  RoundRobin,
  Router,
} from '../../src/index.js';
import { closeAll, startServer, type TestServer } from '../support/servers.js';

interface Seen {
  server: string;
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

const servers: TestServer[] = [];
const pools: BackendPool[] = [];
const seen: Seen[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await closeAll(servers.splice(0));
  seen.length = 0;
});

async function recording(name: string, status = 200): Promise<TestServer> {
  const s = await startServer((req, res) => {
    seen.push({
      server: name,
      method: req.method ?? '',
      path: req.url ?? '',
      headers: req.headers,
    });
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(name);
  });
  servers.push(s);
  return s;
}

function poolOf(...s: TestServer[]): BackendPool {
  const p = new BackendPool({
    backends: s.map((x) => x.url),
    algorithm: new RoundRobin({ startIndex: 0 }),
    skew: false,
  });
  pools.push(p);
  return p;
}

describe('Router through the balanced fetch, against real servers', () => {
  it('sends each call to its route’s pool with rewritten path and headers', async () => {
    const api1 = await recording('api1');
    const api2 = await recording('api2');
    const asset = await recording('asset');
    const web = await recording('web');
    const router = new Router({
      routes: [
        {
          name: 'api',
          match: { pathPrefix: '/api' },
          pool: poolOf(api1, api2),
          rewrite: { stripPrefix: '/api', addPrefix: '/v2' },
          headers: { set: { 'x-route': 'api' }, remove: ['x-internal'] },
        },
        { name: 'static', match: { pathPrefix: '/static', methods: ['GET'] }, pool: poolOf(asset) },
      ],
      default: { pool: poolOf(web) },
    });
    const fetch = createBalancedFetch(router);
    const bodies: string[] = [];
    for (const path of ['/api/users/1?x=1', '/api/users/2', '/static/app.js', '/about']) {
      const res = await fetch(path, { headers: { 'x-internal': 'secret' } });
      bodies.push(await res.text());
    }
    expect(bodies).toEqual(['api1', 'api2', 'asset', 'web']);
    expect(seen.map((s) => s.path)).toEqual([
      '/v2/users/1?x=1',
      '/v2/users/2',
      '/static/app.js',
      '/about',
    ]);
    expect(seen[0]!.headers['x-route']).toBe('api');
    expect(seen[0]!.headers['x-internal']).toBeUndefined();
    expect(seen[2]!.headers['x-internal']).toBe('secret');
    expect(router.backends().every((b) => b.inFlight === 0)).toBe(true);
  });

  it('applies a route’s retry policy: retries 0 means one attempt', async () => {
    const bad1 = await recording('bad1', 503);
    const bad2 = await recording('bad2', 503);
    const router = new Router({
      routes: [
        { name: 'once', match: { pathPrefix: '/once' }, pool: poolOf(bad1, bad2), retries: 0 },
      ],
      default: { pool: poolOf(bad1, bad2) },
    });
    const fetch = createBalancedFetch(router, { retries: 3, backoffBaseMs: 1, backoffMaxMs: 2 });
    const once = await fetch('/once');
    expect(once.status).toBe(503);
    await once.text();
    expect(seen).toHaveLength(1);
    seen.length = 0;
    const retried = await fetch('/other');
    await retried.text();
    expect(seen.length).toBeGreaterThan(1);
  });

  it('applies a route’s timeout', async () => {
    const hang = await startServer(() => {});
    servers.push(hang);
    const router = new Router({
      routes: [
        {
          name: 'slow',
          match: { pathPrefix: '/slow' },
          pool: poolOf(hang),
          timeoutMs: 100,
          retries: 0,
        },
      ],
    });
    const fetch = createBalancedFetch(router, { timeoutMs: 10_000 });
    const started = performance.now();
    const error = await fetch('/slow').catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect((error as AllAttemptsFailedError).attempts[0]!.outcome).toBe('timeout');
  });

  it('rejects a call that matches no route with NoRouteError, sending nothing', async () => {
    const api = await recording('api');
    const router = new Router({
      routes: [{ name: 'api', match: { pathPrefix: '/api' }, pool: poolOf(api) }],
    });
    const fetch = createBalancedFetch(router);
    await expect(fetch('/nowhere')).rejects.toBeInstanceOf(NoRouteError);
    expect(seen).toHaveLength(0);
  });
});

describe('Router with request bodies', () => {
  it('keeps a streaming body when a route rewrites the request', async () => {
    const bodies: string[] = [];
    const echo = await startServer(async (req, res) => {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      bodies.push(`${req.method} ${req.url} ${body}`);
      res.end('ok');
    });
    servers.push(echo);
    const router = new Router({
      routes: [
        {
          name: 'up',
          match: { pathPrefix: '/upload' },
          pool: poolOf(echo),
          rewrite: { stripPrefix: '/upload' },
        },
      ],
    });
    const fetch = createBalancedFetch(router);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('part1,'));
        controller.enqueue(new TextEncoder().encode('part2'));
        controller.close();
      },
    });
    const res = await fetch('/upload/file', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await res.text()).toBe('ok');
    const buffered = await fetch('/upload/small', { method: 'PUT', body: 'hello' });
    await buffered.text();
    expect(bodies).toEqual(['POST /file part1,part2', 'PUT /small hello']);
  });
});
