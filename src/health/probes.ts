import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { FetchFunction, FetchResponse } from '../fetch/types.js';
import { isFieldName, isFieldValue } from '../http-syntax.js';
import type { BackendView } from '../types.js';
import {
  checkFunction,
  checkNumber,
  checkOneOf,
  checkOptions,
  checkString,
  isPlainObject,
  optNumber,
} from '../validate.js';

/** What a probe found out about one backend. */
export interface ProbeResult {
  /** Whether the backend passed. */
  ok: boolean;
  /** A short explanation for events and state changes, e.g. `status 503`. */
  reason?: string;
  /** The HTTP status, for HTTP probes. */
  status?: number;
}

/**
 * A health probe: checks one backend and settles within the checker's timeout. It must stop its
 * I/O when `signal` aborts (the checker aborts it on timeout and on `close()`).
 *
 * The backend passes when the promise resolves to `true`, `undefined` or `{ ok: true }`; it fails
 * when it resolves to `false` or `{ ok: false }`, or rejects. Any other value fails, with a reason
 * that says so.
 *
 * `probeType` labels the probe (`http`, `tcp`) so a {@link HealthChecker} can name it.
 *
 * @example
 * ```ts
 * const probe: Probe = async (backend, signal) => {
 *   await redisPing(backend.url, { signal }); // throws when the backend is down
 * };
 * ```
 */
export type Probe = ((
  backend: BackendView,
  signal: AbortSignal,
  // biome-ignore lint/suspicious/noConfusingVoidType: lets `async () => { await ping() }` be a probe.
) => Promise<ProbeResult | boolean | undefined | void>) & { readonly probeType?: string };

/** The init object an HTTP probe hands its `fetch`. */
export interface ProbeRequestInit {
  method: 'GET' | 'HEAD';
  headers: Record<string, string>;
  /** Aborted on the checker's timeout and on `close()`. */
  signal: AbortSignal;
  /** Redirects are judged by their own status, never followed. */
  redirect: 'manual';
}

/**
 * The fetch an HTTP probe calls, with the absolute URL of the health endpoint. The platform
 * `fetch`, undici's `fetch` (whose types TypeScript does not take for the platform's) and test
 * doubles all fit.
 */
export type ProbeFetch = FetchFunction<ProbeRequestInit, FetchResponse>;

/** Options of {@link httpProbe}. */
export interface HttpProbeOptions {
  /**
   * The path to request, resolved against the backend URL like a link: `/health` sits at the
   * root of the backend's host, `health` (no leading slash) under the backend's base path. A
   * query is allowed. Refused at construction: a full URL, anything that resolves to another
   * host (`//other-host/health`, `/\\other-host`), and control characters or spaces (the URL
   * parser would drop tabs and newlines silently).
   * @default '/health'
   */
  path?: string;
  /**
   * The request method. `HEAD` saves the body transfer.
   * @default 'GET'
   */
  method?: 'GET' | 'HEAD';
  /**
   * Statuses that pass. Redirects are not followed, so a 3xx passes only when listed. Envoy
   * passes only 200 by default and HAProxy any 2xx or 3xx; 2xx is the middle ground, and a 3xx
   * from a health endpoint is usually a login redirect rather than a healthy answer.
   * @default every status from 200 to 299
   */
  expectedStatuses?: readonly number[];
  /**
   * Extra request headers (a Host override, an auth token for the health endpoint). Names must
   * be RFC 9110 tokens and values RFC 9110 field values (no CR, LF or other control characters
   * but tab, no leading or trailing whitespace); anything else is refused at construction.
   * @default {}
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * The `fetch` to use, e.g. undici's with a custom dispatcher.
   * @default globalThis.fetch
   */
  fetch?: ProbeFetch;
  /**
   * Read at most this many bytes of the body, then cancel it. The body is read so that a
   * connection reset in the middle of the response fails the probe.
   * @default 65536
   */
  maxBodyBytes?: number;
}

/** @internal Option keys that belong to {@link httpProbe}. */
export const HTTP_PROBE_KEYS = [
  'path',
  'method',
  'expectedStatuses',
  'headers',
  'fetch',
  'maxBodyBytes',
] as const;

/**
 * An HTTP probe over the platform `fetch` (runs in Node, Deno, Bun, workers and browsers). The
 * checker's `AbortSignal` cancels the request and its body on timeout.
 *
 * @example
 * ```ts
 * new HealthChecker(pool, { probe: httpProbe({ path: '/health/ready', expectedStatuses: [200, 204] }) });
 * ```
 */
export function httpProbe(options: HttpProbeOptions = {}): Probe {
  const o = checkOptions('HttpProbeOptions', options, HTTP_PROBE_KEYS);
  const path = o.path === undefined ? '/health' : checkPath(o.path);
  const method = o.method === undefined ? 'GET' : checkOneOf('method', o.method, ['GET', 'HEAD']);
  const expected = parseStatuses(o.expectedStatuses);
  const expectedText = describeStatuses(expected);
  const headers = parseHeaders(o.headers);
  const fetchFn =
    o.fetch === undefined
      ? checkFunction<ProbeFetch>(
          'fetch (this runtime has no global fetch: pass one)',
          globalThis.fetch,
        )
      : checkFunction<ProbeFetch>('fetch', o.fetch);
  const maxBodyBytes = optNumber('maxBodyBytes', o.maxBodyBytes, 65_536, {
    min: 0,
    integer: true,
  });

  const probe = async (backend: BackendView, signal: AbortSignal): Promise<ProbeResult> => {
    if (!/^https?:/i.test(backend.url)) {
      // fetch would fail with a runtime's own words ("unknown scheme"): say what to change.
      return {
        ok: false,
        reason: `the HTTP probe needs an http:// or https:// backend, not ${backend.url}; probe it with tcpProbe() from loadwise/node or a probe of your own`,
      };
    }
    const base = backend.url.endsWith('/') ? backend.url : `${backend.url}/`;
    const url = new URL(path, base).href;
    // `redirect: 'manual'`: a health endpoint that redirects is judged by its own status.
    // A Response, the platform's or undici's; the type asks only for what a caller must give.
    const res = (await fetchFn(url, { method, headers, signal, redirect: 'manual' })) as Response;
    try {
      await readBody(res, maxBodyBytes);
    } catch (error) {
      if (signal.aborted) throw error;
      return {
        ok: false,
        status: res.status,
        reason: `response broke off after status ${res.status}: ${describeError(error)}`,
      };
    }
    const ok = expected.has(res.status);
    return {
      ok,
      status: res.status,
      reason: ok ? `status ${res.status}` : `status ${res.status}, expected ${expectedText}`,
    };
  };
  Object.defineProperty(probe, 'probeType', { value: 'http' });
  return probe;
}

/** Reads up to `max` bytes of the body, then cancels the rest (frees the connection). */
async function readBody(res: Response, max: number): Promise<void> {
  const body = res.body;
  if (body === null) return;
  const reader = body.getReader();
  try {
    let read = 0;
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return;
      read += chunk.value.byteLength;
      if (read >= max) {
        await reader.cancel();
        return;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseStatuses(value: unknown): ReadonlySet<number> {
  if (value === undefined) {
    return new Set(Array.from({ length: 100 }, (_, i) => 200 + i));
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new LoadBalancerConfigError(
      'expectedStatuses',
      value,
      'a non-empty array of HTTP statuses such as [200, 204]',
    );
  }
  return new Set(
    value.map((s, i) =>
      checkNumber(`expectedStatuses[${i}]`, s, { min: 100, max: 599, integer: true }),
    ),
  );
}

function describeStatuses(statuses: ReadonlySet<number>): string {
  const sorted = [...statuses].sort((a, b) => a - b);
  const first = sorted[0]!;
  const last = sorted[sorted.length - 1]!;
  if (sorted.length > 2 && last - first === sorted.length - 1) return `${first}-${last}`;
  return sorted.join(', ');
}

function parseHeaders(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError('headers', value, 'an object of header names to strings');
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!isFieldName(k)) {
      throw new LoadBalancerConfigError(
        'headers',
        k,
        "header names that are RFC 9110 tokens (letters, digits and !#$%&'*+-.^_`|~, no spaces)",
      );
    }
    const text = checkString(`headers.${k}`, v, { nonEmpty: false });
    if (!isFieldValue(text)) {
      throw new LoadBalancerConfigError(
        `headers.${k}`,
        text,
        'an RFC 9110 field value: no CR, LF or other control characters but tab, no leading or trailing whitespace, no characters above U+00FF',
      );
    }
    out[k] = text;
  }
  return out;
}

/** A probe path must stay on the backend: checked by resolving it against a stand-in. */
function checkPath(value: unknown): string {
  const path = checkString('path', value);
  if (/^[a-z][a-z0-9+.-]*:/i.test(path)) {
    throw new LoadBalancerConfigError(
      'path',
      path,
      'a path such as "/health" (not a full URL: the backend URL gives scheme and host)',
    );
  }
  // The URL parser removes tabs and newlines and would send the rest; refuse them instead.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (/[\x00-\x20\x7f]/.test(path)) {
    throw new LoadBalancerConfigError(
      'path',
      path,
      'a path without spaces or control characters (percent-encode them)',
    );
  }
  // WHATWG URL: "//host/x" is scheme-relative, and "\\" counts as "/" for http(s); either way
  // the probe would go to another host. Compare what the path resolves to under two bases.
  for (const base of ['http://backend.invalid/base/', 'https://backend.invalid:8443/base/']) {
    let resolved: URL | undefined;
    try {
      resolved = new URL(path, base);
    } catch {
      resolved = undefined;
    }
    const b = new URL(base);
    if (
      resolved === undefined ||
      resolved.protocol !== b.protocol ||
      resolved.host !== b.host ||
      resolved.username !== ''
    ) {
      throw new LoadBalancerConfigError(
        'path',
        path,
        'a path on the backend itself, such as "/health" (this one resolves to another host)',
      );
    }
  }
  return path;
}

/**
 * Turns whatever a probe returned into a {@link ProbeResult}.
 * @internal
 */
export function normalizeProbeValue(value: unknown): ProbeResult {
  if (value === true || value === undefined) return { ok: true, reason: 'passed' };
  if (value === false) return { ok: false, reason: 'probe returned false' };
  if (isPlainObject(value) && typeof value['ok'] === 'boolean') {
    const result: ProbeResult = { ok: value['ok'] };
    const reason = value['reason'];
    const status = value['status'];
    result.reason = typeof reason === 'string' ? reason : value['ok'] ? 'passed' : 'failed';
    if (typeof status === 'number') result.status = status;
    return result;
  }
  return {
    ok: false,
    reason: `probe resolved to an unexpected value (${typeof value}); return true, false or { ok }`,
  };
}

/**
 * A one-line description of an error, with the system error code of its cause when there is one
 * (fetch wraps `ECONNREFUSED` in a `TypeError: fetch failed`).
 * @internal
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = (error as { cause?: unknown }).cause;
  const code = (error as { code?: unknown }).code;
  let text = error.message || error.name;
  if (typeof code === 'string' && !text.includes(code)) text = `${code}: ${text}`;
  if (cause instanceof Error) {
    const causeCode = (cause as { code?: unknown }).code;
    const detail = typeof causeCode === 'string' ? causeCode : cause.message;
    if (detail && !text.includes(detail)) text = `${text} (${detail})`;
  }
  return text;
}
