import { MAX_RETRIES } from '../call/options.js';
import type { Clock } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { NoRouteError } from '../errors/no-route-error.js';
import type { FetchResolution, FetchTarget } from '../fetch/types.js';
import { isFieldName, isSendableHeaderValue } from '../http-syntax.js';
import type { Random } from '../random.js';
import type { BackendView, Lease, PickContext } from '../types.js';
import {
  checkDuration,
  checkNumber,
  checkOptions,
  checkString,
  isPlainObject,
} from '../validate.js';
import {
  type CompiledMatch,
  compileMatch,
  isCatchAll,
  type RequestFacts,
  type RouteMatch,
} from './route-matcher.js';

/** Request header changes a route applies, in the order remove, set, add. */
export interface RouteHeaderChanges {
  /** Header names to delete. @example ['cookie'] */
  remove?: readonly string[];
  /** Headers to set, replacing any value. @example { 'x-route': 'api' } */
  set?: Readonly<Record<string, string>>;
  /** Headers to append (kept alongside existing values). @example { forwarded: 'for=10.0.0.1' } */
  add?: Readonly<Record<string, string>>;
}

/** A path rewrite: `stripPrefix` is removed first, then `addPrefix` is put in front. */
export interface RouteRewrite {
  /** A leading path to remove (whole segments). @example '/api' */
  stripPrefix?: string;
  /** A path to put in front. @example '/v2' */
  addPrefix?: string;
}

/** What a matched route does with a request. */
export interface RouteAction {
  /** The pool (or any fetch target) that serves the route. */
  pool: FetchTarget;
  /** Path rewrite. */
  rewrite?: RouteRewrite;
  /** Request header changes. */
  headers?: RouteHeaderChanges;
  /** Per-attempt timeout for this route, overriding the fetch's `timeoutMs`. */
  timeoutMs?: number;
  /** Retries for this route, overriding the fetch's `retries`. */
  retries?: number;
}

/** One routing rule. */
export interface Route extends RouteAction {
  /** A unique name, used in errors, `explain` and the `x-loadwise-route`-style headers you set. */
  name: string;
  /** Conditions; all must hold. Omit for a catch-all (allowed only as the last route). */
  match?: RouteMatch;
}

/** Options of {@link Router}. */
export interface RouterOptions {
  /** Rules, tried in order; the first that matches wins. */
  routes: readonly Route[];
  /** Where requests that match no rule go. Without it they fail with `NoRouteError`. */
  default?: RouteAction;
}

interface CompiledRoute {
  readonly name: string;
  /** Matches every request. */
  readonly catchAll: boolean;
  readonly test: CompiledMatch;
  readonly action: RouteAction;
  readonly strip: string | undefined;
  readonly add: string | undefined;
}

const ROUTE_KEYS = ['name', 'match', 'pool', 'rewrite', 'headers', 'timeoutMs', 'retries'] as const;
const ACTION_KEYS = ['pool', 'rewrite', 'headers', 'timeoutMs', 'retries'] as const;

/**
 * Layer 7 routing in front of several pools: rules match on path prefix or pattern, method, host
 * and headers, in order, with an optional default; each sends the call to its pool, after
 * optional path rewrites and header changes, with its own timeout and retries. A balanced fetch
 * accepts a router wherever it accepts a pool. Matching cost depends only on the rules, never on
 * how many calls were made.
 *
 * Invalid rules are refused at construction: a duplicate or missing name, a rule without a pool,
 * a malformed pattern, or a catch-all that is not last (it would shadow every later rule).
 *
 * @example
 * ```ts
 * const router = new Router({
 *   routes: [
 *     { name: 'api', match: { pathPrefix: '/api' }, pool: apiPool, rewrite: { stripPrefix: '/api' } },
 *     { name: 'static', match: { pathPrefix: '/static', methods: ['GET', 'HEAD'] }, pool: assetPool },
 *   ],
 *   default: { pool: webPool },
 * });
 * const fetch = createBalancedFetch(router);
 * await fetch('/api/users/42'); // → an apiPool backend, path /users/42
 * ```
 */
export class Router implements FetchTarget {
  readonly #routes: readonly CompiledRoute[];
  readonly #default: CompiledRoute | undefined;
  readonly #targets: readonly FetchTarget[];

  constructor(options: RouterOptions) {
    const o = checkOptions('RouterOptions', options, ['routes', 'default']);
    if (!Array.isArray(o.routes))
      throw new LoadBalancerConfigError('routes', o.routes, 'an array of routes');
    const names = new Set<string>();
    const routes: CompiledRoute[] = [];
    o.routes.forEach((route: Route, i: number) => {
      const field = `routes[${i}]`;
      if (!isPlainObject(route))
        throw new LoadBalancerConfigError(
          field,
          route,
          'a route object { name, match?, pool, ... }',
        );
      checkOptions(field, route, ROUTE_KEYS);
      const name = checkString(`${field}.name`, route.name);
      const where = `route "${name}" (${field})`;
      if (names.has(name))
        throw new LoadBalancerConfigError(`${where}.name`, name, 'a name no other route has');
      names.add(name);
      const previous = routes[routes.length - 1];
      if (previous?.catchAll) {
        throw new LoadBalancerConfigError(
          where,
          name,
          `no route after the catch-all route "${previous.name}", which would shadow it`,
        );
      }
      routes.push(compileRoute(where, name, route.match, route));
    });
    const last = routes[routes.length - 1];
    if (o.default !== undefined && last?.catchAll) {
      throw new LoadBalancerConfigError(
        'default',
        'a default route',
        `either a catch-all route ("${last.name}") or a default, not both: they overlap`,
      );
    }
    this.#routes = routes;
    if (o.default !== undefined) {
      if (!isPlainObject(o.default))
        throw new LoadBalancerConfigError('default', o.default, 'a route action { pool, ... }');
      checkOptions('default', o.default, ACTION_KEYS);
      this.#default = compileRoute('default', 'default', undefined, o.default);
    }
    if (this.#routes.length === 0 && this.#default === undefined) {
      throw new LoadBalancerConfigError('routes', o.routes, 'at least one route or a default');
    }
    const targets: FetchTarget[] = [];
    for (const r of [...this.#routes, ...(this.#default ? [this.#default] : [])]) {
      if (!targets.includes(r.action.pool)) targets.push(r.action.pool);
    }
    this.#targets = targets;
  }

  /** The clock of the first route's pool. */
  get clock(): Clock {
    return this.#targets[0]!.clock;
  }

  /** The random source of the first route's pool. */
  get random(): Random {
    return this.#targets[0]!.random;
  }

  /** The route names, in evaluation order (`default` last when configured). */
  routeNames(): readonly string[] {
    return [...this.#routes.map((r) => r.name), ...(this.#default ? ['default'] : [])];
  }

  /**
   * The route a request would take, or `undefined` when none matches (and there is no default).
   */
  match(request: Request): { name: string; pool: FetchTarget } | undefined {
    const route = this.#find(factsOf(request));
    return route && { name: route.name, pool: route.action.pool };
  }

  /**
   * Routes one request: finds the first matching rule and returns its pool, the rewritten
   * request and the rule's overrides.
   * @throws {NoRouteError} when nothing matches and there is no default route.
   */
  resolve(request: Request): FetchResolution {
    if (!(request instanceof Request))
      throw new LoadBalancerConfigError('request', request, 'a Request');
    const facts = factsOf(request);
    const route = this.#find(facts);
    if (route === undefined) throw new NoRouteError(request.method, facts.path, this.routeNames());
    const resolution: FetchResolution = {
      target: route.action.pool,
      request: rewrite(request, route),
    };
    if (route.action.timeoutMs !== undefined) resolution.timeoutMs = route.action.timeoutMs;
    if (route.action.retries !== undefined) resolution.retries = route.action.retries;
    return resolution;
  }

  #find(facts: RequestFacts): CompiledRoute | undefined {
    for (const r of this.#routes) if (r.test(facts)) return r;
    return this.#default;
  }

  /**
   * Picks from the default route's pool (for callers that acquire without a request).
   * @throws {NoRouteError} when the router has no default route.
   */
  acquire(ctx?: PickContext): Lease {
    if (this.#default === undefined)
      throw new NoRouteError('(acquire)', '(no request)', this.routeNames());
    return this.#default.action.pool.acquire(ctx);
  }

  /** The backend with this id in any routed pool. */
  get(id: string): BackendView | undefined {
    for (const t of this.#targets) {
      const b = t.get(id);
      if (b !== undefined) return b;
    }
    return undefined;
  }

  /** Every backend of every routed pool. */
  backends(): readonly BackendView[] {
    return this.#targets.flatMap((t) => t.backends());
  }
}

function compileRoute(
  where: string,
  name: string,
  match: RouteMatch | undefined,
  action: RouteAction,
): CompiledRoute {
  const pool = action.pool as unknown;
  if (
    pool === null ||
    typeof pool !== 'object' ||
    typeof (pool as FetchTarget).acquire !== 'function' ||
    typeof (pool as FetchTarget).backends !== 'function'
  ) {
    throw new LoadBalancerConfigError(
      `${where}.pool`,
      pool,
      'a BackendPool (every route needs a pool)',
    );
  }
  if (action.timeoutMs !== undefined)
    checkDuration(`${where}.timeoutMs`, action.timeoutMs, { min: 0, minExclusive: true });
  // The balanced fetch takes at most MAX_RETRIES retries (its own `retries` option): refuse
  // more here, rather than on every call routed here.
  if (action.retries !== undefined)
    checkNumber(`${where}.retries`, action.retries, { min: 0, max: MAX_RETRIES, integer: true });
  let strip: string | undefined;
  let add: string | undefined;
  if (action.rewrite !== undefined) {
    const rw = checkOptions(`${where}.rewrite`, action.rewrite, ['stripPrefix', 'addPrefix']);
    if (rw.stripPrefix !== undefined)
      strip = checkPrefix(`${where}.rewrite.stripPrefix`, rw.stripPrefix);
    if (rw.addPrefix !== undefined) add = checkPrefix(`${where}.rewrite.addPrefix`, rw.addPrefix);
  }
  if (action.headers !== undefined) checkHeaderChanges(`${where}.headers`, action.headers);
  return {
    name,
    catchAll: isCatchAll(match),
    test: compileMatch(`${where}.match`, match),
    action,
    strip,
    add,
  };
}

function checkPrefix(field: string, value: unknown): string {
  const s = checkString(field, value);
  if (!s.startsWith('/') || s.includes('?') || s.includes('#') || s.includes('//')) {
    throw new LoadBalancerConfigError(
      field,
      value,
      'a path starting with "/" without "?", "#" or "//"',
    );
  }
  return s.length > 1 ? s.replace(/\/+$/, '') : '';
}

function checkHeaderChanges(field: string, changes: RouteHeaderChanges): void {
  const c = checkOptions(field, changes, ['remove', 'set', 'add']);
  if (c.remove !== undefined) {
    if (!Array.isArray(c.remove))
      throw new LoadBalancerConfigError(`${field}.remove`, c.remove, 'an array of header names');
    c.remove.forEach((n, i) => {
      if (typeof n !== 'string' || !isFieldName(n)) {
        throw new LoadBalancerConfigError(`${field}.remove[${i}]`, n, 'a valid header name');
      }
    });
  }
  for (const key of ['set', 'add'] as const) {
    const map = c[key];
    if (map === undefined) continue;
    if (!isPlainObject(map))
      throw new LoadBalancerConfigError(`${field}.${key}`, map, 'an object of header values');
    for (const [n, v] of Object.entries(map)) {
      if (!isFieldName(n))
        throw new LoadBalancerConfigError(`${field}.${key}`, n, 'a valid header name');
      // Fetch sends header values as bytes (Web IDL ByteString): a character above U+00FF threw
      // a TypeError on every routed call.
      if (typeof v !== 'string' || !isSendableHeaderValue(v)) {
        throw new LoadBalancerConfigError(
          `${field}.${key}.${n}`,
          v,
          'a header value without CR, LF, NUL or characters above U+00FF',
        );
      }
    }
  }
}

function factsOf(request: Request): RequestFacts {
  // Request.url is already normalized (WHATWG URL serialization), so the path can be sliced out
  // without parsing a new URL, which would double the cost of matching.
  const raw = request.url;
  const authority = raw.indexOf('//') + 2;
  let pathStart = raw.indexOf('/', authority);
  if (pathStart < 0) pathStart = raw.length;
  let pathEnd = raw.length;
  for (let i = pathStart; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) {
      pathEnd = i;
      break;
    }
  }
  // A relative call carries the fetch's placeholder origin; the Host header then names the host.
  const hostHeader = request.headers.get('host');
  const hostPort = hostHeader ?? raw.slice(authority, pathStart);
  const host = (
    hostPort.startsWith('[')
      ? hostPort.slice(0, hostPort.indexOf(']') + 1)
      : hostPort.replace(/:\d+$/, '')
  ).toLowerCase();
  return {
    method: request.method.toUpperCase(),
    path: pathStart === raw.length ? '/' : raw.slice(pathStart, pathEnd),
    host,
    headers: request.headers,
  };
}

function rewrite(request: Request, route: CompiledRoute): Request {
  const changesHeaders = route.action.headers !== undefined;
  if (route.strip === undefined && route.add === undefined && !changesHeaders) return request;
  const url = new URL(request.url);
  if (route.strip !== undefined) {
    const p = url.pathname;
    if (p === route.strip || p.startsWith(`${route.strip}/`))
      url.pathname = p.slice(route.strip.length) || '/';
  }
  if (route.add !== undefined)
    url.pathname = `${route.add}${url.pathname === '/' ? '' : url.pathname}` || '/';
  const headers = new Headers(request.headers);
  const h = route.action.headers;
  if (h !== undefined) {
    for (const n of h.remove ?? []) headers.delete(n);
    for (const [n, v] of Object.entries(h.set ?? {})) headers.set(n, v);
    for (const [n, v] of Object.entries(h.add ?? {})) headers.append(n, v);
  }
  // No signal: the balanced fetch cancels attempts with its own signals, and passing the
  // caller's would add a listener to it for every rewritten request.
  return new Request(url, { method: request.method, headers, redirect: request.redirect });
}
