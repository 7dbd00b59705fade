import '../disposable.js';
import { EventEmitter } from 'eventemitter3';
import { backgroundTimer, type Clock } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import { SessionStoreError, type SessionStoreOperation } from '../errors/session-store-error.js';
import type { BackendPool } from '../pool/backend-pool.js';
import { DEFAULT_CLOCK_SKEW_MS, stampAge } from '../stamps.js';
import type { BackendView, Lease, PickContext, PoolEvents } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkOptions,
  checkString,
  isPlainObject,
  optDuration,
} from '../validate.js';
import {
  base64url,
  type CookieAttributes,
  type CookieSecret,
  checkCookieName,
  formatSetCookie,
  getCookie,
  HmacKeys,
  resolveCookieAttributes,
  sha256,
} from './cookie.js';
import { MemorySessionStore } from './memory-store.js';
import type { Awaitable, SessionRecord, SessionStore } from './store.js';

/** The sticky cookie: its name and `Set-Cookie` attributes. */
export interface SessionCookieOptions extends CookieAttributes {
  /**
   * The cookie's name. `SERVERID` is the name HAProxy's documentation uses for its
   * backend-naming cookie.
   * @default 'SERVERID'
   */
  name?: string;
}

/** Options of {@link SessionPersistenceManager}. */
export interface SessionPersistenceOptions {
  /**
   * Where key-based sessions live. Pass a shared store (`RedisSessionStore` from
   * `loadwise/redis`) so that every replica of a client fleet uses one sticky table. A store
   * passed in is closed by its owner; the default one is closed by `close()`.
   * @default new MemorySessionStore({ maxEntries, cleanupIntervalMs, clock })
   */
  store?: SessionStore;
  /**
   * Bound of the default in-memory store (least recently used sessions are evicted past it), at
   * most 4,194,304 (see {@link MemorySessionStoreOptions.maxEntries}). Not allowed together
   * with `store`.
   * @default 100000
   */
  maxEntries?: number;
  /**
   * Sweep interval of the default in-memory store. Not allowed together with `store`.
   * @default 60000
   */
  cleanupIntervalMs?: number;
  /**
   * Idle time after which a session expires; every use slides it forward. 30 minutes is the
   * session timeout servlet containers ship with (Tomcat's `session-timeout`). A sticky cookie
   * is re-issued once a quarter of this has passed since it was last issued (not on every
   * response), so in cookie mode a session ends after 3/4 to all of this time idle.
   * @default 1800000
   */
  ttlMs?: number;
  /**
   * Absolute life of a binding, however busy: after it the next call is balanced afresh, so
   * long-lived clients still spread out after backends are added. One day is AWS ALB's default
   * stickiness duration.
   * @default 86400000
   */
  maxLifeMs?: number;
  /**
   * The longest a call waits for the session store. When the store fails or does not answer
   * in time, the call is balanced normally and `storeError` is emitted.
   * @default 50
   */
  storeTimeoutMs?: number;
  /**
   * After a store failure, calls skip the store (no waiting at all) for this long, then try it
   * again; `storeDown` and `storeUp` mark the transitions. 0 tries the store on every call.
   * @default 1000
   */
  storeRetryMs?: number;
  /**
   * Cookie-based stickiness: `true` for the defaults, or the cookie's name and attributes. The
   * cookie carries an opaque backend token (never an address) and its issue and last-use times;
   * it is signed when `secret` is set.
   * @default false
   */
  cookie?: boolean | SessionCookieOptions;
  /**
   * HMAC-SHA256 key for the cookie (at least 32 bytes). With it, a forged or altered cookie is
   * ignored, and backend tokens cannot be linked to backend ids without the key. A list rotates
   * keys: the first signs, all verify. Requires `cookie`.
   * @default undefined (cookies are not signed)
   */
  secret?: CookieSecret;
  /**
   * How far in the future a session's time stamps (a stored binding's creation time, a cookie's
   * issue and last-use times) may lie before the session is treated as invalid and balanced
   * afresh. Replicas sharing a store need clocks within this of each other; a stamp set further
   * ahead (a forged unsigned cookie, a record written by a clock gone wrong) would otherwise
   * never grow old and outlive `ttlMs` and `maxLifeMs`. RFC 7519 §4.1.4 suggests "usually no
   * more than a few minutes" for such leeway.
   * @default 60000
   */
  clockSkewMs?: number;
  /** Time source. @default pool.clock */
  clock?: Clock;
}

/** How a call related to its session. */
export type SessionStatus =
  /** The call went to the backend the session was pinned to. */
  | 'kept'
  /** There was no (valid) session: the call was balanced and a new session bound. */
  | 'new'
  /** The pinned backend could not take the call: the session moved to another backend. */
  | 'rebound'
  /** The store failed or is marked down: the call was balanced without stickiness. */
  | 'unavailable'
  /** No key and no cookie mode: the call was balanced normally. */
  | 'none';

/** What {@link SessionPersistenceManager.acquire} accepts. */
export type SessionAcquireInput =
  | string
  | {
      /** The session key (client id, session id, tenant id). */
      key?: string | undefined;
      /** The request's `Cookie` header, in cookie mode (`null` and `undefined` mean none). */
      cookie?: string | null | undefined;
      /** Further pick context (client address, exclusions) passed on to the pool. */
      ctx?: PickContext | undefined;
    };

/** The answer of {@link SessionPersistenceManager.acquire}. */
export interface SessionAcquireResult {
  /** The lease for this call: release it exactly once, as with `pool.acquire()`. */
  readonly lease: Lease;
  /** The session key, in key mode. */
  readonly key: string | undefined;
  /** Whether the session was moved to another backend for this call. */
  readonly rebound: boolean;
  /** How the call related to its session. */
  readonly status: SessionStatus;
  /** In cookie mode: a `Set-Cookie` value to send back, when the cookie is new or refreshed. */
  readonly setCookie?: string;
}

/** Options of {@link SessionPersistenceManager.forFetch}. */
export interface SessionFetchOptions {
  /**
   * Derives the session key from a request. When it is missing or returns `undefined`, the
   * cookie selects the session (if the manager has `cookie` set); otherwise the call is
   * balanced normally.
   * @default undefined
   * @example
   * ```ts
   * key: (request) => request.headers.get('x-user-id') ?? undefined
   * ```
   */
  key?: (request: Request) => string | undefined;
}

/** The attempt information the balanced fetch gives its `context` hook. */
export interface SessionFetchAttempt {
  readonly attempt: number;
  /** Backend ids already tried in this call. */
  readonly tried: readonly string[];
}

/** The hooks returned by {@link SessionPersistenceManager.forFetch}. */
export interface SessionFetchHooks {
  /** Pick context for one attempt: the session key and the pin to its backend. */
  context(request: Request, info: SessionFetchAttempt): Promise<PickContext | undefined>;
  /** Records the binding once the response is in; may add a `Set-Cookie` header. */
  afterResponse(info: {
    request: Request;
    response: Response;
    backend: BackendView;
    attempt: number;
  }): Promise<Response | undefined>;
}

/** Why a returned cookie was not honoured. */
export type CookieRejection =
  | 'malformed'
  | 'bad-signature'
  | 'expired'
  /** Its issue or last-use time lies more than `clockSkewMs` in the future. */
  | 'future-timestamp'
  | 'unknown-backend';

/** Events of {@link SessionPersistenceManager}. */
export interface SessionEvents {
  /** A new session was bound to a backend. `key` is undefined in cookie mode. */
  bound: (e: { key: string | undefined; backend: BackendView; via: 'key' | 'cookie' }) => void;
  /** A session moved from one backend to another (failover, drain over, removal). */
  rebound: (e: {
    key: string | undefined;
    from: string;
    to: BackendView;
    reason: string;
    via: 'key' | 'cookie';
  }) => void;
  /** A store call failed or timed out; the call it served was balanced normally. */
  storeError: (e: {
    operation: SessionStoreOperation;
    key: string | undefined;
    error: SessionStoreError;
  }) => void;
  /** The store started failing: calls skip it for `storeRetryMs`, then try again. */
  storeDown: (e: { error: SessionStoreError; retryInMs: number }) => void;
  /** The store answered again after being marked down. */
  storeUp: () => void;
  /** A returned cookie was ignored; the call was balanced and a new cookie issued. */
  cookieRejected: (e: { reason: CookieRejection }) => void;
  /** Sessions of a backend were purged from the store. */
  purged: (e: { backend: string; sessions: number; reason: 'removed' | 'drain-over' }) => void;
}

const MANAGER_KEYS = [
  'store',
  'maxEntries',
  'cleanupIntervalMs',
  'ttlMs',
  'maxLifeMs',
  'storeTimeoutMs',
  'storeRetryMs',
  'cookie',
  'secret',
  'clockSkewMs',
  'clock',
] as const;

const COOKIE_KEYS = ['name', 'path', 'domain', 'maxAgeSec', 'httpOnly', 'secure', 'sameSite'];

/** Bytes of hash kept in a backend token: 72 bits, 12 base64url characters. */
const TOKEN_BYTES = 9;
/** Domain separation, so a token never equals another use of the same secret. */
const TOKEN_PREFIX = 'loadwise-backend:';
/** Cookie values longer than this are junk; they are refused before any hashing. */
const MAX_COOKIE_CHARS = 256;

type StoreResult<T> = { ok: true; value: T } | { ok: false };
const FAILED: StoreResult<never> = Object.freeze({ ok: false });

/** What recording a call did to its session. */
interface Outcome {
  readonly status: SessionStatus;
  readonly setCookie: string | undefined;
  /** Key mode: another writer bound the session first, to this backend. */
  readonly winner?: string;
}
const NO_SESSION: Outcome = Object.freeze({ status: 'none', setCookie: undefined });
const UNAVAILABLE: Outcome = Object.freeze({ status: 'unavailable', setCookie: undefined });
const KEPT: Outcome = Object.freeze({ status: 'kept', setCookie: undefined });

/** A session as found for one call, before the pick. */
interface Resolved {
  readonly via: 'key' | 'cookie' | 'none';
  readonly key: string | undefined;
  /** The backend id the session is pinned to, if there is a valid session. */
  readonly pinned: string | undefined;
  readonly createdAt: number;
  /** Cookie mode: when the cookie was last refreshed. */
  readonly seenAt: number;
  /** Key mode: whether the store answered (when not, the binding is not recorded). */
  readonly storeOk: boolean;
  /** Key mode: the record the store held, valid or not (what a new binding replaces). */
  readonly found?: SessionRecord;
}

const NONE: Resolved = Object.freeze({
  via: 'none',
  key: undefined,
  pinned: undefined,
  createdAt: 0,
  seenAt: 0,
  storeOk: false,
});

/**
 * Sticky sessions in front of any algorithm: routes a client's calls to the backend its session
 * is pinned to, by a key (client, session or tenant id) or by a cookie that names the backend
 * with an opaque, optionally signed token.
 *
 * - Sessions expire after `ttlMs` idle (sliding) and `maxLifeMs` in all; the default in-memory
 *   store is an LRU bounded by `maxEntries`.
 * - Failover: when the pinned backend is unhealthy, ejected or gone, the call is balanced and the
 *   session rebound to the backend that took it.
 * - Draining: a draining backend keeps its existing sessions until they expire, it is undrained
 *   or removed, or the drain's grace period runs out; no new session is pinned to it.
 * - A removed backend's sessions are purged (stores without `purgeBackend` rebind them lazily).
 * - A slow or failing store never fails a call: after `storeTimeoutMs` the call is balanced
 *   normally and `storeError` is emitted.
 *
 * @example
 * ```ts
 * const sessions = new SessionPersistenceManager(pool, { ttlMs: 15 * 60_000 });
 * const { lease } = await sessions.acquire('user-42');
 * try {
 *   await callBackend(lease.backend.url);
 *   lease.release({ ok: true });
 * } catch (error) {
 *   lease.release({ ok: false, error });
 * }
 *
 * // With the balanced fetch, by key or (with `cookie: true`) by cookie:
 * const fetch = createBalancedFetch(pool, {
 *   ...sessions.forFetch({ key: (req) => req.headers.get('x-user-id') ?? undefined }),
 * });
 * ```
 */
export class SessionPersistenceManager extends EventEmitter<SessionEvents> {
  /** The pool calls are balanced over. */
  readonly pool: BackendPool;
  /** The store holding key-based sessions. */
  readonly store: SessionStore;
  /** Idle TTL in ms. */
  readonly ttlMs: number;
  /** Absolute life in ms. */
  readonly maxLifeMs: number;

  readonly #clock: Clock;
  readonly #clockSkewMs: number;
  readonly #ownsStore: boolean;
  readonly #storeTimeoutMs: number;
  readonly #storeRetryMs: number;
  readonly #cookieName: string | undefined;
  readonly #cookieAttrs: ReturnType<typeof resolveCookieAttributes> | undefined;
  readonly #keys: HmacKeys | undefined;
  /** Re-issue a kept cookie once it is this old, so its idle stamp slides with use. */
  readonly #cookieRefreshMs: number;

  /** Backends whose drain grace ran out: their sessions no longer stick to them. */
  readonly #drainOver = new Set<string>();
  /** Backend id to its token (first secret), and every secret's token back to the id. */
  readonly #tokenOf = new Map<string, string>();
  readonly #idOf = new Map<string, string>();
  readonly #pending = new Set<Promise<unknown>>();
  #storeDown = false;
  #retryAt = 0;
  #closed = false;
  #closing: Promise<void> | undefined;

  readonly #onRemoved: PoolEvents['removed'];
  readonly #onState: PoolEvents['state'];
  readonly #onDrained: PoolEvents['drained'];
  readonly #onPoolClose: PoolEvents['close'];

  constructor(pool: BackendPool, options: SessionPersistenceOptions = {}) {
    super();
    if (
      typeof pool !== 'object' ||
      pool === null ||
      typeof pool.acquire !== 'function' ||
      typeof pool.on !== 'function'
    ) {
      throw new LoadBalancerConfigError('pool', pool, 'a BackendPool');
    }
    const o = checkOptions('SessionPersistenceOptions', options, MANAGER_KEYS);
    this.pool = pool;
    this.#clock = o.clock === undefined ? pool.clock : checkClock('clock', o.clock);
    this.ttlMs = optDuration('ttlMs', o.ttlMs, 1_800_000, { min: 0, minExclusive: true });
    this.maxLifeMs = optDuration('maxLifeMs', o.maxLifeMs, 86_400_000, {
      min: 0,
      minExclusive: true,
    });
    this.#storeTimeoutMs = optDuration('storeTimeoutMs', o.storeTimeoutMs, 50, {
      min: 0,
      minExclusive: true,
    });
    this.#storeRetryMs = optDuration('storeRetryMs', o.storeRetryMs, 1000, { min: 0 });
    this.#clockSkewMs = optDuration('clockSkewMs', o.clockSkewMs, DEFAULT_CLOCK_SKEW_MS, {
      min: 0,
    });
    this.#cookieRefreshMs = this.ttlMs / 4;

    const cookie = o.cookie ?? false;
    if (cookie === false) {
      this.#cookieName = undefined;
      this.#cookieAttrs = undefined;
      if (o.secret !== undefined) {
        throw new LoadBalancerConfigError(
          'secret',
          '(secret)',
          'no secret unless cookie is set (the secret signs the sticky cookie)',
        );
      }
      this.#keys = undefined;
    } else {
      if (cookie !== true && !isPlainObject(cookie)) {
        throw new LoadBalancerConfigError('cookie', cookie, 'true, false or cookie options');
      }
      const c = checkOptions<SessionCookieOptions>(
        'cookie',
        cookie === true ? {} : cookie,
        COOKIE_KEYS,
      );
      const { name, ...attributes } = c;
      this.#cookieName = name === undefined ? 'SERVERID' : checkCookieName('cookie.name', name);
      this.#cookieAttrs = resolveCookieAttributes('cookie', attributes);
      this.#keys = o.secret === undefined ? undefined : new HmacKeys('secret', o.secret);
    }

    // The default store starts a timer: make it only once every option has passed its checks.
    if (o.store === undefined) {
      this.store = new MemorySessionStore({
        clock: this.#clock,
        ...(o.maxEntries === undefined ? {} : { maxEntries: o.maxEntries }),
        ...(o.cleanupIntervalMs === undefined ? {} : { cleanupIntervalMs: o.cleanupIntervalMs }),
      });
      this.#ownsStore = true;
    } else {
      const s = o.store as unknown;
      if (
        typeof s !== 'object' ||
        s === null ||
        typeof (s as SessionStore).get !== 'function' ||
        typeof (s as SessionStore).set !== 'function' ||
        typeof (s as SessionStore).delete !== 'function'
      ) {
        throw new LoadBalancerConfigError('store', s, 'a SessionStore with get, set and delete');
      }
      for (const field of ['maxEntries', 'cleanupIntervalMs'] as const) {
        if (o[field] !== undefined) {
          throw new LoadBalancerConfigError(
            field,
            o[field],
            'no value when a store is given (configure the store itself)',
          );
        }
      }
      this.store = o.store;
      this.#ownsStore = false;
    }

    this.#onRemoved = ({ backend }) => {
      this.#drainOver.delete(backend.id);
      this.#forgetToken(backend.id);
      this.#purge(backend.id, 'removed');
    };
    this.#onState = ({ backend, from }) => {
      // Leaving `draining` means an undrain: the backend takes sticky calls again.
      if (from === 'draining') this.#drainOver.delete(backend.id);
    };
    this.#onDrained = ({ backend, completed }) => {
      // The grace period ran out: the drain is over for its sessions too. (A drain that
      // completes only means no call is in flight; sessions may still come back to it.)
      if (completed || backend.state !== 'draining') return;
      this.#drainOver.add(backend.id);
      this.#purge(backend.id, 'drain-over');
    };
    this.#onPoolClose = () => {
      void this.close();
    };
    pool.on('removed', this.#onRemoved);
    pool.on('state', this.#onState);
    pool.on('drained', this.#onDrained);
    pool.on('close', this.#onPoolClose);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the store is marked down after a failure (calls skip it until `storeRetryMs`). */
  get storeDown(): boolean {
    return this.#storeDown;
  }

  // ---------------------------------------------------------------- acquire

  /**
   * Picks a backend for one call of a session: the pinned one when it can take the call,
   * otherwise whatever the pool picks (and the session is bound to it). Store failures never
   * reject: the call is balanced normally (`status: 'unavailable'`).
   *
   * @param input a session key, or `{ key }`, or `{ cookie }` (the request's `Cookie` header,
   *   in cookie mode), with optional further pick context `ctx`.
   * @throws {NoBackendAvailableError} when the pool has nothing to pick.
   * @throws {PoolClosedError} after `close()`.
   * @example
   * ```ts
   * const { lease, setCookie } = await sessions.acquire({ cookie: req.headers.cookie });
   * if (setCookie) res.setHeader('set-cookie', setCookie);
   * ```
   */
  async acquire(input?: SessionAcquireInput): Promise<SessionAcquireResult> {
    this.#assertOpen();
    const { key, cookie, ctx } = parseInput(input);
    let found: Resolved | Promise<Resolved>;
    if (key !== undefined) found = this.#resolveKey(key);
    else if (this.#cookieName !== undefined) found = this.#resolveCookie(cookie);
    else found = NONE;
    // Awaited only when the store is asynchronous: the in-memory path skips the extra turns.
    const resolved = isThenable(found) ? await found : found;
    let lease = this.pool.acquire(this.#pickContext(resolved, ctx, undefined));
    let outcome: Outcome;
    try {
      const committed = this.#commit(resolved, lease.backend);
      outcome = isThenable(committed) ? await committed : committed;
    } catch (error) {
      // Never leak the lease: 'aborted' does not count against the backend.
      lease.release({ ok: false, failure: 'aborted', error });
      throw error;
    }
    if (outcome.winner !== undefined && outcome.winner !== lease.backend.id) {
      lease = this.#followWinner(lease, outcome.winner, resolved, ctx);
    }
    const result: {
      lease: Lease;
      key: string | undefined;
      rebound: boolean;
      status: SessionStatus;
      setCookie?: string;
    } = { lease, key, rebound: outcome.status === 'rebound', status: outcome.status };
    if (outcome.setCookie !== undefined) result.setCookie = outcome.setCookie;
    return result;
  }

  /**
   * Another replica bound the session first: take the call to its backend too, when the pool
   * gives it (the lease already taken is handed back without counting against its backend).
   */
  #followWinner(lease: Lease, winner: string, r: Resolved, ctx: PickContext | undefined): Lease {
    const pinned: Resolved = { ...r, pinned: winner };
    let other: Lease;
    try {
      other = this.pool.acquire(this.#pickContext(pinned, ctx, undefined));
    } catch {
      return lease;
    }
    if (other.backend.id !== winner) {
      other.release({ ok: false, failure: 'aborted' });
      return lease;
    }
    lease.release({ ok: false, failure: 'aborted' });
    return other;
  }

  /**
   * Hooks for `createBalancedFetch(pool, { ...sessions.forFetch(...) })`: `context` pins each
   * attempt to the session's backend (unless that backend was already tried in this call), and
   * `afterResponse` records the binding and, in cookie mode, adds `Set-Cookie` when the session
   * is new, moved or due for refresh. A 5xx response never creates or moves a binding.
   *
   * @example
   * ```ts
   * const fetch = createBalancedFetch(pool, {
   *   ...sessions.forFetch({ key: (req) => req.headers.get('x-user-id') ?? undefined }),
   * });
   * ```
   */
  forFetch(options: SessionFetchOptions = {}): SessionFetchHooks {
    const o = checkOptions('forFetch options', options, ['key']);
    const keyOf =
      o.key === undefined
        ? undefined
        : checkFunction<(request: Request) => string | undefined>('forFetch options.key', o.key);
    if (keyOf === undefined && this.#cookieName === undefined) {
      throw new LoadBalancerConfigError(
        'forFetch options.key',
        undefined,
        'a key function, or a manager created with the cookie option',
      );
    }
    // One lookup per request, shared by its attempts and its response (weakly held, so a
    // request that never gets a response leaves nothing behind).
    const lookups = new WeakMap<Request, Promise<Resolved>>();
    const lookup = (request: Request): Promise<Resolved> => {
      let p = lookups.get(request);
      if (p === undefined) {
        p = this.#resolveRequest(request, keyOf);
        lookups.set(request, p);
      }
      return p;
    };
    return {
      context: async (request, info) => {
        this.#assertOpen();
        const resolved = await lookup(request);
        return this.#pickContext(resolved, undefined, info?.tried);
      },
      afterResponse: async ({ request, response, backend }) => {
        const resolved = await lookup(request);
        lookups.delete(request);
        if (this.#closed) return undefined;
        // Do not pin a client to a backend that just failed it.
        if (response.status >= 500 && resolved.pinned !== backend.id) return undefined;
        const { setCookie } = await this.#commit(resolved, backend);
        return setCookie === undefined ? undefined : withSetCookie(response, setCookie);
      },
    };
  }

  /** Forgets the session under `key` (e.g. at logout). Store failures are reported as events. */
  async forget(key: string): Promise<void> {
    this.#assertOpen();
    checkString('key', key);
    await this.#call('delete', key, () => this.store.delete(key));
  }

  // ---------------------------------------------------------------- resolving

  #resolveRequest(
    request: Request,
    keyOf: ((request: Request) => string | undefined) | undefined,
  ): Promise<Resolved> {
    const key = keyOf?.(request);
    if (key !== undefined) {
      checkString('forFetch options.key(request)', key);
      return Promise.resolve(this.#resolveKey(key));
    }
    if (this.#cookieName !== undefined) return this.#resolveCookie(request.headers.get('cookie'));
    return Promise.resolve(NONE);
  }

  /** Synchronous when the store answers synchronously (the in-memory store). */
  #resolveKey(key: string): Resolved | Promise<Resolved> {
    const got = this.#call('get', key, () => this.store.get(key));
    return isThenable(got)
      ? got.then((g) => this.#keyResolved(key, g))
      : this.#keyResolved(key, got);
  }

  #keyResolved(key: string, got: StoreResult<SessionRecord | undefined>): Resolved {
    if (!got.ok) {
      return { via: 'key', key, pinned: undefined, createdAt: 0, seenAt: 0, storeOk: false };
    }
    const record = got.value;
    if (
      record === undefined ||
      record === null ||
      typeof record.backend !== 'string' ||
      typeof record.createdAt !== 'number'
    ) {
      return { via: 'key', key, pinned: undefined, createdAt: 0, seenAt: 0, storeOk: true };
    }
    // A creation time in the future would never reach maxLifeMs: such a record is no session.
    const age = stampAge(record.createdAt, this.#clock.now(), this.#clockSkewMs);
    if (age === undefined || age >= this.maxLifeMs) {
      return {
        via: 'key',
        key,
        pinned: undefined,
        createdAt: 0,
        seenAt: 0,
        storeOk: true,
        found: record,
      };
    }
    return {
      via: 'key',
      key,
      pinned: record.backend,
      createdAt: record.createdAt,
      seenAt: 0,
      storeOk: true,
      found: record,
    };
  }

  async #resolveCookie(header: string | null | undefined): Promise<Resolved> {
    const value = getCookie(header, this.#cookieName!);
    const none: Resolved = {
      via: 'cookie',
      key: undefined,
      pinned: undefined,
      createdAt: 0,
      seenAt: 0,
      storeOk: true,
    };
    if (value === undefined || value.length === 0) return none;
    const decoded = await this.#decodeCookie(value);
    if (typeof decoded === 'string') {
      if (this.listenerCount('cookieRejected') > 0)
        this.emit('cookieRejected', { reason: decoded });
      return none;
    }
    return { ...none, pinned: decoded.id, createdAt: decoded.createdAt, seenAt: decoded.seenAt };
  }

  #pickContext(
    r: Resolved,
    base: PickContext | undefined,
    tried: readonly string[] | undefined,
  ): PickContext {
    const ctx: PickContext = base === undefined ? {} : { ...base };
    if (r.key !== undefined && ctx.key === undefined) ctx.key = r.key;
    if (r.pinned !== undefined && !(tried?.includes(r.pinned) ?? false)) {
      ctx.affinity = { id: r.pinned, allowDraining: !this.#drainOver.has(r.pinned) };
    }
    return ctx;
  }

  // ---------------------------------------------------------------- recording

  /**
   * Records what the pick did to the session: touch, bind or rebind. Never rejects on store
   * errors; synchronous when nothing needs waiting for (a kept key session, no session).
   */
  #commit(r: Resolved, backend: BackendView): Outcome | Promise<Outcome> {
    if (r.via === 'none') return NO_SESSION;
    const now = this.#clock.now();
    if (r.via === 'key') {
      const key = r.key!;
      if (!r.storeOk) return UNAVAILABLE;
      if (r.pinned === backend.id) {
        // Sliding expiry: refresh in the background; the call need not wait for it. Through
        // bind(), a refresh never undoes another replica's newer binding.
        const ttl = this.#ttlFor(r.createdAt, now);
        if (ttl > 0) {
          const record: SessionRecord = { backend: backend.id, createdAt: r.createdAt };
          this.#background(this.#call('set', key, () => this.#write(key, record, ttl, r.found)));
        }
        return KEPT;
      }
      // A new binding is written before the call proceeds (bounded by storeTimeoutMs), so that
      // other replicas sharing the store see it on their next call. With a store that binds
      // atomically, the first of two replicas binding one session at once wins, and the other
      // learns the winner here.
      const record: SessionRecord = { backend: backend.id, createdAt: now };
      const written = this.#call('set', key, () =>
        this.#write(key, record, this.#ttlFor(now, now), r.found),
      );
      const done = (result: StoreResult<SessionRecord | undefined>): Outcome => {
        const held = result.ok ? result.value : undefined;
        if (held !== undefined && (held.backend !== record.backend || held.createdAt !== now)) {
          return { status: 'kept', setCookie: undefined, winner: held.backend };
        }
        return { status: this.#announce(r, key, backend), setCookie: undefined };
      };
      return isThenable(written) ? written.then(done) : done(written);
    }
    return this.#commitCookie(r, backend, now);
  }

  async #commitCookie(r: Resolved, backend: BackendView, now: number): Promise<Outcome> {
    if (r.pinned === backend.id) {
      const setCookie =
        now - r.seenAt >= this.#cookieRefreshMs
          ? await this.#encodeCookie(backend.id, r.createdAt, now)
          : undefined;
      return { status: 'kept', setCookie };
    }
    const setCookie = await this.#encodeCookie(backend.id, now, now);
    return { status: this.#announce(r, undefined, backend), setCookie };
  }

  #announce(r: Resolved, key: string | undefined, backend: BackendView): SessionStatus {
    const via = r.via as 'key' | 'cookie';
    if (r.pinned === undefined) {
      if (this.listenerCount('bound') > 0) this.emit('bound', { key, backend, via });
      return 'new';
    }
    if (this.listenerCount('rebound') > 0) {
      const from = this.pool.get(r.pinned);
      const reason =
        from === undefined
          ? 'pinned backend is no longer in the pool'
          : this.#drainOver.has(from.id)
            ? 'pinned backend drain is over'
            : from.state === 'healthy'
              ? 'pinned backend could not take the call'
              : `pinned backend is ${from.state}`;
      this.emit('rebound', { key, from: r.pinned, to: backend, reason, via });
    }
    return 'rebound';
  }

  /**
   * Writes a binding: atomically through `store.bind` when the store has it (returning the
   * binding held afterwards), else with `set` (the last writer wins).
   */
  #write(
    key: string,
    record: SessionRecord,
    ttlMs: number,
    expected: SessionRecord | undefined,
  ): Awaitable<SessionRecord | undefined> {
    const store = this.store;
    if (typeof store.bind === 'function') return store.bind(key, record, ttlMs, expected);
    const set = store.set(key, record, ttlMs);
    return isThenable(set) ? set.then(() => record) : record;
  }

  /** The store TTL of a session: idle TTL, capped by what is left of its absolute life. */
  #ttlFor(createdAt: number, now: number): number {
    return Math.min(this.ttlMs, createdAt + this.maxLifeMs - now);
  }

  #purge(backend: string, reason: 'removed' | 'drain-over'): void {
    const store = this.store;
    if (this.#closed || typeof store.purgeBackend !== 'function') return;
    const done = this.#call('purge', undefined, () => store.purgeBackend!(backend));
    const report = (r: StoreResult<number>): void => {
      if (r.ok && this.listenerCount('purged') > 0) {
        this.emit('purged', { backend, sessions: r.value, reason });
      }
    };
    if (isThenable(done)) this.#background(done.then(report));
    else report(done);
  }

  // ---------------------------------------------------------------- cookies

  async #encodeCookie(backendId: string, createdAt: number, seenAt: number): Promise<string> {
    const token = await this.#tokenFor(backendId);
    const payload = `${token}.${stamp(createdAt)}.${stamp(seenAt)}`;
    const value = this.#keys === undefined ? payload : await this.#keys.sign(payload);
    return formatSetCookie(this.#cookieName!, value, this.#cookieAttrs!);
  }

  async #decodeCookie(
    value: string,
  ): Promise<CookieRejection | { id: string; createdAt: number; seenAt: number }> {
    if (value.length > MAX_COOKIE_CHARS) return 'malformed';
    let payload: string | undefined = value;
    if (this.#keys !== undefined) {
      payload = await this.#keys.verify(value);
      if (payload === undefined) return 'bad-signature';
    }
    const parts = payload.split('.');
    if (parts.length !== 3) return 'malformed';
    const [token, created, seen] = parts as [string, string, string];
    const createdAt = unstamp(created);
    const seenAt = unstamp(seen);
    if (token.length === 0 || createdAt === undefined || seenAt === undefined) return 'malformed';
    if (seenAt < createdAt) return 'malformed';
    // Stamps in the future would never expire (an unsigned cookie can carry any stamp).
    const now = this.#clock.now();
    const age = stampAge(createdAt, now, this.#clockSkewMs);
    const idle = stampAge(seenAt, now, this.#clockSkewMs);
    if (age === undefined || idle === undefined) return 'future-timestamp';
    if (age >= this.maxLifeMs || idle >= this.ttlMs) return 'expired';
    let id = this.#idOf.get(token);
    if (id === undefined) {
      await this.#learnTokens();
      id = this.#idOf.get(token);
    }
    return id === undefined ? 'unknown-backend' : { id, createdAt, seenAt };
  }

  async #tokenFor(id: string): Promise<string> {
    const known = this.#tokenOf.get(id);
    if (known !== undefined) return known;
    const tokens = await this.#computeTokens(id);
    this.#tokenOf.set(id, tokens[0]!);
    for (const t of tokens) this.#idOf.set(t, id);
    return tokens[0]!;
  }

  /** Tokens of every current backend not seen yet (a returned token may name one of them). */
  async #learnTokens(): Promise<void> {
    const missing = this.pool
      .backends()
      .map((b) => b.id)
      .filter((id) => !this.#tokenOf.has(id));
    await Promise.all(missing.map((id) => this.#tokenFor(id)));
  }

  /**
   * A backend's opaque tokens, one per secret: a truncated HMAC of its id when a secret is set
   * (unlinkable to the id without the key), else a truncated SHA-256 of it (hides the address
   * from casual view, but can be matched against guessed ids: set a secret for more).
   */
  async #computeTokens(id: string): Promise<string[]> {
    const data = TOKEN_PREFIX + id;
    const keys = this.#keys;
    const digests =
      keys === undefined
        ? [await sha256(data)]
        : await Promise.all(Array.from({ length: keys.count }, (_, i) => keys.mac(i, data)));
    return digests.map((d) => base64url(d.subarray(0, TOKEN_BYTES)));
  }

  #forgetToken(id: string): void {
    this.#tokenOf.delete(id);
    for (const [token, owner] of this.#idOf) if (owner === id) this.#idOf.delete(token);
  }

  // ---------------------------------------------------------------- store calls

  /**
   * Calls the store, bounded by `storeTimeoutMs` on the injected clock. Never throws or
   * rejects: failures are reported as events and answered with `{ ok: false }`. Synchronous
   * stores are answered synchronously.
   */
  #call<T>(
    operation: SessionStoreOperation,
    key: string | undefined,
    fn: () => Awaitable<T>,
  ): StoreResult<T> | Promise<StoreResult<T>> {
    if (this.#storeDown && this.#clock.now() < this.#retryAt) return FAILED;
    let result: Awaitable<T>;
    try {
      result = fn();
    } catch (cause) {
      this.#storeFailed(
        operation,
        key,
        new SessionStoreError(operation, { timedOut: false, cause }),
      );
      return FAILED;
    }
    if (!isThenable(result)) {
      this.#storeAnswered();
      return { ok: true, value: result };
    }
    const timeoutMs = this.#storeTimeoutMs;
    return new Promise<StoreResult<T>>((resolve) => {
      let settled = false;
      const timer = backgroundTimer(
        this.#clock,
        () => {
          if (settled) return;
          settled = true;
          this.#storeFailed(
            operation,
            key,
            new SessionStoreError(operation, { timedOut: true, timeoutMs }),
          );
          resolve(FAILED);
        },
        timeoutMs,
      );
      result.then(
        (value) => {
          if (settled) return;
          settled = true;
          this.#clock.clearTimeout(timer);
          this.#storeAnswered();
          resolve({ ok: true, value });
        },
        (cause: unknown) => {
          // After a timeout the late failure was already reported; nothing more to say.
          if (settled) return;
          settled = true;
          this.#clock.clearTimeout(timer);
          this.#storeFailed(
            operation,
            key,
            new SessionStoreError(operation, { timedOut: false, cause }),
          );
          resolve(FAILED);
        },
      );
    });
  }

  #storeFailed(
    operation: SessionStoreOperation,
    key: string | undefined,
    error: SessionStoreError,
  ): void {
    this.emit('storeError', { operation, key, error });
    this.#retryAt = this.#clock.now() + this.#storeRetryMs;
    if (!this.#storeDown) {
      this.#storeDown = true;
      this.emit('storeDown', { error, retryInMs: this.#storeRetryMs });
    }
  }

  #storeAnswered(): void {
    if (!this.#storeDown) return;
    this.#storeDown = false;
    this.emit('storeUp');
  }

  /** Tracks a store call nobody awaits, so `close()` can wait for it. */
  #background(work: Awaitable<unknown>): void {
    if (!isThenable(work)) return;
    const p = Promise.resolve(work).finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  // ---------------------------------------------------------------- lifecycle

  #assertOpen(): void {
    if (this.#closed) throw new PoolClosedError('session manager');
  }

  /**
   * Stops listening to the pool, waits for background store writes (each bounded by
   * `storeTimeoutMs`) and closes the default store. A store passed in stays open. Idempotent;
   * `acquire()` afterwards throws {@link PoolClosedError}. Also runs when the pool closes.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.pool.off('removed', this.#onRemoved);
    this.pool.off('state', this.#onState);
    this.pool.off('drained', this.#onDrained);
    this.pool.off('close', this.#onPoolClose);
    this.#closing = (async () => {
      while (this.#pending.size > 0) await Promise.all(this.#pending);
      if (this.#ownsStore) await this.store.close?.();
    })();
    return this.#closing;
  }

  /** Same as {@link SessionPersistenceManager.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function parseInput(input: SessionAcquireInput | undefined): {
  key: string | undefined;
  cookie: string | null | undefined;
  ctx: PickContext | undefined;
} {
  if (input === undefined) return { key: undefined, cookie: undefined, ctx: undefined };
  if (typeof input === 'string') {
    return { key: checkString('key', input), cookie: undefined, ctx: undefined };
  }
  const o = checkOptions('acquire input', input, ['key', 'cookie', 'ctx']);
  const key = o.key === undefined ? undefined : checkString('key', o.key);
  if (o.cookie !== undefined && o.cookie !== null && typeof o.cookie !== 'string') {
    throw new LoadBalancerConfigError('cookie', o.cookie, 'a Cookie header string');
  }
  if (o.ctx !== undefined && !isPlainObject(o.ctx)) {
    throw new LoadBalancerConfigError('ctx', o.ctx, 'a PickContext object');
  }
  return { key, cookie: o.cookie, ctx: o.ctx };
}

function isThenable<T>(x: Awaitable<T>): x is Promise<T> {
  return (
    typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function'
  );
}

/** A clock reading in a cookie: whole ms, base 36. */
function stamp(ms: number): string {
  return Math.floor(ms).toString(36);
}

function unstamp(s: string): number | undefined {
  if (!/^-?[0-9a-z]{1,12}$/.test(s)) return undefined;
  const n = Number.parseInt(s, 36);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Adds a `Set-Cookie` header to a response. A response from `fetch` has immutable headers, so
 * when appending is refused the response is rebuilt around the same body stream.
 */
function withSetCookie(response: Response, setCookie: string): Response {
  try {
    response.headers.append('set-cookie', setCookie);
    return response;
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  const headers = new Headers(response.headers);
  headers.append('set-cookie', setCookie);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}
