import { describe, expect, it } from 'vitest';
import { BackendPool, LoadBalancerConfigError, NoRouteError, RoundRobin } from '../../src/index.js';
import { type Route, Router } from '../../src/routing/router.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

const clock = new ManualClock();
const mk = (url: string) =>
  new BackendPool({
    backends: [url],
    algorithm: new RoundRobin(),
    clock,
    random: seededRandom(1),
    skew: false,
  });
const api = mk('http://10.0.0.1:80');
const assets = mk('http://10.0.0.2:80');
const web = mk('http://10.0.0.3:80');

const req = (path: string, init: RequestInit = {}) =>
  new Request(`http://loadwise.invalid${path}`, init);

describe('Router matching', () => {
  const router = new Router({
    routes: [
      {
        name: 'admin',
        match: { pathPrefix: '/api/admin', headers: { 'x-role': 'admin' } },
        pool: web,
      },
      { name: 'api', match: { pathPrefix: '/api' }, pool: api },
      { name: 'static', match: { pathPrefix: '/static', methods: ['get', 'HEAD'] }, pool: assets },
      { name: 'orders', match: { path: '/users/:id/orders/*' }, pool: api },
      { name: 'tenant', match: { host: '*.tenants.example' }, pool: assets },
      { name: 'beta', match: { headers: { 'x-beta': /^(1|yes)$/ } }, pool: web },
    ],
    default: { pool: web },
  });

  it.each([
    ['GET', '/api', {}, 'api'],
    ['POST', '/api/users/42', {}, 'api'],
    ['GET', '/apis', {}, 'default'],
    ['GET', '/api/admin/x', { 'x-role': 'admin' }, 'admin'],
    ['GET', '/api/admin/x', { 'x-role': 'user' }, 'api'],
    ['GET', '/static/app.js', {}, 'static'],
    ['HEAD', '/static/app.js', {}, 'static'],
    ['POST', '/static/app.js', {}, 'default'],
    ['GET', '/users/7/orders', {}, 'orders'],
    ['GET', '/users/7/orders/3/items', {}, 'orders'],
    ['GET', '/users//orders', {}, 'default'],
    ['GET', '/x', { host: 'blue.tenants.example' }, 'tenant'],
    ['GET', '/x', { host: 'a.b.tenants.example' }, 'default'],
    ['GET', '/x', { 'x-beta': 'yes' }, 'beta'],
    ['GET', '/x', { 'x-beta': 'no' }, 'default'],
  ] as const)('%s %s %o → %s', (method, path, headers, expected) => {
    expect(router.match(req(path, { method, headers }))?.name).toBe(expected);
  });

  it('evaluates rules in order: the first match wins', () => {
    const r = new Router({
      routes: [
        { name: 'first', match: { pathPrefix: '/a' }, pool: api },
        { name: 'second', match: { pathPrefix: '/a/b' }, pool: web },
      ],
    });
    expect(r.match(req('/a/b'))?.name).toBe('first');
  });

  it('throws NoRouteError naming the routes when nothing matches and there is no default', () => {
    const r = new Router({ routes: [{ name: 'api', match: { pathPrefix: '/api' }, pool: api }] });
    expect(() => r.resolve(req('/other'))).toThrow(NoRouteError);
    expect(() => r.resolve(req('/other'))).toThrow(/GET \/other.*api/);
    expect(() => r.acquire()).toThrow(NoRouteError);
  });

  it('acquires from the default pool when used without a request', () => {
    const lease = router.acquire();
    expect(lease.backend.url).toBe('http://10.0.0.3');
    lease.release();
  });

  it('exposes every routed backend once per pool', () => {
    expect(
      router
        .backends()
        .map((b) => b.id)
        .sort(),
    ).toEqual(['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
    expect(router.get('10.0.0.2:80')?.url).toBe('http://10.0.0.2');
    expect(router.routeNames()).toEqual([
      'admin',
      'api',
      'static',
      'orders',
      'tenant',
      'beta',
      'default',
    ]);
  });
});

describe('Router rewrites', () => {
  it('strips and adds path prefixes, keeping the query', () => {
    const r = new Router({
      routes: [
        {
          name: 'api',
          match: { pathPrefix: '/api' },
          pool: api,
          rewrite: { stripPrefix: '/api', addPrefix: '/v2' },
        },
      ],
    });
    expect(new URL(r.resolve(req('/api/users/1?x=1')).request.url).pathname).toBe('/v2/users/1');
    expect(new URL(r.resolve(req('/api/users/1?x=1')).request.url).search).toBe('?x=1');
    expect(new URL(r.resolve(req('/api')).request.url).pathname).toBe('/v2');
  });

  it('removes, sets and adds headers, and carries per-route timeout and retries', () => {
    const r = new Router({
      routes: [
        {
          name: 'api',
          match: { pathPrefix: '/api' },
          pool: api,
          headers: {
            remove: ['cookie'],
            set: { 'x-route': 'api' },
            add: { forwarded: 'for=10.9.9.9' },
          },
          timeoutMs: 250,
          retries: 0,
        },
      ],
    });
    const out = r.resolve(
      req('/api/x', { headers: { cookie: 'a=1', forwarded: 'for=1.1.1.1', 'x-route': 'old' } }),
    );
    expect(out.target).toBe(api);
    expect(out.request.headers.get('cookie')).toBeNull();
    expect(out.request.headers.get('x-route')).toBe('api');
    expect(out.request.headers.get('forwarded')).toBe('for=1.1.1.1, for=10.9.9.9');
    expect(out.timeoutMs).toBe(250);
    expect(out.retries).toBe(0);
  });

  it('returns the request unchanged when the route changes nothing', () => {
    const r = new Router({ routes: [], default: { pool: web } });
    const request = req('/x');
    expect(r.resolve(request).request).toBe(request);
  });
});

describe('Router refuses invalid rules at construction, naming the rule', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'no routes and no default',
      () => new Router({ routes: [] }),
      /at least one route or a default/,
    ],
    ['routes not an array', () => new Router({ routes: 'x' as never }), /routes/],
    [
      'a rule without a pool',
      () => new Router({ routes: [{ name: 'api', match: { pathPrefix: '/a' } } as Route] }),
      /route "api".*pool/,
    ],
    [
      'a pool that is not a pool',
      () => new Router({ routes: [{ name: 'api', pool: {} as never }] }),
      /route "api".*pool/,
    ],
    [
      'a duplicate name',
      () =>
        new Router({
          routes: [
            { name: 'a', match: { pathPrefix: '/a' }, pool: api },
            { name: 'a', match: { pathPrefix: '/b' }, pool: api },
          ],
        }),
      /route "a".*name/,
    ],
    [
      'a missing name',
      () => new Router({ routes: [{ match: { pathPrefix: '/a' }, pool: api } as never] }),
      /routes\[0\]\.name/,
    ],
    [
      'a catch-all before another rule',
      () =>
        new Router({
          routes: [
            { name: 'all', pool: api },
            { name: 'b', match: { pathPrefix: '/b' }, pool: api },
          ],
        }),
      /catch-all route "all"/,
    ],
    [
      'two catch-alls',
      () =>
        new Router({
          routes: [
            { name: 'all', pool: api },
            { name: 'all2', pool: web },
          ],
        }),
      /catch-all/,
    ],
    [
      'a catch-all and a default',
      () => new Router({ routes: [{ name: 'all', pool: api }], default: { pool: web } }),
      /catch-all route \("all"\) or a default/,
    ],
    [
      'a malformed pattern (* in the middle)',
      () => new Router({ routes: [{ name: 'p', match: { path: '/a/*/b' }, pool: api }] }),
      /route "p".*path/,
    ],
    [
      'a malformed pattern (bad parameter)',
      () => new Router({ routes: [{ name: 'p', match: { path: '/a/:1x' }, pool: api }] }),
      /route "p".*path/,
    ],
    [
      'a pattern without a leading slash',
      () => new Router({ routes: [{ name: 'p', match: { path: 'a/b' }, pool: api }] }),
      /route "p".*path/,
    ],
    [
      'a repeated parameter',
      () => new Router({ routes: [{ name: 'p', match: { path: '/:id/:id' }, pool: api }] }),
      /repeats/,
    ],
    [
      'a prefix without a slash',
      () => new Router({ routes: [{ name: 'p', match: { pathPrefix: 'api' }, pool: api }] }),
      /route "p".*pathPrefix/,
    ],
    [
      'an empty method list',
      () => new Router({ routes: [{ name: 'm', match: { methods: [] }, pool: api }] }),
      /route "m".*methods/,
    ],
    [
      'a bad method',
      () => new Router({ routes: [{ name: 'm', match: { methods: ['GE T'] }, pool: api }] }),
      /route "m".*methods\[0\]/,
    ],
    [
      'a bad host',
      () => new Router({ routes: [{ name: 'h', match: { host: 'a b' }, pool: api }] }),
      /route "h".*host/,
    ],
    [
      'a bad header condition',
      () =>
        new Router({ routes: [{ name: 'h', match: { headers: { x: 5 as never } }, pool: api }] }),
      /route "h".*headers/,
    ],
    [
      'an unknown match key',
      () => new Router({ routes: [{ name: 'u', match: { query: 'x' } as never, pool: api }] }),
      /route "u".*query/,
    ],
    [
      'an unknown route key',
      () => new Router({ routes: [{ name: 'u', pool: api, weight: 1 } as never] }),
      /weight/,
    ],
    [
      'a header value with a newline',
      () => new Router({ routes: [{ name: 'v', pool: api, headers: { set: { x: 'a\r\nb' } } }] }),
      /route "v".*headers\.set\.x/,
    ],
    [
      'a bad timeout',
      () => new Router({ routes: [{ name: 't', pool: api, timeoutMs: -1 }] }),
      /route "t".*timeoutMs/,
    ],
    [
      'fractional retries',
      () => new Router({ routes: [{ name: 'r', pool: api, retries: 1.5 }] }),
      /route "r".*retries/,
    ],
    [
      'a rewrite without a slash',
      () => new Router({ routes: [{ name: 'w', pool: api, rewrite: { stripPrefix: 'api' } }] }),
      /route "w".*stripPrefix/,
    ],
  ];
  it.each(cases)('%s', (_label, build, message) => {
    let error: unknown;
    try {
      build();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as Error).message).toMatch(message);
  });
});
