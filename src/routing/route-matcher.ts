import { LoadBalancerConfigError } from '../errors/config-error.js';
import { checkOptions, checkString, isPlainObject } from '../validate.js';

/** A header condition: an exact value, a pattern, or `true` for "present". */
export type HeaderCondition = string | RegExp | true;

/** What a route matches on. Every given condition must hold; an empty match is a catch-all. */
export interface RouteMatch {
  /**
   * Path prefix, matched on whole segments: `/api` matches `/api` and `/api/users`, not `/apis`.
   * @example '/api'
   */
  pathPrefix?: string;
  /**
   * Path pattern: literal segments, `:name` for one segment and a trailing `*` for the rest, or a
   * RegExp tested against the path.
   * @example '/users/:id/orders/*'
   */
  path?: string | RegExp;
  /** HTTP methods (case-insensitive). @example ['GET', 'HEAD'] */
  methods?: readonly string[];
  /**
   * Host (from the URL of an absolute request, else the `Host` header), without the port;
   * `*.example.com` matches any single-label subdomain.
   */
  host?: string;
  /** Header conditions by (case-insensitive) name. @example { 'x-tenant': 'blue' } */
  headers?: Readonly<Record<string, HeaderCondition>>;
}

/** The parts of a request a route looks at. @internal */
export interface RequestFacts {
  method: string;
  path: string;
  host: string;
  headers: { get(name: string): string | null };
}

/** A compiled, allocation-light predicate. @internal */
export type CompiledMatch = (facts: RequestFacts) => boolean;

const MATCH_KEYS = ['pathPrefix', 'path', 'methods', 'host', 'headers'] as const;

/** Whether a match has no condition at all (matches every request). @internal */
export function isCatchAll(match: RouteMatch | undefined): boolean {
  return match === undefined || MATCH_KEYS.every((k) => match[k] === undefined);
}

/**
 * Validates a route's match and compiles it into a predicate. Throws a
 * {@link LoadBalancerConfigError} naming `field` for a malformed condition.
 * @internal
 */
export function compileMatch(field: string, match: RouteMatch | undefined): CompiledMatch {
  if (match === undefined) return () => true;
  const m = checkOptions(field, match, MATCH_KEYS);
  const tests: CompiledMatch[] = [];

  if (m.pathPrefix !== undefined) {
    const prefix = checkString(`${field}.pathPrefix`, m.pathPrefix);
    if (!prefix.startsWith('/'))
      throw new LoadBalancerConfigError(`${field}.pathPrefix`, prefix, 'a path starting with "/"');
    const bare = prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix;
    tests.push(
      ({ path }) =>
        bare === '/' ||
        path === bare ||
        (path.startsWith(bare) && path.charCodeAt(bare.length) === 47),
    );
  }
  if (m.path !== undefined) {
    const re = m.path instanceof RegExp ? m.path : compilePathPattern(`${field}.path`, m.path);
    tests.push(({ path }) => {
      re.lastIndex = 0;
      return re.test(path);
    });
  }
  if (m.methods !== undefined) {
    if (!Array.isArray(m.methods) || m.methods.length === 0) {
      throw new LoadBalancerConfigError(
        `${field}.methods`,
        m.methods,
        'a non-empty array of HTTP methods',
      );
    }
    const methods = new Set(
      m.methods.map((x, i) => {
        const s = checkString(`${field}.methods[${i}]`, x);
        if (!/^[A-Za-z]+$/.test(s))
          throw new LoadBalancerConfigError(`${field}.methods[${i}]`, s, 'an HTTP method name');
        return s.toUpperCase();
      }),
    );
    tests.push(({ method }) => methods.has(method));
  }
  if (m.host !== undefined) {
    const host = checkString(`${field}.host`, m.host).toLowerCase();
    if (!/^(\*\.)?[a-z0-9.-]+$/.test(host)) {
      throw new LoadBalancerConfigError(
        `${field}.host`,
        m.host,
        'a host name, optionally starting with "*."',
      );
    }
    if (host.startsWith('*.')) {
      const suffix = host.slice(1);
      tests.push(
        (f) =>
          f.host.endsWith(suffix) &&
          !f.host.slice(0, -suffix.length).includes('.') &&
          f.host.length > suffix.length,
      );
    } else {
      tests.push((f) => f.host === host);
    }
  }
  if (m.headers !== undefined) {
    if (!isPlainObject(m.headers))
      throw new LoadBalancerConfigError(
        `${field}.headers`,
        m.headers,
        'an object of header conditions',
      );
    for (const [name, cond] of Object.entries(m.headers)) {
      const key = name.toLowerCase();
      if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(key)) {
        throw new LoadBalancerConfigError(`${field}.headers`, name, 'a valid header name');
      }
      if (cond === true) tests.push((f) => f.headers.get(key) !== null);
      else if (typeof cond === 'string') tests.push((f) => f.headers.get(key) === cond);
      else if (cond instanceof RegExp) {
        tests.push((f) => {
          const v = f.headers.get(key);
          cond.lastIndex = 0;
          return v !== null && cond.test(v);
        });
      } else {
        throw new LoadBalancerConfigError(
          `${field}.headers.${name}`,
          cond,
          'a string, a RegExp or true',
        );
      }
    }
  }
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (facts) => {
    for (const t of tests) if (!t(facts)) return false;
    return true;
  };
}

/**
 * Compiles `/users/:id/orders/*` into an anchored RegExp. Segments are literal text, `:name`
 * (one non-empty segment) or a final `*` (the rest of the path, possibly empty).
 * @internal
 */
export function compilePathPattern(field: string, pattern: string): RegExp {
  checkString(field, pattern);
  if (!pattern.startsWith('/'))
    throw new LoadBalancerConfigError(field, pattern, 'a path pattern starting with "/"');
  const segments = pattern.split('/').slice(1);
  const parts: string[] = [];
  const names = new Set<string>();
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === '*') {
      if (!last) throw new LoadBalancerConfigError(field, pattern, '"*" only as the last segment');
      parts.push('(?:/.*)?');
      return;
    }
    if (seg.startsWith(':')) {
      const name = seg.slice(1);
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        throw new LoadBalancerConfigError(
          field,
          pattern,
          'parameters named like ":id" (letters, digits, "_")',
        );
      }
      if (names.has(name))
        throw new LoadBalancerConfigError(
          field,
          pattern,
          `each parameter name once (":${name}" repeats)`,
        );
      names.add(name);
      parts.push('/[^/]+');
      return;
    }
    if (/[*:?#()[\]{}\\]/.test(seg)) {
      throw new LoadBalancerConfigError(
        field,
        pattern,
        'literal segments without *, :, ?, #, brackets or backslashes',
      );
    }
    if (seg === '' && !last)
      throw new LoadBalancerConfigError(field, pattern, 'no empty segments ("//")');
    parts.push(`/${seg.replace(/[.+^$|]/g, '\\$&')}`);
  });
  return new RegExp(`^${parts.join('')}/?$`);
}
