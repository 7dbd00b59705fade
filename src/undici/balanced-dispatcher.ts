import type { EventEmitter } from 'eventemitter3';
import { Dispatcher, errors, Pool } from 'undici';
import {
  type AttemptListener,
  BalancedCall,
  type CallSink,
  type CallTransport,
  type Held,
} from '../call/call.js';
import type { Cancel } from '../call/cancel.js';
import type { HedgeExplanation } from '../call/hedging.js';
import {
  CALL_OPTION_KEYS,
  type CallOptions,
  type ParsedCallOptions,
  parseCallOptions,
} from '../call/options.js';
import { attemptContext, type ContextInfo } from '../call/pick-context.js';
import type { Clock } from '../clock.js';
import { Emitter } from '../emitter.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { classifyError, retryAfterMs } from '../fetch/outcome.js';
import { checkedMethod, checkHeaders } from '../fetch/request-check.js';
import {
  type AmbiguousPathMode,
  checkAmbiguousPath,
  PLACEHOLDER_ORIGIN,
  parseServiceOrigins,
  resolvePath,
  type UrlPolicy,
} from '../fetch/url.js';
import { overlay } from '../overlay.js';
import { BackendPool } from '../pool/backend-pool.js';
import { normalizeBackend } from '../pool/normalize.js';
import type { Random } from '../random.js';
import type { BackendView, FailureKind, PickContext } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkOneOf,
  checkOptions,
  checkRandom,
  isPlainObject,
} from '../validate.js';
import { Attempt, type AttemptEnd, type DeliveryOwner } from './attempt.js';
import { type Downstream, toDownstream } from './handlers.js';

/**
 * Events of a {@link BalancedDispatcher} (`dispatcher.events`, an eventemitter3 emitter; the
 * dispatcher itself emits undici's connection events). The same as the balanced fetch's, with the
 * request's dispatch options in place of a `Request`. Emitted only while someone listens.
 */
export interface BalancedDispatcherEvents {
  /** An attempt is about to be sent to `backend`. */
  attempt: (e: {
    options: Dispatcher.DispatchOptions;
    backend: BackendView;
    attempt: number;
    hedge: boolean;
  }) => void;
  /** Attempt `attempt` on `backend` failed and a retry follows after `delayMs`. */
  retry: (e: {
    options: Dispatcher.DispatchOptions;
    attempt: number;
    backend: BackendView;
    reason: string;
    delayMs: number;
  }) => void;
  /** Response headers arrived for an attempt (`latencyMs` is the time to headers). */
  response: (e: {
    options: Dispatcher.DispatchOptions;
    backend: BackendView;
    attempt: number;
    status: number;
    latencyMs: number;
  }) => void;
  /** An attempt failed without a response (`backend` undefined when none could be picked). */
  failure: (e: {
    options: Dispatcher.DispatchOptions;
    backend: BackendView | undefined;
    attempt: number;
    error: unknown;
  }) => void;
  /** A hedge goes to `backend` because the attempt on `slow` had not answered within `delayMs`. */
  hedge: (e: {
    options: Dispatcher.DispatchOptions;
    backend: BackendView;
    slow: BackendView;
    attempt: number;
    delayMs: number;
  }) => void;
}

/** What the `context` hook of a {@link BalancedDispatcher} receives besides the options. */
export type DispatchContextInfo = ContextInfo;

/** Options of a {@link BalancedDispatcher}. */
export interface BalancedDispatcherOptions extends CallOptions {
  /**
   * Options of the undici `Pool` each backend gets: `connections`, `pipelining`,
   * `keepAliveTimeout`, `headersTimeout`, `bodyTimeout`, TLS `connect` options and the rest
   * (undici validates them).
   * @default {} (undici's defaults)
   */
  poolOptions?: Pool.Options;
  /**
   * Logical origins of the service, e.g. `['http://users.internal']`: a request whose origin is
   * one of these (or a backend's) goes to the picked backend; any other origin is refused with a
   * `RequestRefusedError`. A request without an origin (`dispatcher.request({ path })`) is a path.
   * @default []
   */
  serviceOrigins?: readonly string[];
  /**
   * What to do with paths whose encoding servers decode differently (see the balanced fetch's
   * option of the same name).
   * @default 'auto'
   */
  ambiguousPaths?: AmbiguousPathMode;
  /**
   * The pick key for hash-based algorithms and sticky sessions (`ctx.key`).
   * @default undefined
   */
  key?: (options: Dispatcher.DispatchOptions) => string | undefined;
  /**
   * Derives the pick context of each attempt; may be async. The ids of backends already tried
   * are merged into `exclude`.
   * @default undefined
   */
  context?: (
    options: Dispatcher.DispatchOptions,
    info: DispatchContextInfo,
  ) => PickContext | undefined | Promise<PickContext | undefined>;
  /** Time source for timeouts, backoff, latency and budgets. @default the pool's clock */
  clock?: Clock;
  /** Random source for the backoff jitter. @default the pool's random */
  random?: Random;
}

/**
 * Options of undici's `Pool` and `Client` (undici 7's types/pool.d.ts and types/client.d.ts):
 * `BalancedPool` took them beside its own, so a move from it passes them at the top level.
 */
const UNDICI_POOL_KEYS = [
  'connections',
  'clientTtl',
  'interceptors',
  'maxHeaderSize',
  'headersTimeout',
  'connectTimeout',
  'bodyTimeout',
  'keepAliveTimeout',
  'keepAliveMaxTimeout',
  'keepAliveTimeoutThreshold',
  'socketPath',
  'pipelining',
  'strictContentLength',
  'maxCachedSessions',
  'connect',
  'maxRequestsPerClient',
  'localAddress',
  'maxResponseSize',
  'autoSelectFamily',
  'autoSelectFamilyAttemptTimeout',
  'allowH2',
  'maxConcurrentStreams',
] as const;

/** What to say about an option of `BalancedPool` or undici's `Pool` given at the top level. */
const OPTION_HINTS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(
    UNDICI_POOL_KEYS.map((k) => [
      k,
      `undici Pool options go under \`poolOptions\`: { poolOptions: { ${k}: ... } }.`,
    ]),
  ),
  maxWeightPerServer:
    "BalancedPool's weights and error penalties have no equivalent: the pool's algorithm and an OutlierDetector steer calls away from failing backends (docs/undici-dispatcher.md).",
  errorPenalty:
    "BalancedPool's weights and error penalties have no equivalent: the pool's algorithm and an OutlierDetector steer calls away from failing backends (docs/undici-dispatcher.md).",
  factory:
    'A custom factory is not supported: each backend gets an undici Pool, configured with `poolOptions`.',
};

const OPTION_KEYS = [
  ...CALL_OPTION_KEYS,
  'poolOptions',
  'serviceOrigins',
  'ambiguousPaths',
  'key',
  'context',
  'clock',
  'random',
] as const;

/** Everything a dispatched call needs from its dispatcher. */
interface Config extends ParsedCallOptions {
  readonly policy: UrlPolicy;
  readonly ambiguousPaths: AmbiguousPathMode;
  readonly key: BalancedDispatcherOptions['key'];
  readonly context: BalancedDispatcherOptions['context'];
}

/** A backend's undici pool, and where the backend's base path starts. */
interface Upstream {
  readonly pool: Pool;
  readonly origin: string;
  readonly basePath: string;
  /**
   * Whether the pool's last `dispatch()` answered `false` (every connection busy: it queues)
   * and it has not emitted `'drain'` since.
   */
  busy: boolean;
}

/**
 * An undici `Dispatcher` that balances every request over a {@link BackendPool}: a drop-in for
 * undici's `BalancedPool` that brings loadwise's algorithms, health, outlier detection, retry
 * budget, hedging, slow start, draining and deadlines.
 *
 * Each backend gets an undici `Pool` (created on first use, with `poolOptions`); each request
 * picks a backend, goes out on its pool, and releases its lease with the real outcome when the
 * response body ends. Retries, timeouts, hedges and the URL rule are the balanced fetch's own
 * (one implementation serves both).
 *
 * @example
 * ```ts
 * import { request } from 'undici';
 * import { BackendPool, PeakEwma } from 'loadwise';
 * import { BalancedDispatcher } from 'loadwise/undici';
 *
 * const pool = new BackendPool({
 *   backends: ['http://10.0.1.10:8080', 'http://10.0.1.11:8080'],
 *   algorithm: new PeakEwma(),
 * });
 * const dispatcher = new BalancedDispatcher(pool, { poolOptions: { connections: 16 } });
 * const { statusCode, body } = await request('http://users.internal/api/42', {
 *   dispatcher,
 * }).catch(...) // or: dispatcher.request({ path: '/api/42', method: 'GET' })
 * ```
 */
export class BalancedDispatcher extends Dispatcher {
  /** The pool the dispatcher balances over. */
  readonly pool: BackendPool;
  /** Attempt, retry, response, failure and hedge events. */
  readonly events: EventEmitter<BalancedDispatcherEvents> = new Emitter<BalancedDispatcherEvents>();

  readonly #cfg: Config;
  readonly #poolOptions: Pool.Options;
  /** Whether the pool was made from upstream URLs (and is closed with the dispatcher). */
  readonly #ownsPool: boolean;
  readonly #upstreams = new Map<string, Upstream>();
  /**
   * The calls in flight, as a list threaded through the calls themselves. A `Set` did the same
   * job and nearly doubled the CPU time per call in bench/dispatcher.ts (16 in flight: 64 µs vs
   * 34 µs per call): under steady add/delete churn every call's objects, undici's included,
   * survived young-generation collections and were promoted (a heap profile of objects collected
   * by major GC: 5 KB per call, vs 0.15 KB with this list). The likely cause: V8 rebuilds a
   * churning hash table, and a dead old table in the old generation still points to recent
   * calls until the next major collection.
   */
  readonly #active = new CallList();
  #idle: (() => void)[] = [];
  /** Whether `dispatch()` answered `false` and `'drain'` has not been emitted since. */
  #needDrain = false;
  #closed = false;
  #destroyed = false;
  readonly #unsubscribe: () => void;

  /**
   * @param target A `BackendPool`, or upstream URLs as `BalancedPool` takes them (a pool with the
   * default algorithm is then made, and closed with the dispatcher).
   */
  constructor(
    target: BackendPool | string | URL | readonly (string | URL)[],
    options: BalancedDispatcherOptions = {},
  ) {
    super();
    const o = checkOptions('BalancedDispatcherOptions', options, OPTION_KEYS, OPTION_HINTS);
    if (target instanceof BackendPool) {
      this.pool = target;
      this.#ownsPool = false;
    } else {
      const list = Array.isArray(target) ? target : [target];
      this.pool = new BackendPool({ backends: list.map((u: string | URL) => String(u)) });
      this.#ownsPool = true;
    }
    const clock = o.clock === undefined ? this.pool.clock : checkClock('clock', o.clock);
    const random = o.random === undefined ? this.pool.random : checkRandom('random', o.random);
    const serviceOrigins = parseServiceOrigins(o.serviceOrigins);
    if (o.poolOptions !== undefined && !isPlainObject(o.poolOptions)) {
      throw new LoadBalancerConfigError('poolOptions', o.poolOptions, 'undici Pool options');
    }
    this.#poolOptions = { ...(o.poolOptions ?? {}) };
    this.#cfg = {
      ...parseCallOptions(o, clock, random, true),
      policy: {
        serviceOrigins: new Set(serviceOrigins),
        logicalOrigin: serviceOrigins[0] ?? PLACEHOLDER_ORIGIN,
      },
      ambiguousPaths:
        o.ambiguousPaths === undefined
          ? 'auto'
          : checkOneOf('ambiguousPaths', o.ambiguousPaths, ['refuse', 'allow', 'auto'] as const),
      key: o.key === undefined ? undefined : checkFunction('key', o.key),
      context: o.context === undefined ? undefined : checkFunction('context', o.context),
    };
    // A backend leaving the pool, or drained, closes its undici pool: undici lets the requests
    // already on it finish (`Pool.close()` is graceful).
    const onRemoved = (e: { backend: BackendView }): void => this.#retire(e.backend.id);
    const onDrained = (e: { backend: BackendView }): void => {
      if (e.backend.state === 'draining') this.#retire(e.backend.id);
    };
    this.pool.on('removed', onRemoved);
    this.pool.on('drained', onDrained);
    this.#unsubscribe = () => {
      this.pool.off('removed', onRemoved);
      this.pool.off('drained', onDrained);
    };
  }

  // ---------------------------------------------------------------- BalancedPool's surface

  /** The backends' URLs, as `BalancedPool.upstreams`. */
  get upstreams(): string[] {
    return this.pool.backends().map((b) => b.url);
  }

  /** Adds a backend, as `BalancedPool.addUpstream` (a backend already there stays as it is). */
  addUpstream(upstream: string | URL): this {
    const url = String(upstream);
    if (this.pool.get(idOf(url)) === undefined) this.pool.add(url);
    return this;
  }

  /**
   * Removes a backend, as `BalancedPool.removeUpstream`: it takes no new requests at once, the
   * ones in flight finish, then its undici pool closes.
   */
  removeUpstream(upstream: string | URL): this {
    const id = idOf(String(upstream));
    if (this.pool.get(id) !== undefined) void this.pool.remove(id);
    return this;
  }

  /** The undici pool of a backend, when one was made, as `BalancedPool.getUpstream`. */
  getUpstream(upstream: string | URL): Pool | undefined {
    return this.#upstreams.get(idOf(String(upstream)))?.pool;
  }

  /** `true` once `close()` or `destroy()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** `true` once `destroy()` was called, or `close()` completed. */
  get destroyed(): boolean {
    return this.#destroyed;
  }

  // ---------------------------------------------------------------- Dispatcher

  /**
   * Balances one request (undici's dispatch contract: its outcome goes to `handler`). Answers
   * `false`, as `BalancedPool` does, when every backend the pool would route to has its undici
   * pool queueing (every connection busy): the request is still sent, and a caller that paces
   * itself waits for `'drain'`. Also `false` when the request was refused (`handler.onError`).
   */
  override dispatch(
    options: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
  ): boolean {
    if (handler === null || typeof handler !== 'object') {
      throw new errors.InvalidArgumentError('handler must be an object');
    }
    const down = toDownstream(handler);
    let call: DispatchCall;
    try {
      if (this.#destroyed) throw new errors.ClientDestroyedError();
      if (this.#closed) throw new errors.ClientClosedError();
      if (options === null || typeof options !== 'object') {
        throw new errors.InvalidArgumentError('opts must be an object.');
      }
      call = new DispatchCall(this, this.#cfg, options, down);
    } catch (error) {
      down.error(error as Error);
      return false;
    }
    this.#active.add(call);
    call.open();
    return !this.#needDrain;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = this.#close();
    if (callback === undefined) return done;
    done.then(
      () => callback(),
      () => callback(),
    );
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(
    errOrCallback?: Error | null | (() => void),
    callback?: () => void,
  ): Promise<void> | void {
    const err = typeof errOrCallback === 'function' ? null : (errOrCallback ?? null);
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    const done = this.#destroy(err);
    if (cb === undefined) return done;
    done.then(
      () => cb(),
      () => cb(),
    );
  }

  async #close(): Promise<void> {
    this.#closed = true;
    // Calls already made finish (retries and hedges included), then the pools close.
    if (this.#active.size > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.#shutdown((pool) => pool.close());
    // As undici's dispatchers: destroyed once a close has completed.
    this.#destroyed = true;
  }

  async #destroy(err: Error | null): Promise<void> {
    this.#closed = true;
    this.#destroyed = true;
    const reason = err ?? new errors.ClientDestroyedError();
    for (const call of this.#active.toArray()) call.abort(reason);
    await this.#shutdown((pool) => pool.destroy(reason));
  }

  async #shutdown(end: (pool: Pool) => Promise<void>): Promise<void> {
    const pools = [...this.#upstreams.values()].map((u) => u.pool);
    this.#upstreams.clear();
    this.#unsubscribe();
    this.#cfg.timeouts.close();
    await Promise.all(pools.map((p) => end(p).catch(() => undefined)));
    if (this.#ownsPool) await this.pool.close();
  }

  // ---------------------------------------------------------------- for calls

  /**
   * Says how a request starting now would be hedged, or `undefined` when hedging is off.
   */
  explainHedging(): HedgeExplanation | undefined {
    return this.#cfg.hedging?.explain();
  }

  /** @internal The undici pool of `backend`, made on first use (again after it was retired). */
  upstreamFor(backend: BackendView): Upstream {
    const known = this.#upstreams.get(backend.id);
    if (known !== undefined && !known.pool.closed) return known;
    const url = new URL(backend.url);
    const upstream: Upstream = {
      pool: new Pool(url.origin, this.#poolOptions),
      origin: url.origin,
      basePath: url.pathname === '/' ? '' : url.pathname,
      busy: false,
    };
    this.#forward(upstream);
    this.#upstreams.set(backend.id, upstream);
    return upstream;
  }

  /** @internal A call ended. */
  ended(call: DispatchCall): void {
    this.#active.remove(call);
    if (this.#active.size === 0 && this.#idle.length > 0) {
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /** Closes a backend's undici pool gracefully (its requests in flight finish). */
  #retire(id: string): void {
    const upstream = this.#upstreams.get(id);
    if (upstream === undefined) return;
    this.#upstreams.delete(id);
    upstream.pool.close().catch(() => undefined);
  }

  /**
   * @internal A backend's undici pool answered a request's `dispatch()` with `false`: it queued
   * the request, every connection being busy. As `BalancedPool`, the dispatcher asks its own
   * callers to wait for `'drain'` once every backend it would route to is in that state.
   */
  upstreamBusy(upstream: Upstream): void {
    upstream.busy = true;
    if (this.#needDrain) return;
    // The pool marks what its next pick may choose (panic and draining included).
    let routable = false;
    for (const b of this.pool.backends()) {
      if (!b.eligible) continue;
      if (this.#upstreams.get(b.id)?.busy !== true) return;
      routable = true;
    }
    this.#needDrain = routable;
  }

  /**
   * Re-emits a pool's connection events as this dispatcher's, as `BalancedPool` does; its
   * `'drain'` ends the wait `dispatch()` may have asked for.
   */
  #forward(upstream: Upstream): void {
    const pool = upstream.pool;
    // undici's types give `'drain'` the origin only; its pools pass the targets too.
    pool.on('drain', (origin: URL, ...rest: unknown[]) => {
      upstream.busy = false;
      if (!this.#needDrain) return;
      this.#needDrain = false;
      const targets = Array.isArray(rest[0]) ? (rest[0] as Dispatcher[]) : [];
      const emit = this.emit as (event: 'drain', ...args: unknown[]) => boolean;
      emit.call(this, 'drain', origin, [this, ...targets]);
    });
    pool.on('connect', (origin, targets) => this.emit('connect', origin, [this, ...targets]));
    pool.on('disconnect', (origin, targets, error) =>
      this.emit('disconnect', origin, [this, ...targets], error),
    );
    pool.on('connectionError', (origin, targets, error) =>
      this.emit('connectionError', origin, [this, ...targets], error),
    );
  }
}

// ------------------------------------------------------------------ one call

/**
 * One dispatched call: the call loop's state, its transport over the backends' undici pools,
 * and where its outcome goes, in one object (with the caller's handler and one object per
 * attempt, that is all a call allocates besides undici's own objects and the lease).
 */
class DispatchCall
  extends BalancedCall<Attempt>
  implements CallTransport<Attempt>, CallSink<Attempt>, DeliveryOwner
{
  readonly #dispatcher: BalancedDispatcher;
  readonly #cfg: Config;
  readonly #options: Dispatcher.DispatchOptions;
  readonly #down: Downstream;
  readonly #path: string;
  /**
   * Whether the options can go to a backend's pool as they are (no origin to replace, the path
   * unchanged): the pool's client then fills in its own origin, and no copy is made.
   */
  readonly #asGiven: boolean;
  readonly method: string;
  readonly replayable: boolean;
  #held: Held<Attempt> | undefined = undefined;
  /** Links of the dispatcher's list of calls in flight ({@link CallList}). */
  prev: DispatchCall | undefined = undefined;
  next: DispatchCall | undefined = undefined;
  listed = false;

  constructor(
    dispatcher: BalancedDispatcher,
    cfg: Config,
    options: Dispatcher.DispatchOptions,
    down: Downstream,
  ) {
    super(cfg, dispatcher.pool);
    this.#dispatcher = dispatcher;
    this.#cfg = cfg;
    this.#options = options;
    this.#down = down;
    const method = options.method;
    this.method = checkedMethod(typeof method === 'string' ? method : String(method ?? 'GET'));
    const headers = options.headers;
    if (headers !== undefined && headers !== null && !Array.isArray(headers)) {
      if (typeof (headers as Iterable<unknown>)[Symbol.iterator] !== 'function') {
        checkHeaders(headers as HeadersInit);
      }
    }
    const given = options.path;
    const path = typeof given === 'string' ? given : String(given ?? '/');
    const origin =
      options.origin === undefined || options.origin === null ? '' : String(options.origin);
    const raw = origin === '' ? path : new URL(origin).origin + path;
    const pool = dispatcher.pool;
    this.#path = resolvePath(raw, pool, cfg.policy);
    checkAmbiguousPath(raw, this.#path, cfg.ambiguousPaths, pool, cfg.policy);
    this.#asGiven = origin === '' && this.#path === options.path;
    this.replayable = isReplayable(options.body);
  }

  /** Starts the call: the caller's handler may abort it from now on. */
  open(): void {
    this.#down.start((reason) => this.abort(reason ?? new errors.RequestAbortedError()));
    this.start(this);
  }

  // ---------------------------------------------------------------- the sink

  deliver(held: Held<Attempt>): void {
    this.delivering();
    this.#held = held;
    held.response.deliver(this.#down, this);
  }

  fail(error: unknown): void {
    this.#dispatcher.ended(this);
    this.#down.error(error as Error);
  }

  bodyEnded(end: AttemptEnd, error?: Error): void {
    this.finish(this.#held!, end, error);
    this.#dispatcher.ended(this);
  }

  // ---------------------------------------------------------------- the transport

  /** Whether the request carries an idempotency key (read only when a retry rule asks). */
  get idempotencyKey(): boolean {
    const header = this.#cfg.idempotencyKeyHeader;
    return header !== undefined && headerOf(this.#options.headers, header) !== undefined;
  }

  /** The caller aborts through its handler (`abort()`), not with a signal. */
  get signal(): undefined {
    return undefined;
  }

  get abortable(): boolean {
    return true;
  }

  /** An attempt settles when its token aborts: undici rejects an aborted request. */
  get honoursCancel(): boolean {
    return true;
  }

  send(backend: BackendView, cancel: Cancel | undefined): Promise<Attempt> {
    return new Promise((resolve, reject) =>
      this.sendThen(backend, cancel, { responded: resolve, failed: reject }),
    );
  }

  sendThen(
    backend: BackendView,
    cancel: Cancel | undefined,
    listener: AttemptListener<Attempt>,
  ): void {
    const upstream = this.#dispatcher.upstreamFor(backend);
    const attempt = new Attempt(listener);
    if (cancel !== undefined) {
      if (cancel.aborted) attempt.abort(cancel.reason);
      else cancel.on(attempt);
    }
    const accepted = upstream.pool.dispatch(
      this.#asGiven && upstream.basePath === ''
        ? this.#options
        : overlay(this.#options, { origin: upstream.origin, path: upstream.basePath + this.#path }),
      attempt,
    );
    if (!accepted) this.#dispatcher.upstreamBusy(upstream);
  }

  status(response: Attempt): number {
    return response.status;
  }

  retryAfterMs(response: Attempt): number | undefined {
    return retryAfterMs(response.status, response, this.#cfg.clock);
  }

  discard(response: Attempt): void {
    response.abort(undefined);
  }

  classify(error: unknown): FailureKind {
    return classifyError(error);
  }

  /** The dispatcher's events (an {@link Emitter}: it knows at once whether anyone listens). */
  get #events(): Emitter<BalancedDispatcherEvents> {
    return this.#dispatcher.events as Emitter<BalancedDispatcherEvents>;
  }

  onAttempt(backend: BackendView, attempt: number, hedge: boolean): void {
    const events = this.#events;
    if (!events.quiet && events.listenerCount('attempt') > 0) {
      events.emit('attempt', { options: this.#options, backend, attempt, hedge });
    }
  }

  onResponse(backend: BackendView, attempt: number, status: number, latencyMs: number): void {
    const events = this.#events;
    if (!events.quiet && events.listenerCount('response') > 0) {
      events.emit('response', { options: this.#options, backend, attempt, status, latencyMs });
    }
  }

  onFailure(backend: BackendView | undefined, attempt: number, error: unknown): void {
    const events = this.#events;
    if (!events.quiet && events.listenerCount('failure') > 0) {
      events.emit('failure', { options: this.#options, backend, attempt, error });
    }
  }

  onRetry(attempt: number, backend: BackendView, reason: string, delayMs: number): void {
    const events = this.#events;
    if (!events.quiet && events.listenerCount('retry') > 0) {
      events.emit('retry', { options: this.#options, attempt, backend, reason, delayMs });
    }
  }

  onHedge(backend: BackendView, slow: BackendView, attempt: number, delayMs: number): void {
    const events = this.#events;
    if (!events.quiet && events.listenerCount('hedge') > 0) {
      events.emit('hedge', { options: this.#options, backend, slow, attempt, delayMs });
    }
  }

  pickContext(
    n: number,
    tried: readonly string[],
  ): PickContext | undefined | Promise<PickContext | undefined> {
    return attemptContext(this.#cfg, this, 'options', n, tried);
  }

  /** What the `key` and `context` hooks receive. */
  hookRequest(): Dispatcher.DispatchOptions {
    return this.#options;
  }
}

/** A doubly linked list of calls through their own `prev`/`next` links: O(1), no allocation. */
class CallList {
  #head: DispatchCall | undefined;
  size = 0;

  add(call: DispatchCall): void {
    if (call.listed) return;
    call.listed = true;
    call.prev = undefined;
    call.next = this.#head;
    if (this.#head !== undefined) this.#head.prev = call;
    this.#head = call;
    this.size++;
  }

  remove(call: DispatchCall): void {
    if (!call.listed) return;
    call.listed = false;
    if (call.prev === undefined) this.#head = call.next;
    else call.prev.next = call.next;
    if (call.next !== undefined) call.next.prev = call.prev;
    call.prev = undefined;
    call.next = undefined;
    this.size--;
  }

  toArray(): DispatchCall[] {
    const out: DispatchCall[] = [];
    for (let c = this.#head; c !== undefined; c = c.next) out.push(c);
    return out;
  }
}

// ------------------------------------------------------------------ helpers

/** The pool id of an upstream URL (validated as a backend URL). */
function idOf(url: string): string {
  return normalizeBackend(url, 'upstream').id;
}

/** Bodies undici can send again for another attempt. */
function isReplayable(body: unknown): boolean {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof Uint8Array ||
    body instanceof ArrayBuffer ||
    (typeof FormData !== 'undefined' && body instanceof FormData)
  );
}

/** A request header from undici's header forms (object, flat array, iterable of pairs). */
function headerOf(headers: unknown, name: string): string | undefined {
  if (headers === undefined || headers === null) return undefined;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === name) return String(headers[i + 1]);
    }
    return undefined;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of headers as Iterable<[string, string]>) {
      if (String(pair[0]).toLowerCase() === name) return String(pair[1]);
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() === name && v !== undefined) return String(v);
  }
  return undefined;
}
