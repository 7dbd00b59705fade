import type { EventEmitter } from 'eventemitter3';
import type { HedgeExplanation } from '../call/hedging.js';
import type { CallOptions } from '../call/options.js';
import type { ContextInfo } from '../call/pick-context.js';
import type { RetryBudget } from '../call/retry-budget.js';
import type { Clock } from '../clock.js';
import type { Random } from '../random.js';
import type { BackendView, Lease, PickContext } from '../types.js';

export type { ContextInfo };

/**
 * What a balanced fetch balances over: a `BackendPool`, or anything else with the same public
 * surface (a Layer 7 router that picks a pool per request, say). The fetch calls `acquire` for
 * every attempt and keeps no backend between calls.
 */
export interface FetchTarget {
  /** Picks a backend for one attempt (see `BackendPool.acquire`). */
  acquire(ctx?: PickContext): Lease;
  /** The clock the fetch uses unless its own `clock` option is given. */
  readonly clock: Clock;
  /** The random source the fetch uses unless its own `random` option is given. */
  readonly random: Random;
  /** The backend with this id, if any. */
  get(id: string): BackendView | undefined;
  /** Every backend; an absolute URL is accepted when its origin is one of theirs. */
  backends(): readonly BackendView[];
  /**
   * Optional routing hook, called once per call before anything else: returns the target to
   * balance this request over, the request to send (a rewritten URL or headers), and per-route
   * overrides; `undefined` keeps this target and the request as they are.
   */
  resolve?(request: Request): FetchResolution | undefined;
}

/** What {@link FetchTarget.resolve} returns. */
export interface FetchResolution {
  /** The target to balance over. */
  target: FetchTarget;
  /**
   * The request to send: its URL (under the same URL rule), method and headers are used. Its body
   * is used only when the caller's body cannot be replayed; otherwise the fetch sends its own
   * copy of the caller's body, so it can retry.
   */
  request: Request;
  /** Overrides the fetch's `timeoutMs` for this request. */
  timeoutMs?: number;
  /** Overrides the fetch's `retries` for this request. */
  retries?: number;
}

/**
 * The fetch implementation a balanced fetch calls: the platform `fetch`, undici's `fetch`, or a
 * test double. It is always called with an absolute URL string and an init object.
 *
 * `Init` and `Res` are the init and response types the implementation declares: the platform's
 * `RequestInit` and `Response` by default, undici's own when you pass undici's `fetch`, whose
 * types are a separate copy of the Fetch API's that TypeScript does not take for the platform's
 * (another `FormData`, a `node:stream/web` body). Every implementation receives a standard init
 * object, and the response it resolves to is handed to the caller as the call's `Response`.
 *
 * @example
 * ```ts
 * import { Agent, fetch as undiciFetch, type RequestInit as UndiciInit } from 'undici';
 *
 * const agent = new Agent({ connections: 32 });
 * createBalancedFetch(pool, { fetch: undiciFetch }); // as it is
 * createBalancedFetch(pool, {
 *   fetch: (url, init: UndiciInit) => undiciFetch(url, { ...init, dispatcher: agent }),
 * });
 * ```
 */
export type FetchFunction<Init = RequestInit, Res extends FetchResponse = Response> = (
  input: string,
  init: Init,
) => Promise<Res>;

/**
 * What a fetch implementation must resolve to, at the least: a `Response`, the platform's or
 * undici's. undici's `Response` type is its own copy, which TypeScript does not take for the
 * platform's (its `body` is a `node:stream/web` stream), so the constraint names only members
 * both have.
 */
export interface FetchResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  readonly body: object | null;
}

/** What the `afterResponse` hook receives. */
export interface AfterResponseInfo {
  readonly request: Request;
  /** The response about to be returned (its body still tracked by the lease). */
  readonly response: Response;
  readonly backend: BackendView;
  readonly attempt: number;
}

/** Event payloads of {@link BalancedFetch.events}. Emitted only while someone listens. */
export interface BalancedFetchEvents {
  /** An attempt is about to be sent to `backend`. */
  attempt: (e: { request: Request; backend: BackendView; attempt: number; hedge: boolean }) => void;
  /**
   * A hedge goes to `backend` because the attempt on `slow` had not answered within `delayMs`.
   */
  hedge: (e: {
    request: Request;
    backend: BackendView;
    slow: BackendView;
    attempt: number;
    delayMs: number;
  }) => void;
  /**
   * Attempt `attempt` on `backend` failed and a retry follows after `delayMs` (`reason` is the
   * failed attempt's outcome, e.g. `connect`, `timeout`, `status 503`).
   */
  retry: (e: {
    request: Request;
    attempt: number;
    backend: BackendView;
    reason: string;
    delayMs: number;
  }) => void;
  /** Response headers arrived for an attempt (`latencyMs` is the time to headers). */
  response: (e: {
    request: Request;
    backend: BackendView;
    attempt: number;
    status: number;
    latencyMs: number;
  }) => void;
  /**
   * An attempt failed without a response (`backend` is undefined when no backend could be
   * picked).
   */
  failure: (e: {
    request: Request;
    backend: BackendView | undefined;
    attempt: number;
    error: unknown;
  }) => void;
}

/**
 * A fetch-compatible function that picks a backend per call (see `createBalancedFetch`).
 */
export interface BalancedFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** Attempt, retry, response and failure events (an eventemitter3 emitter). */
  readonly events: EventEmitter<BalancedFetchEvents>;
  /** The retry budget in use, or `undefined` when budgeting is off. */
  readonly retryBudget: RetryBudget | undefined;
  /**
   * Says how a call starting now would be hedged (the delay and how it was chosen, the hedge
   * budget), or `undefined` when hedging is off.
   */
  explainHedging(): HedgeExplanation | undefined;
}

/**
 * Options of `createBalancedFetch`.
 *
 * The `Request` handed to hooks and events is the caller's own when the call was made with a
 * `Request`; otherwise it is built on first use from the URL (a path gets the first of
 * `serviceOrigins` as origin, else `http://loadwise.invalid`), the method, the headers, and the
 * body when it is replayable. Nothing is built when no hook or listener needs it.
 */
export interface BalancedFetchOptions<Init = RequestInit, Res extends FetchResponse = Response>
  extends CallOptions {
  /**
   * The fetch implementation. undici's `fetch` works too, as it is or with a dispatcher bound
   * (see {@link FetchFunction}).
   * @default globalThis.fetch
   */
  fetch?: FetchFunction<Init, Res>;
  /**
   * The lease of a call is held until its response body is consumed, cancelled or errors, so
   * in-flight counts and latencies include the body. A body nobody starts reading within this
   * many ms of the headers gets its lease released then (with the time to headers as latency),
   * so a caller that ignores bodies cannot leak in-flight counts. The body stays readable.
   * @default 1000
   */
  unreadBodyTimeoutMs?: number;
  /**
   * Whether to buffer a one-shot request body (a `ReadableStream`, or the body of a `Request`
   * object) so the call can be retried. `'auto'` buffers a `Request` body only when its
   * `Content-Length` is at most `maxBufferBytes`; `false` never buffers (such calls are not
   * retried); `true` always buffers. Strings, buffers, `Blob`, `FormData` and `URLSearchParams`
   * bodies are replayable and never need it.
   * @default 'auto'
   */
  bufferBody?: boolean | 'auto';
  /**
   * The largest `Content-Length` buffered by `bufferBody: 'auto'`.
   * @default 65536
   */
  maxBufferBytes?: number;
  /**
   * Logical origins of the service, e.g. `['http://users.internal']`. An absolute URL with one of
   * these origins (or a backend's origin) is re-targeted onto the picked backend; any other
   * origin is refused. The first one is also the origin of the `Request` handed to hooks and
   * events for a call made with a relative path.
   * @default []
   */
  serviceOrigins?: readonly string[];
  /**
   * What to do with a path whose encoding servers decode differently: an encoded slash,
   * backslash or NUL (`..%2f`, `%5c..`, `%00`), a double encoding (`%252e`, `%252f`), path
   * parameters on a dot segment (`..;/`, which Tomcat and Spring read as `../`), or bytes that
   * are not valid UTF-8 (overlong forms such as `..%c0%af`, which old IIS read as `../`).
   * Once decoded by such a server, the path may climb above the backend's base path.
   * `'refuse'` rejects such a call with a `RequestRefusedError` (reason `ambiguous-path`)
   * before anything is sent;
   * `'allow'` forwards it unchanged; `'auto'` refuses it when a backend of the pool has a base
   * path (`http://10.0.0.1/api`), the case where there is something above the path to reach.
   * @default 'auto'
   */
  ambiguousPaths?: 'refuse' | 'allow' | 'auto';
  /**
   * The pick key for hash-based algorithms and sticky sessions (`ctx.key`).
   * @default undefined
   * @example
   * ```ts
   * key: (request) => request.headers.get('x-user-id') ?? undefined
   * ```
   */
  key?: (request: Request) => string | undefined;
  /**
   * Derives the pick context of each attempt (affinity key, sticky pin); may be async. The fetch
   * merges the ids of backends already tried into `exclude`.
   * @default undefined
   */
  context?: (
    request: Request,
    info: ContextInfo,
  ) => PickContext | undefined | Promise<PickContext | undefined>;
  /**
   * Called once with the response about to be returned; may return a replacement (to add a
   * header, say; build it on `response.body` to keep the body tracked). An error thrown here
   * rejects the call, and the lease is still released.
   * @default undefined
   */
  afterResponse?: (
    info: AfterResponseInfo,
    // biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing must type-check
  ) => Response | undefined | void | Promise<Response | undefined | void>;
  /** Time source for timeouts, backoff, latency and the budget. @default the target's clock */
  clock?: Clock;
  /** Random source for the backoff jitter. @default the target's random */
  random?: Random;
}
