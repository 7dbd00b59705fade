/**
 * The URL rule of the balanced fetch: what a caller may ask for, and where it goes. A balancer
 * must never become a way to reach arbitrary hosts, so every URL resolves to a path on the
 * picked backend, or is refused before anything is sent.
 * @internal
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { RequestRefusedError } from '../errors/request-refused-error.js';
import type { BackendView } from '../types.js';

/** The origin of hook requests made from a relative path when no service origin is set. */
export const PLACEHOLDER_ORIGIN = 'http://loadwise.invalid';

const SCHEME = /^[a-zA-Z][a-zA-Z\d+.-]*:/;
/** Encoded dots and dot segments, which must not climb above the root. */
const DOTS = /%2e|(?:^|\/)\.\.?(?:[/?#]|$)/i;

/** {@link scanPath}'s answer for a path that needs the URL parser. */
const PARSE = -2;

/**
 * One scan of a path: {@link PARSE} when it needs the URL parser (backslashes and control
 * characters, which URL parsers treat as `/` or drop and so can turn a path into `//host`;
 * encoded dots and dot segments), else where its fragment starts (-1: none). One loop instead of
 * a pattern and an `indexOf` per request.
 */
function scanPath(path: string): number {
  // Dots and percent signs are rare enough in paths that the pattern runs only when one is there.
  let dots = false;
  let hash = -1;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return PARSE;
    if (c === 0x2e || c === 0x25) dots = true;
    else if (c === 0x23 && hash < 0) hash = i;
  }
  return dots && DOTS.test(path) ? PARSE : hash;
}
const ROOT = '/loadwise-root';

/** Where the backends come from (a pool or any fetch target). */
export interface BackendSource {
  backends(): readonly BackendView[];
}

/** The URL policy of one balanced fetch. */
export interface UrlPolicy {
  /** Allowed logical origins (normalized, e.g. `http://users.internal`). */
  readonly serviceOrigins: ReadonlySet<string>;
  /**
   * The origin of the requests handed to hooks for calls made with a path (the first service
   * origin, else {@link PLACEHOLDER_ORIGIN}); accepted so a hook may return such a request.
   */
  readonly logicalOrigin?: string;
}

/** Whether `raw` starts with a scheme (and so is an absolute URL, or is refused as one). */
export function hasScheme(raw: string): boolean {
  return SCHEME.test(raw);
}

/**
 * Turns what the caller asked for into a path (with query) relative to the backend's base URL,
 * beginning with `/`.
 * @throws {RequestRefusedError} when the URL would leave the pool.
 */
export function resolvePath(raw: string, backends: BackendSource, policy: UrlPolicy): string {
  const c0 = raw.charCodeAt(0);
  // A scheme starts with a letter: a path starting with `/` needs no pattern to rule one out.
  if (c0 !== 47 && SCHEME.test(raw)) return absolutePath(raw, backends, policy);
  const c1 = raw.charCodeAt(1);
  // `//host`, `\\host`, `/\host`, `\/host` all name a host to a URL parser.
  if ((c0 === 47 || c0 === 92) && (c1 === 47 || c1 === 92)) {
    throw new RequestRefusedError(raw, 'protocol-relative', allowedOrigins(backends, policy));
  }
  const path = c0 === 47 ? raw : `/${raw}`;
  const hash = scanPath(path);
  if (hash === PARSE) return parsedPath(raw, path, backends, policy);
  return hash < 0 ? path : path.slice(0, hash);
}

/** The slow path: let a URL parser decide, then check that it stayed on a path. */
function parsedPath(raw: string, path: string, backends: BackendSource, policy: UrlPolicy): string {
  let plain: URL;
  let rooted: URL;
  try {
    plain = new URL(path, PLACEHOLDER_ORIGIN);
    rooted = new URL(ROOT + path, PLACEHOLDER_ORIGIN);
  } catch {
    throw new RequestRefusedError(raw, 'invalid-url', allowedOrigins(backends, policy));
  }
  if (plain.origin !== PLACEHOLDER_ORIGIN) {
    throw new RequestRefusedError(raw, 'protocol-relative', allowedOrigins(backends, policy));
  }
  const p = rooted.pathname;
  if (p !== ROOT && !p.startsWith(`${ROOT}/`)) {
    throw new RequestRefusedError(raw, 'path-escape', allowedOrigins(backends, policy));
  }
  return (p === ROOT ? '/' : p.slice(ROOT.length)) + rooted.search;
}

function absolutePath(raw: string, backends: BackendSource, policy: UrlPolicy): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new RequestRefusedError(raw, 'invalid-url', allowedOrigins(backends, policy));
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new RequestRefusedError(raw, 'scheme', allowedOrigins(backends, policy));
  }
  const origin = u.origin;
  if (policy.serviceOrigins.has(origin) || origin === policy.logicalOrigin) {
    return u.pathname + u.search;
  }
  // A backend's own origin: its path already includes that backend's base path; strip it so the
  // rest can go to whichever backend is picked.
  let matched = false;
  let strip = '';
  for (const b of backends.backends()) {
    const bo = originOf(b.url);
    if (bo !== origin) continue;
    matched = true;
    const base = b.url.slice(bo.length);
    if (base.length > strip.length && (u.pathname === base || u.pathname.startsWith(`${base}/`))) {
      strip = base;
    }
  }
  if (matched) {
    const rest = u.pathname.slice(strip.length);
    return (rest === '' ? '/' : rest) + u.search;
  }
  const allowed = allowedOrigins(backends, policy);
  const sameHost = allowed.some((o) => {
    const host = o.slice(o.indexOf('//') + 2);
    return host === u.host && !o.startsWith(u.protocol);
  });
  throw new RequestRefusedError(raw, sameHost ? 'scheme-change' : 'origin', allowed);
}

/**
 * Encodings that servers decode differently, so a path that looks confined to the backend's
 * base path may climb above it once decoded: an encoded slash or backslash (`..%2f`, `%5c..`,
 * also double-encoded as `%252f`), an encoded NUL, a double-encoded dot (`%252e`), and path
 * parameters on dot segments (`..;/`, which Tomcat and Spring treat as `../`). Plain dot segments
 * and singly encoded dots are resolved by the URL parser before this check.
 */
const AMBIGUOUS = /%(?:25)*(?:2f|5c|00)|%(?:25)+2e|(?:^|\/)\.\.?;/i;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/**
 * Whether the percent-encoded bytes of `path` are not valid UTF-8. Overlong forms are invalid
 * UTF-8, and old decoders read them as the character they spell: `..%c0%af` is `../` to IIS 4
 * and 5 (the Unicode directory traversal, CVE-2000-0884, MS00-078), as are `%c1%9c` (`\`) and
 * `%c0%ae` (`.`). A strict decoder refuses them all, so they are ambiguous by definition.
 */
function invalidUtf8(path: string): boolean {
  if (!/%[89a-f][0-9a-f]/i.test(path)) return false;
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 && /^[0-9a-f]{2}$/i.test(path.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // A raw non-ASCII character (the URL parser encodes them; kept as valid UTF-8 here).
      bytes.push(...utf8Encoder.encode(path[i]!));
    }
  }
  try {
    utf8.decode(new Uint8Array(bytes));
    return false;
  } catch {
    return true;
  }
}

/**
 * How a balanced fetch (or the dispatcher) treats paths whose encoding servers decode differently
 * (`..%2f`, `%5c`, `%00`, double encodings, invalid UTF-8): `'refuse'` always refuses them,
 * `'auto'` only when a backend has a base path (only then is there anything above the path to
 * reach), `'allow'` never.
 */
export type AmbiguousPathMode = 'refuse' | 'allow' | 'auto';

/**
 * Refuses a path whose encoding is ambiguous (see {@link AMBIGUOUS}): always under `'refuse'`,
 * under `'auto'` only when a backend of the target has a base path (only then is there anything
 * above the path to reach), never under `'allow'`.
 * @throws {RequestRefusedError} with reason `ambiguous-path`.
 */
export function checkAmbiguousPath(
  raw: string,
  path: string,
  mode: AmbiguousPathMode,
  backends: BackendSource,
  policy: UrlPolicy,
): void {
  if (mode === 'allow') return;
  // Every ambiguous form has a `%` or a `;` before the query: most paths have neither and skip
  // the patterns (one loop, where three `indexOf` calls cost more on short paths).
  let q = path.length;
  let suspect = false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f) {
      q = i;
      break;
    }
    if (c === 0x25 || c === 0x3b) suspect = true;
  }
  if (!suspect) return;
  const p = q === path.length ? path : path.slice(0, q);
  if (!AMBIGUOUS.test(p) && !invalidUtf8(p)) return;
  if (mode === 'auto' && !backends.backends().some(hasBasePath)) return;
  throw new RequestRefusedError(raw, 'ambiguous-path', allowedOrigins(backends, policy));
}

function hasBasePath(backend: BackendView): boolean {
  return backend.url.length > originOf(backend.url).length;
}

/** The full URL of `path` on `backend`, keeping the backend's base path. */
export function backendUrl(backend: BackendView, path: string): string {
  return backend.url + path;
}

/** `scheme://host[:port]` of a normalized backend URL. */
function originOf(url: string): string {
  const slash = url.indexOf('/', url.indexOf('//') + 2);
  return slash < 0 ? url : url.slice(0, slash);
}

function allowedOrigins(backends: BackendSource, policy: UrlPolicy): string[] {
  const set = new Set<string>(policy.serviceOrigins);
  for (const b of backends.backends()) set.add(originOf(b.url));
  return [...set];
}

/** Validates and normalizes the `serviceOrigins` option. @internal */
export function parseServiceOrigins(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    throw new LoadBalancerConfigError(
      'serviceOrigins',
      value,
      'an array of origins such as ["http://users.internal"]',
    );
  }
  return value.map((v, i) => {
    const field = `serviceOrigins[${i}]`;
    let u: URL | undefined;
    try {
      u = typeof v === 'string' ? new URL(v) : undefined;
    } catch {
      u = undefined;
    }
    if (
      u === undefined ||
      (u.protocol !== 'http:' && u.protocol !== 'https:') ||
      u.pathname !== '/' ||
      u.search !== '' ||
      u.hash !== '' ||
      u.username !== '' ||
      u.password !== ''
    ) {
      throw new LoadBalancerConfigError(
        field,
        v,
        'an http(s) origin without path, query or credentials, such as "http://users.internal"',
      );
    }
    return u.origin;
  });
}
