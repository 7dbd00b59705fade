import {
  BalancedCall,
  type BodyEnd,
  type CallTransport,
  type Held,
  isThenable,
} from '../call/call.js';
import type { Cancel } from '../call/cancel.js';
import {
  CALL_OPTION_KEYS,
  MAX_RETRIES,
  optionalMs,
  type ParsedCallOptions,
  parseCallOptions,
} from '../call/options.js';
import { attemptContext } from '../call/pick-context.js';
import { Emitter } from '../emitter.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { overlay } from '../overlay.js';
import type { BackendView, FailureKind, PickContext } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkNumber,
  checkOneOf,
  checkOptions,
  checkRandom,
  isPlainObject,
  optDuration,
  optNumber,
} from '../validate.js';
import { assertFetchable, badPortError } from './bad-ports.js';
import { type BodyListener, type TrackedBody, trackBody } from './body.js';
import { classifyError, retryAfterMs } from './outcome.js';
import { checkHeaders, checkMethod } from './request-check.js';
import type {
  AfterResponseInfo,
  BalancedFetch,
  BalancedFetchEvents,
  BalancedFetchOptions,
  FetchFunction,
  FetchResolution,
  FetchResponse,
  FetchTarget,
} from './types.js';
import {
  type AmbiguousPathMode,
  backendUrl,
  checkAmbiguousPath,
  hasScheme,
  PLACEHOLDER_ORIGIN,
  parseServiceOrigins,
  resolvePath,
  type UrlPolicy,
} from './url.js';

const OPTION_KEYS = [
  'fetch',
  ...CALL_OPTION_KEYS,
  'unreadBodyTimeoutMs',
  'bufferBody',
  'maxBufferBytes',
  'serviceOrigins',
  'ambiguousPaths',
  'key',
  'context',
  'afterResponse',
  'clock',
  'random',
] as const;

const EMPTY_INIT: RequestInit = Object.freeze({}) as RequestInit;

/** Everything a call needs from the fetch's configuration. */
interface Config extends ParsedCallOptions {
  readonly target: FetchTarget;
  readonly fetch: FetchFunction;
  readonly unreadMs: number;
  readonly bufferBody: boolean | 'auto';
  readonly maxBufferBytes: number;
  readonly policy: UrlPolicy;
  readonly ambiguousPaths: AmbiguousPathMode;
  readonly logicalOrigin: string;
  readonly key: BalancedFetchOptions['key'];
  readonly context: BalancedFetchOptions['context'];
  readonly afterResponse: BalancedFetchOptions['afterResponse'];
  readonly events: Emitter<BalancedFetchEvents>;
}

/**
 * Creates a fetch-compatible function that picks a backend of `target` for every call, resolves
 * the URL against it, and retries failed attempts on other backends.
 *
 * - URLs: a path (`/users/42`) goes to the picked backend under its base path
 *   (`http://10.0.0.1:8080/v1` + `/users/42`); an absolute URL is accepted only when its origin
 *   is a backend's or one of `serviceOrigins`, and is re-targeted onto the picked backend. Any
 *   other URL is refused with a `RequestRefusedError` before anything is sent.
 * - Leases: each attempt holds a lease of its backend until the response body is consumed,
 *   cancelled or errors (or stays unread for `unreadBodyTimeoutMs`), and releases it exactly
 *   once with the status, latency and failure kind. 5xx and 429 count as failures of the backend;
 *   other 4xx do not.
 * - Retries: idempotent requests are retried after connection failures, resets, attempt timeouts
 *   and 502/503/504; other methods only when the connection was refused (nothing was sent) or
 *   with an `Idempotency-Key` header. Each retry prefers an untried backend, waits a jittered
 *   exponential backoff on the injected clock, and needs the retry budget's consent. When the
 *   last attempt got a response, that response is returned; when none did, the call rejects
 *   with an `AllAttemptsFailedError` listing every attempt.
 * - Aborts: the caller's `signal` aborts at once, attempts and backoff alike; an aborted call is
 *   never retried and rejects with the signal's reason (an `AbortError` `DOMException` unless the
 *   caller gave another reason).
 *
 * @throws {LoadBalancerConfigError} for an invalid option, and when `target` holds a backend whose
 * URL is not `http:` or `https:` (for other protocols use `pool.acquire()`).
 * @throws {BadPortError} when `target` holds a backend on a port the Fetch standard blocks.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({ backends: ['http://10.0.1.10:8080', 'http://10.0.1.11:8080'] });
 * const fetch = createBalancedFetch(pool, { retries: 2, timeoutMs: 2000 });
 * const res = await fetch('/api/users/42');
 * const user = await res.json();
 * ```
 */
export function createBalancedFetch<Init = RequestInit, Res extends FetchResponse = Response>(
  target: FetchTarget,
  options: BalancedFetchOptions<Init, Res> = {},
): BalancedFetch {
  // Whatever types the implementation declares, it is called with a standard init and its
  // response is a Response (the platform's or undici's, the same at run time).
  const opts = options as unknown as BalancedFetchOptions;
  checkTarget('target', target, opts);
  assertFetchable(target.backends());
  const o = checkOptions('BalancedFetchOptions', opts, OPTION_KEYS);
  const clock = o.clock === undefined ? target.clock : checkClock('clock', o.clock);
  const random = o.random === undefined ? target.random : checkRandom('random', o.random);
  const serviceOrigins = parseServiceOrigins(o.serviceOrigins);
  const events = new Emitter<BalancedFetchEvents>();
  const cfg: Config = {
    ...parseCallOptions(o, clock, random),
    target,
    fetch: o.fetch === undefined ? globalFetch() : checkFunction<FetchFunction>('fetch', o.fetch),
    unreadMs: optDuration('unreadBodyTimeoutMs', o.unreadBodyTimeoutMs, 1000, { min: 0 }),
    bufferBody: bufferMode(o.bufferBody),
    maxBufferBytes: optNumber('maxBufferBytes', o.maxBufferBytes, 65_536, {
      min: 0,
      integer: true,
    }),
    ambiguousPaths:
      o.ambiguousPaths === undefined
        ? 'auto'
        : checkOneOf('ambiguousPaths', o.ambiguousPaths, ['refuse', 'allow', 'auto'] as const),
    policy: {
      serviceOrigins: new Set(serviceOrigins),
      logicalOrigin: serviceOrigins[0] ?? PLACEHOLDER_ORIGIN,
    },
    logicalOrigin: serviceOrigins[0] ?? PLACEHOLDER_ORIGIN,
    key: o.key === undefined ? undefined : checkFunction('key', o.key),
    context: o.context === undefined ? undefined : checkFunction('context', o.context),
    afterResponse:
      o.afterResponse === undefined ? undefined : checkFunction('afterResponse', o.afterResponse),
    events,
  };
  const balancedFetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    new FetchCall(cfg).run(input, init);
  const hedging = cfg.hedging;
  Object.defineProperties(balancedFetch, {
    events: { value: events, enumerable: true },
    retryBudget: { value: cfg.budget, enumerable: true },
    explainHedging: { value: () => hedging?.explain(), enumerable: true },
  });
  return balancedFetch as BalancedFetch;
}

// ------------------------------------------------------------------ option checks

function checkTarget(field: string, target: unknown, options: BalancedFetchOptions): void {
  const t = target as Partial<FetchTarget> | null;
  if (
    typeof t !== 'object' ||
    t === null ||
    typeof t.acquire !== 'function' ||
    typeof t.backends !== 'function' ||
    typeof t.get !== 'function' ||
    (t.resolve !== undefined && typeof t.resolve !== 'function')
  ) {
    throw new LoadBalancerConfigError(
      field,
      target,
      'a BackendPool or a FetchTarget with acquire(), get(), backends(), clock and random',
    );
  }
  if (isPlainObject(options)) {
    if (options.clock === undefined) checkClock(`${field}.clock`, t.clock);
    if (options.random === undefined) checkRandom(`${field}.random`, t.random);
  }
}

function globalFetch(): FetchFunction {
  const f = (globalThis as { fetch?: unknown }).fetch;
  if (typeof f !== 'function') {
    throw new LoadBalancerConfigError(
      'fetch',
      f,
      'a fetch function (this runtime has no global fetch; pass options.fetch)',
    );
  }
  return f as FetchFunction;
}

/** A duration option that `false` turns off. */
function bufferMode(value: unknown): boolean | 'auto' {
  if (value === undefined) return 'auto';
  if (value === true || value === false || value === 'auto') return value;
  throw new LoadBalancerConfigError('bufferBody', value, "true, false or 'auto'");
}

// ------------------------------------------------------------------ one call

type BodyKind = 'none' | 'replayable' | 'stream';

/**
 * One call of the balanced fetch: reads the caller's arguments, hands the call loop a transport
 * made of the fetch implementation, and tracks the delivered body until it ends.
 */
class FetchCall implements CallTransport<Response>, BodyListener {
  readonly #cfg: Config;
  #target: FetchTarget;
  #retries: number;
  #timeoutMs: number | 'auto' | undefined;

  // What to send.
  #path = '/';
  #hookUrl = '';
  #method = 'GET';
  #init: RequestInit = EMPTY_INIT;
  #bodyKind: BodyKind = 'none';
  #request: Request | undefined;
  #callerSignal: AbortSignal | undefined;

  #call: BalancedCall<Response> | undefined;
  #delivered: Held<Response> | undefined;

  constructor(cfg: Config) {
    this.#cfg = cfg;
    this.#target = cfg.target;
    this.#retries = cfg.retries;
    this.#timeoutMs = cfg.timeoutMs;
  }

  async run(input: string | URL | Request, init: RequestInit | undefined): Promise<Response> {
    const buffering = this.#prepare(input, init);
    if (buffering !== undefined) await buffering;
    if (this.#target.resolve !== undefined) this.#applyResolution();
    const call = new BalancedCall<Response>(this.#cfg, this.#target, this, {
      retries: this.#retries,
      timeoutMs: this.#timeoutMs,
    });
    this.#call = call;
    const held = await call.run();
    return this.#deliver(held);
  }

  // ---------------------------------------------------------------- the transport

  get method(): string {
    return this.#method;
  }

  get idempotencyKey(): boolean {
    const header = this.#cfg.idempotencyKeyHeader;
    return header !== undefined && headerValue(this.#init.headers, header) !== undefined;
  }

  get replayable(): boolean {
    return this.#bodyKind !== 'stream';
  }

  get signal(): AbortSignal | undefined {
    return this.#callerSignal;
  }

  send(backend: BackendView, cancel: Cancel | undefined): Promise<Response> {
    // A backend added after creation on a port fetch refuses: fail before sending anything.
    const refused = badPortError(backend);
    if (refused !== undefined) return Promise.reject(refused);
    const url = backendUrl(backend, this.#path);
    // Called as a plain function: browsers throw 'Illegal invocation' when the platform fetch
    // is called as a method of another object.
    const send = this.#cfg.fetch;
    if (cancel === undefined) return send(url, this.#init);
    // fetch needs a real signal: one per attempt, aborted with the loop's token (which also cuts
    // the body after delivery).
    const controller = new AbortController();
    if (cancel.aborted) controller.abort(cancel.reason);
    else cancel.on(() => controller.abort(cancel.reason));
    return send(url, overlay(this.#init, { signal: controller.signal }));
  }

  status(response: Response): number {
    return response.status;
  }

  retryAfterMs(response: Response): number | undefined {
    return retryAfterMs(response.status, response.headers, this.#cfg.clock);
  }

  discard(response: Response): void {
    response.body?.cancel().catch(noop);
  }

  classify(error: unknown): FailureKind {
    return classifyError(error);
  }

  onAttempt(backend: BackendView, attempt: number, hedge: boolean): void {
    const events = this.#cfg.events;
    if (!events.quiet && events.listenerCount('attempt') > 0) {
      events.emit('attempt', { request: this.#req(), backend, attempt, hedge });
    }
  }

  onResponse(backend: BackendView, attempt: number, status: number, latencyMs: number): void {
    const events = this.#cfg.events;
    if (!events.quiet && events.listenerCount('response') > 0) {
      events.emit('response', { request: this.#req(), backend, attempt, status, latencyMs });
    }
  }

  onFailure(backend: BackendView | undefined, attempt: number, error: unknown): void {
    const events = this.#cfg.events;
    if (!events.quiet && events.listenerCount('failure') > 0) {
      events.emit('failure', { request: this.#req(), backend, attempt, error });
    }
  }

  onRetry(attempt: number, backend: BackendView, reason: string, delayMs: number): void {
    const events = this.#cfg.events;
    if (!events.quiet && events.listenerCount('retry') > 0) {
      events.emit('retry', { request: this.#req(), attempt, backend, reason, delayMs });
    }
  }

  onHedge(backend: BackendView, slow: BackendView, attempt: number, delayMs: number): void {
    const events = this.#cfg.events;
    if (!events.quiet && events.listenerCount('hedge') > 0) {
      events.emit('hedge', { request: this.#req(), backend, slow, attempt, delayMs });
    }
  }

  /** The pick context of attempt `n`; a promise only when the `context` hook returns one. */
  pickContext(
    n: number,
    tried: readonly string[],
  ): PickContext | undefined | Promise<PickContext | undefined> {
    return attemptContext(this.#cfg, this, 'request', n, tried);
  }

  /** What the `key` and `context` hooks receive. */
  hookRequest(): Request {
    return this.#req();
  }

  // ---------------------------------------------------------------- preparing

  /** Reads the call's arguments; returns a promise only when a body must be buffered first. */
  #prepare(
    input: string | URL | Request,
    init: RequestInit | undefined,
  ): Promise<void> | undefined {
    if (init !== undefined && (typeof init !== 'object' || init === null)) {
      throw new LoadBalancerConfigError('init', init, 'undefined or a RequestInit object');
    }
    if (init?.signal !== undefined && init.signal !== null && !isSignal(init.signal)) {
      throw new LoadBalancerConfigError('init.signal', init.signal, 'an AbortSignal or null');
    }
    if (init?.method !== undefined && typeof init.method !== 'string') {
      throw new LoadBalancerConfigError('init.method', init.method, 'a method name such as "GET"');
    }
    let raw: string;
    let body: unknown;
    let headers: HeadersInit | undefined;
    if (typeof input === 'string') {
      raw = input;
    } else if (isRequest(input)) {
      raw = input.url;
    } else if (input instanceof URL) {
      raw = input.href;
    } else {
      throw new LoadBalancerConfigError('input', input, 'a path, a URL or a Request');
    }
    const cfg = this.#cfg;
    this.#path = resolvePath(raw, this.#target, cfg.policy);
    checkAmbiguousPath(raw, this.#path, cfg.ambiguousPaths, this.#target, cfg.policy);
    this.#hookUrl = hasScheme(raw) ? raw : cfg.logicalOrigin + this.#path;

    if (isRequest(input)) {
      const r = input;
      if (init === undefined) this.#request = r;
      headers = init?.headers ?? r.headers;
      body = init !== undefined && 'body' in init ? init.body : r.body;
      this.#method = (init?.method ?? r.method).toUpperCase();
      this.#callerSignal = init?.signal ?? r.signal;
      this.#init = {
        method: this.#method,
        headers,
        redirect: init?.redirect ?? r.redirect,
        credentials: init?.credentials ?? r.credentials,
        cache: init?.cache ?? r.cache,
        integrity: init?.integrity ?? r.integrity,
        keepalive: init?.keepalive ?? r.keepalive,
        referrerPolicy: init?.referrerPolicy ?? r.referrerPolicy,
      };
    } else if (init !== undefined) {
      body = init.body;
      headers = init.headers;
      this.#method = init.method === undefined ? 'GET' : init.method.toUpperCase();
      this.#callerSignal = init.signal ?? undefined;
      const { signal: _signal, ...rest } = init;
      this.#init = rest;
    }
    // A request no HTTP implementation would send is the caller's mistake: refuse it before
    // any backend is picked, so no backend is blamed for it.
    if (init?.method !== undefined) checkMethod(init.method);
    checkHeaders(headers);
    if (body === undefined || body === null) {
      this.#bodyKind = 'none';
      return undefined;
    } else if (isReplayable(body)) {
      this.#bodyKind = 'replayable';
      if (this.#init.body !== body) this.#init = { ...this.#init, body: body as BodyInit };
    } else if (isStream(body) && this.#shouldBuffer(headers)) {
      return new Response(body).arrayBuffer().then((buffer) => {
        this.#bodyKind = 'replayable';
        this.#init = { ...this.#init, body: new Uint8Array(buffer) };
      });
    } else {
      // A one-shot body (a stream or an async iterable): sent once, never retried.
      this.#bodyKind = 'stream';
      this.#init = { ...this.#init, body: body as BodyInit, duplex: 'half' } as RequestInit;
    }
    return undefined;
  }

  #shouldBuffer(headers: HeadersInit | undefined): boolean {
    const mode = this.#cfg.bufferBody;
    if (mode !== 'auto') return mode;
    const length = headerValue(headers, 'content-length');
    if (length === undefined || !/^\d+$/.test(length.trim())) return false;
    return Number(length) <= this.#cfg.maxBufferBytes;
  }

  /** The request handed to hooks and events, made on first use. */
  #req(): Request {
    if (this.#request !== undefined) return this.#request;
    const init: RequestInit = { method: this.#method };
    const i = this.#init;
    if (i.headers !== undefined) init.headers = i.headers;
    // One-shot bodies stay with the attempt; hooks see the request without them.
    if (this.#bodyKind === 'replayable' && i.body !== undefined) init.body = i.body;
    this.#request = new Request(this.#hookUrl, init);
    return this.#request;
  }

  #applyResolution(): void {
    const request = this.#req();
    const res: FetchResolution | undefined = this.#target.resolve!(request);
    if (res === undefined) return;
    if (typeof res !== 'object' || res === null) {
      throw new LoadBalancerConfigError(
        'target.resolve()',
        res,
        '{ target, request, timeoutMs?, retries? } or undefined',
      );
    }
    checkTarget('target.resolve().target', res.target, {
      clock: this.#cfg.clock,
      random: this.#cfg.random,
    });
    this.#target = res.target;
    if (res.timeoutMs !== undefined) {
      this.#timeoutMs = optionalMs('resolve().timeoutMs', res.timeoutMs);
    }
    if (res.retries !== undefined) {
      this.#retries = checkNumber('resolve().retries', res.retries, {
        min: 0,
        max: MAX_RETRIES,
        integer: true,
      });
    }
    if (!isRequest(res.request)) {
      throw new LoadBalancerConfigError('target.resolve().request', res.request, 'a Request');
    }
    if (res.request !== request) {
      const r = res.request;
      this.#path = resolvePath(r.url, this.#target, this.#cfg.policy);
      checkAmbiguousPath(
        r.url,
        this.#path,
        this.#cfg.ambiguousPaths,
        this.#target,
        this.#cfg.policy,
      );
      this.#method = r.method.toUpperCase();
      const next: RequestInit = { ...this.#init, method: this.#method, headers: r.headers };
      // Hooks see the request without a one-shot body, so a rewritten request without a body
      // keeps the caller's stream; only a body the resolver supplies replaces it.
      if (this.#bodyKind === 'stream' && r.body !== null) next.body = r.body;
      this.#init = next;
      this.#request = r;
    }
  }

  // ---------------------------------------------------------------- delivering

  /** Hears how the delivered response's body ended, once, and releases its lease. */
  bodyEnded(end: BodyEnd, error?: unknown): void {
    this.#call!.finish(this.#delivered!, end, error);
  }

  /** Tracks the body of the response to return, and runs `afterResponse` when there is one. */
  #deliver(held: Held<Response>): Response | Promise<Response> {
    const cfg = this.#cfg;
    this.#delivered = held;
    this.#call!.delivering();
    const tracked = trackBody(held.response, this, cfg.clock, cfg.unreadMs);
    if (cfg.afterResponse === undefined) return tracked.response;
    return this.#afterResponse(tracked);
  }

  async #afterResponse(tracked: TrackedBody): Promise<Response> {
    const cfg = this.#cfg;
    const held = this.#delivered!;
    const response = tracked.response;
    let replaced: unknown;
    try {
      const info: AfterResponseInfo = {
        request: this.#req(),
        response,
        backend: held.lease.backend,
        attempt: held.attempt,
      };
      const value = cfg.afterResponse!(info);
      replaced = isThenable(value) ? await value : value;
      if (replaced !== undefined && replaced !== null && !isResponse(replaced)) {
        throw new LoadBalancerConfigError('afterResponse()', replaced, 'a Response or undefined');
      }
    } catch (error) {
      // The call fails: let go of the body and the lease before rejecting.
      tracked.abandon();
      throw error;
    }
    return (replaced as Response | undefined | null) ?? response;
  }
}

// ------------------------------------------------------------------ helpers

/** Whether `x` can be followed like an `AbortSignal` (a polyfilled one included). */
function isSignal(x: unknown): x is AbortSignal {
  const s = x as Partial<AbortSignal> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.aborted === 'boolean' &&
    typeof s.addEventListener === 'function' &&
    typeof s.removeEventListener === 'function'
  );
}

function noop(): void {}

/** A Request of any implementation (the platform's or undici's). */
function isRequest(value: unknown): value is Request {
  if (typeof Request !== 'undefined' && value instanceof Request) return true;
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Request).url === 'string' &&
    typeof (value as Request).method === 'string' &&
    typeof (value as Request).headers === 'object' &&
    typeof (value as Request).clone === 'function'
  );
}

function isResponse(value: unknown): value is Response {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Response).status === 'number' &&
    typeof (value as Response).headers === 'object'
  );
}

function isStream(body: unknown): body is ReadableStream<Uint8Array> {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as ReadableStream).getReader === 'function'
  );
}

/** Bodies a fetch can send again: the platform re-reads them for every attempt. */
function isReplayable(body: unknown): boolean {
  return (
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    (typeof Blob !== 'undefined' && body instanceof Blob) ||
    (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams) ||
    (typeof FormData !== 'undefined' && body instanceof FormData)
  );
}

/** A header's value from any `HeadersInit`, case-insensitively; undefined when absent. */
function headerValue(headers: HeadersInit | undefined, name: string): string | undefined {
  if (headers === undefined || headers === null) return undefined;
  const lower = name.toLowerCase();
  if (typeof (headers as Headers).get === 'function') {
    return (headers as Headers).get(lower) ?? undefined;
  }
  if (Array.isArray(headers)) {
    for (const pair of headers) if (String(pair[0]).toLowerCase() === lower) return String(pair[1]);
    return undefined;
  }
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === lower) return String(v);
  return undefined;
}
