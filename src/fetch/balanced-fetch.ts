import { EventEmitter } from 'eventemitter3';
import { backgroundTimer, type Clock, sleep, type TimerHandle } from '../clock.js';
import { AllAttemptsFailedError, type AttemptRecord } from '../errors/all-attempts-failed-error.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { LocalFailureError } from '../errors/local-failure-error.js';
import { NoBackendAvailableError } from '../errors/no-backend-error.js';
import { TimeoutError } from '../errors/timeout-error.js';
import type { Random } from '../random.js';
import type { BackendView, FailureKind, Lease, LeaseOutcome, PickContext } from '../types.js';
import {
  checkClock,
  checkDuration,
  checkFunction,
  checkNumber,
  checkOneOf,
  checkOptions,
  checkRandom,
  checkString,
  isPlainObject,
  optDuration,
  optNumber,
} from '../validate.js';
import { type BodyEnd, type BodyListener, type TrackedBody, trackBody } from './body.js';
import { classifyError, localCode, retryAfterMs, statusOk } from './outcome.js';
import { checkHeaders, checkMethod } from './request-check.js';
import { backoffDelay, FinalFailure, type RetryLoop, runWithRetries } from './retry.js';
import { type RetryBudget, toRetryBudget } from './retry-budget.js';
import type {
  AfterResponseInfo,
  BalancedFetch,
  BalancedFetchEvents,
  BalancedFetchOptions,
  ContextInfo,
  FetchFunction,
  FetchResolution,
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
  'retries',
  'retryOn',
  'retryMethods',
  'idempotencyKeyHeader',
  'backoffBaseMs',
  'backoffMaxMs',
  'retryBudget',
  'timeoutMs',
  'deadlineMs',
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

/** RFC 9110 §9.2.2 idempotent methods, as the issue lists them (TRACE is never balanced). */
const DEFAULT_RETRY_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];
const DEFAULT_RETRY_ON = [502, 503, 504];
/**
 * The default time a call has to get response headers, attempts and backoff included: Envoy's
 * default route timeout (`RouteAction.timeout`, 15 s). Without one, a backend that accepts and
 * never answers holds a call until the runtime's own limit (undici: 300 s headers timeout).
 */
const DEFAULT_DEADLINE_MS = 15_000;
const EMPTY_INIT: RequestInit = Object.freeze({}) as RequestInit;

/** Everything a call needs from the fetch's configuration. */
interface Config {
  readonly target: FetchTarget;
  readonly fetch: FetchFunction;
  readonly clock: Clock;
  readonly random: Random;
  readonly retries: number;
  readonly retryOn: ReadonlySet<number>;
  readonly retryMethods: ReadonlySet<string>;
  readonly idempotencyKeyHeader: string | undefined;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly budget: RetryBudget | undefined;
  /** The per-attempt limit; `'auto'` derives it per call from the deadline (see below). */
  readonly timeoutMs: number | 'auto' | undefined;
  readonly deadlineMs: number | undefined;
  /** Whether the deadline also covers the response body (only when set explicitly). */
  readonly deadlineCoversBody: boolean;
  readonly unreadMs: number;
  readonly bufferBody: boolean | 'auto';
  readonly maxBufferBytes: number;
  readonly policy: UrlPolicy;
  readonly ambiguousPaths: AmbiguousPathMode;
  readonly logicalOrigin: string;
  readonly key: BalancedFetchOptions['key'];
  readonly context: BalancedFetchOptions['context'];
  readonly afterResponse: BalancedFetchOptions['afterResponse'];
  readonly events: EventEmitter<BalancedFetchEvents>;
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
 * @example
 * ```ts
 * const pool = new BackendPool({ backends: ['http://10.0.1.10:8080', 'http://10.0.1.11:8080'] });
 * const fetch = createBalancedFetch(pool, { retries: 2, timeoutMs: 2000 });
 * const res = await fetch('/api/users/42');
 * const user = await res.json();
 * ```
 */
export function createBalancedFetch(
  target: FetchTarget,
  options: BalancedFetchOptions = {},
): BalancedFetch {
  checkTarget('target', target, options);
  const o = checkOptions('BalancedFetchOptions', options, OPTION_KEYS);
  const clock = o.clock === undefined ? target.clock : checkClock('clock', o.clock);
  const random =
    o.random === undefined
      ? checkRandom('target.random', target.random)
      : checkRandom('random', o.random);
  const serviceOrigins = parseServiceOrigins(o.serviceOrigins);
  const backoffBaseMs = optDuration('backoffBaseMs', o.backoffBaseMs, 25, { min: 0 });
  const events = new EventEmitter<BalancedFetchEvents>();
  const budget = toRetryBudget(o.retryBudget, clock);
  const cfg: Config = {
    target,
    fetch: o.fetch === undefined ? globalFetch() : checkFunction<FetchFunction>('fetch', o.fetch),
    clock,
    random,
    retries: optNumber('retries', o.retries, 2, { min: 0, max: 100, integer: true }),
    retryOn: new Set(statusList('retryOn', o.retryOn ?? DEFAULT_RETRY_ON)),
    retryMethods: new Set(methodList('retryMethods', o.retryMethods ?? DEFAULT_RETRY_METHODS)),
    idempotencyKeyHeader:
      o.idempotencyKeyHeader === false
        ? undefined
        : checkString('idempotencyKeyHeader', o.idempotencyKeyHeader ?? 'idempotency-key'),
    backoffBaseMs,
    backoffMaxMs: optDuration('backoffMaxMs', o.backoffMaxMs, 10 * 25, { min: 0 }),
    budget,
    timeoutMs: o.timeoutMs === undefined ? 'auto' : optionalMs('timeoutMs', o.timeoutMs),
    deadlineMs:
      o.deadlineMs === undefined ? DEFAULT_DEADLINE_MS : optionalMs('deadlineMs', o.deadlineMs),
    deadlineCoversBody: o.deadlineMs !== undefined,
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
    new BalancedCall(cfg).run(input, init);
  Object.defineProperties(balancedFetch, {
    events: { value: events, enumerable: true },
    retryBudget: { value: budget, enumerable: true },
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
function optionalMs(field: string, value: unknown): number | undefined {
  return value === undefined || value === false
    ? undefined
    : checkDuration(field, value, { min: 0, minExclusive: true });
}

function statusList(field: string, value: unknown): number[] {
  if (!Array.isArray(value))
    throw new LoadBalancerConfigError(field, value, 'an array of HTTP statuses');
  return value.map((s, i) =>
    checkNumber(`${field}[${i}]`, s, { min: 100, max: 599, integer: true }),
  );
}

function methodList(field: string, value: unknown): string[] {
  if (!Array.isArray(value))
    throw new LoadBalancerConfigError(field, value, 'an array of HTTP methods');
  return value.map((m, i) => checkString(`${field}[${i}]`, m).toUpperCase());
}

function bufferMode(value: unknown): boolean | 'auto' {
  if (value === undefined) return 'auto';
  if (value === true || value === false || value === 'auto') return value;
  throw new LoadBalancerConfigError('bufferBody', value, "true, false or 'auto'");
}

// ------------------------------------------------------------------ one call

/** A response whose lease is still held, and everything needed to release it. */
interface Held {
  readonly response: Response;
  readonly lease: Lease;
  readonly attempt: number;
  /** Reading of the fetch's clock when the lease was taken. */
  readonly start: number;
  readonly status: number;
  readonly ok: boolean;
  readonly headersMs: number;
  readonly retryAfterMs: number | undefined;
  /** Removes the link from the call's signal to this attempt's signal. */
  readonly unlink: (() => void) | undefined;
}

/** A failed attempt, as thrown into the retry loop. */
class AttemptFailure extends Error {
  readonly kind: FailureKind;
  readonly error: unknown;
  readonly backend: BackendView;
  /** Set for a retryable status: the response, whose lease is still held. */
  readonly held: Held | undefined;
  constructor(kind: FailureKind, error: unknown, backend: BackendView, held?: Held) {
    super(`attempt failed: ${kind}`);
    this.kind = kind;
    this.error = error;
    this.backend = backend;
    this.held = held;
  }
}

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

/** The reason an abort rejects with when the signal carries none. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

type BodyKind = 'none' | 'replayable' | 'stream';

class BalancedCall implements RetryLoop<Held>, BodyListener {
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

  // Signals and timers.
  #callerSignal: AbortSignal | undefined;
  #callSignal: AbortSignal | undefined;
  #onCallerAbort: (() => void) | undefined;
  #deadlineTimer: TimerHandle | undefined;
  #deadlineFired = false;

  // Progress.
  readonly #tried: string[] = [];
  readonly #attempts: AttemptRecord[] = [];
  #stoppedBecause = '';
  #delivered: Held | undefined;

  constructor(cfg: Config) {
    this.#cfg = cfg;
    this.#target = cfg.target;
    this.#retries = cfg.retries;
    this.#timeoutMs = cfg.timeoutMs;
  }

  async run(input: string | URL | Request, init: RequestInit | undefined): Promise<Response> {
    const cfg = this.#cfg;
    const buffering = this.#prepare(input, init);
    if (buffering !== undefined) await buffering;
    if (this.#target.resolve !== undefined) this.#applyResolution();
    if (this.#callerSignal?.aborted) throw abortReason(this.#callerSignal);
    this.#armDeadline();
    cfg.budget?.deposit();
    let held: Held;
    try {
      held = await runWithRetries<Held>(this);
    } catch (error) {
      if (error instanceof AttemptFailure && error.held !== undefined) {
        held = error.held;
      } else {
        this.#endCall();
        throw this.#finalError(error);
      }
    }
    return this.#deliver(held);
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
        max: 100,
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

  // ---------------------------------------------------------------- signals

  #armDeadline(): void {
    const caller = this.#callerSignal;
    const deadlineMs = this.#cfg.deadlineMs;
    if (deadlineMs === undefined) {
      this.#callSignal = caller;
      return;
    }
    const controller = new AbortController();
    this.#callSignal = controller.signal;
    this.#deadlineTimer = backgroundTimer(
      this.#cfg.clock,
      () => {
        this.#deadlineTimer = undefined;
        this.#deadlineFired = true;
        controller.abort(new TimeoutError('deadline', deadlineMs));
      },
      deadlineMs,
    );
    if (caller !== undefined) {
      this.#onCallerAbort = () => controller.abort(abortReason(caller));
      caller.addEventListener('abort', this.#onCallerAbort, { once: true });
    }
  }

  /** Clears the deadline and unhooks the caller's signal. Safe to call more than once. */
  #endCall(): void {
    this.#clearDeadline();
    if (this.#onCallerAbort !== undefined) {
      this.#callerSignal?.removeEventListener('abort', this.#onCallerAbort);
      this.#onCallerAbort = undefined;
    }
  }

  #clearDeadline(): void {
    if (this.#deadlineTimer !== undefined) {
      this.#cfg.clock.clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
  }

  #callerAborted(): boolean {
    return this.#callerSignal?.aborted === true;
  }

  // ---------------------------------------------------------------- attempts

  /** Retries after the first attempt (for the retry loop). */
  get retries(): number {
    return this.#retries;
  }

  /** Runs attempt `n` (for the retry loop). */
  attempt(n: number): Promise<Held> {
    return this.#attempt(n);
  }

  /** Decides on a retry and waits its backoff (for the retry loop). */
  beforeRetry(error: unknown, n: number): Promise<boolean> {
    return this.#beforeRetry(error, n);
  }

  async #attempt(n: number): Promise<Held> {
    const cfg = this.#cfg;
    const callSignal = this.#callSignal;
    if (callSignal?.aborted) throw new FinalFailure(callSignal.reason);
    let ctx: PickContext | undefined;
    try {
      const pending = this.#pickContext(n);
      ctx = isThenable(pending) ? await pending : pending;
    } catch (error) {
      throw new FinalFailure(error);
    }
    if (callSignal?.aborted) throw new FinalFailure(callSignal.reason);
    let lease: Lease;
    try {
      lease = this.#target.acquire(ctx);
    } catch (error) {
      this.#attempts.push({ backend: '(none)', outcome: 'no-backend', error });
      if (cfg.events.listenerCount('failure') > 0) {
        cfg.events.emit('failure', { request: this.#req(), backend: undefined, attempt: n, error });
      }
      throw new FinalFailure(error);
    }
    // Latencies are measured on the fetch's own clock, which may differ from the target's.
    const start = cfg.clock.now();
    const backend = lease.backend;
    this.#tried.push(backend.id);
    if (cfg.events.listenerCount('attempt') > 0) {
      try {
        cfg.events.emit('attempt', { request: this.#req(), backend, attempt: n });
      } catch (error) {
        // Nothing was sent: release without blaming the backend, and fail the call.
        lease.release({ ok: false, failure: 'aborted', error, latencyMs: 0 });
        throw new FinalFailure(error);
      }
    }

    // This attempt's signal: the call's, plus the attempt timeout when there is one.
    let signal = callSignal;
    let controller: AbortController | undefined;
    let timer: TimerHandle | undefined;
    let unlink: (() => void) | undefined;
    const timeoutMs = this.#attemptTimeoutMs();
    if (timeoutMs !== undefined) {
      const c = new AbortController();
      controller = c;
      signal = c.signal;
      timer = backgroundTimer(
        cfg.clock,
        () => {
          timer = undefined;
          c.abort(new TimeoutError('attempt', timeoutMs, { backend: backend.id }));
        },
        timeoutMs,
      );
      if (callSignal !== undefined) {
        const forward = (): void => c.abort(callSignal.reason);
        callSignal.addEventListener('abort', forward, { once: true });
        unlink = () => callSignal.removeEventListener('abort', forward);
      }
    }
    const init = signal === undefined ? this.#init : { ...this.#init, signal };

    let response: Response;
    try {
      const pending = cfg.fetch(backendUrl(backend, this.#path), init);
      response = signal === undefined ? await pending : await raceAbort(pending, signal);
    } catch (thrown) {
      if (timer !== undefined) cfg.clock.clearTimeout(timer);
      unlink?.();
      return this.#attemptFailed(n, lease, thrown, controller, start);
    }
    if (timer !== undefined) {
      cfg.clock.clearTimeout(timer);
      timer = undefined;
    }

    const headersMs = cfg.clock.now() - start;
    const status = response.status;
    const held: Held = {
      response,
      lease,
      attempt: n,
      start,
      status,
      ok: statusOk(status),
      headersMs,
      retryAfterMs: retryAfterMs(status, response.headers, cfg.clock),
      unlink,
    };
    if (cfg.events.listenerCount('response') > 0) {
      try {
        cfg.events.emit('response', {
          request: this.#req(),
          backend,
          attempt: n,
          status,
          latencyMs: headersMs,
        });
      } catch (error) {
        this.#discard(held);
        throw new FinalFailure(error);
      }
    }
    if (cfg.retryOn.has(status)) {
      this.#attempts.push({ backend: backend.id, outcome: 'http', status });
      throw new AttemptFailure('http', undefined, backend, held);
    }
    return held;
  }

  /**
   * This call's per-attempt limit. Unless set, a request that may be retried after a timeout
   * gives each attempt an equal share of the deadline (`deadlineMs / (retries + 1)`, 5 s with the
   * defaults), so a hanging backend leaves time to try others; a request that may not be
   * retried after a timeout has only the deadline, so a slow but working backend can finish.
   */
  #attemptTimeoutMs(): number | undefined {
    const t = this.#timeoutMs;
    if (t !== 'auto') return t;
    const deadline = this.#cfg.deadlineMs;
    if (deadline === undefined || this.#retries === 0) return undefined;
    if (this.#whyNotRetry('timeout') !== undefined) return undefined;
    return deadline / (this.#retries + 1);
  }

  /** Releases the lease of an attempt that got no response, and says what happens next. */
  #attemptFailed(
    n: number,
    lease: Lease,
    thrown: unknown,
    controller: AbortController | undefined,
    start: number,
  ): never {
    const cfg = this.#cfg;
    let kind: FailureKind;
    let error = thrown;
    let final = false;
    if (this.#callerAborted()) {
      kind = 'aborted';
      error = abortReason(this.#callerSignal!);
      final = true;
    } else if (this.#deadlineFired) {
      kind = 'timeout';
      error = this.#callSignal?.reason;
      final = true;
    } else if (controller?.signal.aborted) {
      kind = 'timeout';
      error = controller.signal.reason;
    } else {
      kind = classifyError(thrown);
      // Failed in this process: another backend would fail the same way.
      if (kind === 'local') final = true;
    }
    lease.release({ ok: false, failure: kind, error, latencyMs: cfg.clock.now() - start });
    const backend = lease.backend;
    this.#attempts.push({ backend: backend.id, outcome: kind, error });
    if (cfg.events.listenerCount('failure') > 0) {
      cfg.events.emit('failure', { request: this.#req(), backend, attempt: n, error });
    }
    const failure = new AttemptFailure(kind, error, backend);
    throw final ? new FinalFailure(failure) : failure;
  }

  /** The pick context of attempt `n`; a promise only when the `context` hook returns one. */
  #pickContext(n: number): PickContext | undefined | Promise<PickContext | undefined> {
    const cfg = this.#cfg;
    const tried = this.#tried;
    if (cfg.key === undefined && cfg.context === undefined) {
      return tried.length === 0 ? undefined : { exclude: tried };
    }
    const request = this.#req();
    const ctx: PickContext = {};
    if (cfg.key !== undefined) {
      const key = cfg.key(request);
      if (key !== undefined) ctx.key = checkString('key(request)', key, { nonEmpty: false });
    }
    if (cfg.context === undefined) return this.#withTried(ctx);
    const value = cfg.context(request, { attempt: n, tried: tried.slice() } satisfies ContextInfo);
    return isThenable(value)
      ? value.then((extra) => this.#withTried(merge(ctx, extra)))
      : this.#withTried(merge(ctx, value));
  }

  /** Adds the backends tried in this call to `ctx.exclude`. */
  #withTried(ctx: PickContext): PickContext {
    const tried = this.#tried;
    if (tried.length > 0) {
      const own = ctx.exclude;
      ctx.exclude = own === undefined ? tried : [...new Set([...own, ...tried])];
      // A sticky pin to a backend that already failed in this call would send the retry back to
      // it; retries go elsewhere.
      if (ctx.affinity !== undefined && tried.includes(ctx.affinity.id)) delete ctx.affinity;
    }
    return ctx;
  }

  // ---------------------------------------------------------------- retrying

  async #beforeRetry(error: unknown, n: number): Promise<boolean> {
    if (!(error instanceof AttemptFailure)) return false;
    const cfg = this.#cfg;
    const why = this.#whyNotRetry(error.kind);
    if (why !== undefined) {
      this.#stoppedBecause = why;
      return false;
    }
    if (cfg.budget !== undefined && !cfg.budget.tryWithdraw()) {
      this.#stoppedBecause =
        'the retry budget is spent (retries may add only a share of the call rate)';
      return false;
    }
    if (error.held !== undefined) this.#discard(error.held);
    const delayMs = backoffDelay(n, cfg.backoffBaseMs, cfg.backoffMaxMs, cfg.random);
    if (cfg.events.listenerCount('retry') > 0) {
      cfg.events.emit('retry', {
        request: this.#req(),
        attempt: n,
        backend: error.backend,
        reason: error.held === undefined ? error.kind : `status ${error.held.status}`,
        delayMs,
      });
    }
    if (delayMs > 0) await sleep(cfg.clock, delayMs, this.#callSignal);
    return true;
  }

  /** Why a failure must not be retried, or undefined when it may be. */
  #whyNotRetry(kind: FailureKind): string | undefined {
    if (kind !== 'connect' && kind !== 'reset' && kind !== 'timeout' && kind !== 'http') {
      return `a ${kind} failure is not retried`;
    }
    if (this.#bodyKind === 'stream') {
      return 'the request body is a stream that cannot be replayed (set bufferBody: true to retry it)';
    }
    // A refused connection sent nothing: any method may go to another backend.
    if (kind === 'connect') return undefined;
    if (this.#cfg.retryMethods.has(this.#method)) return undefined;
    const header = this.#cfg.idempotencyKeyHeader;
    if (header !== undefined && headerValue(this.#init.headers, header) !== undefined) {
      return undefined;
    }
    return `${this.#method} is not idempotent and the request may have reached the server (send an Idempotency-Key header to allow retries)`;
  }

  /** Drops a response that is being retried: cancels its body and releases its lease. */
  #discard(held: Held): void {
    held.response.body?.cancel().catch(() => undefined);
    held.unlink?.();
    held.lease.release(this.#outcome(held, held.headersMs));
  }

  #outcome(held: Held, latencyMs: number): LeaseOutcome {
    const outcome: LeaseOutcome = { ok: held.ok, status: held.status, latencyMs };
    if (!held.ok) outcome.failure = 'http';
    if (held.retryAfterMs !== undefined) outcome.retryAfterMs = held.retryAfterMs;
    return outcome;
  }

  #finalError(error: unknown): unknown {
    if (this.#callerAborted()) return abortReason(this.#callerSignal!);
    if (this.#deadlineFired) {
      return new TimeoutError('deadline', this.#cfg.deadlineMs!, {
        attempts: this.#attempts,
        cause: this.#lastError(error),
      });
    }
    if (error instanceof AttemptFailure && error.kind === 'local') {
      const code = localCode(error.error);
      return new LocalFailureError(
        error.backend.id,
        code ?? errorMessage(error.error),
        this.#attempts,
        {
          cause: error.error,
          localCode: code,
        },
      );
    }
    if (error instanceof AttemptFailure) {
      const stopped =
        this.#stoppedBecause ||
        this.#whyNotRetry(error.kind) ||
        (this.#retries === 0
          ? 'retries are off (retries: 0)'
          : `all ${this.#retries} retries were used`);
      return new AllAttemptsFailedError(this.#attempts, stopped, { cause: error.error });
    }
    if (error instanceof NoBackendAvailableError && this.#attempts.length > 1) {
      return new AllAttemptsFailedError(this.#attempts, 'no backend was available for a retry', {
        cause: error,
      });
    }
    // Hook errors, and a pool with nothing to pick on the first attempt, reach the caller as is.
    return error;
  }

  #lastError(error: unknown): unknown {
    return error instanceof AttemptFailure ? error.error : error;
  }

  // ---------------------------------------------------------------- delivering

  /** Hears how the delivered response's body ended, once, and releases its lease. */
  bodyEnded(end: BodyEnd, error?: unknown): void {
    const held = this.#delivered!;
    const clock = this.#cfg.clock;
    held.unlink?.();
    this.#endCall();
    if (end === 'end') {
      held.lease.release(this.#outcome(held, clock.now() - held.start));
    } else if (end === 'error') {
      const failure: FailureKind = this.#callerAborted()
        ? 'aborted'
        : this.#deadlineFired
          ? 'timeout'
          : errorKindInBody(error);
      held.lease.release({
        ok: false,
        status: held.status,
        failure,
        error,
        latencyMs: clock.now() - held.start,
      });
    } else {
      // Cancelled by the caller, or never read: the backend did its part; report the headers.
      held.lease.release(this.#outcome(held, held.headersMs));
    }
  }

  /** Tracks the body of the response to return, and runs `afterResponse` when there is one. */
  #deliver(held: Held): Response | Promise<Response> {
    const cfg = this.#cfg;
    this.#delivered = held;
    // The default deadline bounds the time to a response; only an explicit `deadlineMs` also
    // bounds the body, so a long download or stream is not cut by a limit nobody asked for.
    if (!cfg.deadlineCoversBody) this.#clearDeadline();
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

/** `ctx` with what the `context` hook returned merged in. */
function merge(ctx: PickContext, extra: PickContext | undefined): PickContext {
  if (extra === undefined) return ctx;
  if (typeof extra !== 'object' || extra === null) {
    throw new LoadBalancerConfigError('context(request)', extra, 'a PickContext or undefined');
  }
  return Object.assign(ctx, extra);
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errorKindInBody(error: unknown): FailureKind {
  const kind = classifyError(error);
  return kind === 'other' || kind === 'local' ? 'reset' : kind;
}

/**
 * Rejects as soon as `signal` aborts, even when the fetch implementation ignores the signal; a
 * response that arrives later has its body cancelled so its connection is freed.
 */
function raceAbort(pending: Promise<Response>, signal: AbortSignal): Promise<Response> {
  if (signal.aborted) {
    pending.then((late) => late.body?.cancel().catch(() => undefined), noop);
    return Promise.reject(signal.reason);
  }
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      reject(signal.reason);
      pending.then((late) => late.body?.cancel().catch(() => undefined), noop);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        resolve(response);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (settled) return;
        settled = true;
        reject(error);
      },
    );
  });
}

function noop(): void {}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

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
