import { LRUCache } from 'lru-cache';
import { backgroundTimer, type Clock, systemClock, type TimerHandle } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import { checkClock, checkDuration, checkOptions, optInterval, optNumber } from '../validate.js';
import type { SessionRecord, SessionStore } from './store.js';

/** Options of {@link MemorySessionStore}. */
export interface MemorySessionStoreOptions {
  /**
   * The most sessions held at once; past it the least recently used session is evicted, so
   * memory stays bounded however many clients come (HAProxy's stick tables are bounded the
   * same way, by their `size`). About 130 bytes per session besides its key (see
   * docs/benchmarks.md), so the default costs roughly 15-20 MB plus keys when full. At most
   * 4,194,304 (2^22): the table reserves about 40 bytes per entry when it is created (lru-cache
   * allocates its index up front), so the largest one takes about 160 MB and a few seconds to
   * create.
   * @default 100000
   */
  maxEntries?: number;
  /**
   * How often expired sessions are swept out. Expired sessions are never returned in any case;
   * the sweep only frees their memory before LRU eviction would. 0 turns the sweep off.
   * @default 60000
   */
  cleanupIntervalMs?: number;
  /** Time source for expiry and the sweep timer. @default systemClock */
  clock?: Clock;
}

const STORE_KEYS = ['maxEntries', 'cleanupIntervalMs', 'clock'] as const;
/**
 * The largest `maxEntries`. lru-cache allocates its arrays for every entry when created: 2^31
 * entries failed with a RangeError (an array too long), 2^24 took 12 s and 630 MB.
 */
const MAX_ENTRIES = 2 ** 22;

/**
 * The default {@link SessionStore}: a bounded LRU table in this process, with per-session expiry
 * measured on the injected clock. Every method answers synchronously.
 *
 * @example
 * ```ts
 * const store = new MemorySessionStore({ maxEntries: 50_000 });
 * const sessions = new SessionPersistenceManager(pool, { store });
 * // ...
 * await sessions.close();
 * store.close(); // stores passed in are closed by their owner
 * ```
 */
export class MemorySessionStore implements SessionStore {
  /** The bound given as `maxEntries`. */
  readonly maxEntries: number;
  readonly #cache: LRUCache<string, SessionRecord>;
  readonly #clock: Clock;
  readonly #cleanupMs: number;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(options: MemorySessionStoreOptions = {}) {
    const o = checkOptions('MemorySessionStoreOptions', options, STORE_KEYS);
    this.maxEntries = optNumber('maxEntries', o.maxEntries, 100_000, {
      min: 1,
      max: MAX_ENTRIES,
      integer: true,
    });
    // 0 turns the sweep off; any other value is the period of a repeating timer.
    this.#cleanupMs =
      o.cleanupIntervalMs === 0 ? 0 : optInterval('cleanupIntervalMs', o.cleanupIntervalMs, 60_000);
    const clock = o.clock === undefined ? systemClock : checkClock('clock', o.clock);
    this.#clock = clock;
    // lru-cache takes the time source as `perf`, so expiry follows the injected clock. Two of its
    // habits are worked around here: it treats a start stamp of 0 as "no TTL" (a ManualClock
    // starts at 0), so readings are shifted to start at 1; and `ttlResolution` > 0 would cache
    // readings behind a real platform timer, so it is 0. `ttlAutopurge` (one platform timer per
    // entry) stays off: the sweep below uses the injected clock instead.
    const origin = clock.now();
    this.#cache = new LRUCache<string, SessionRecord>({
      max: this.maxEntries,
      ttlResolution: 0,
      perf: { now: () => clock.now() - origin + 1 },
    });
    this.#arm();
  }

  /** Sessions held now, including expired ones the sweep has not freed yet. */
  get size(): number {
    return this.#cache.size;
  }

  /** The session under `key`, unless it expired. Counts as a use for LRU eviction. */
  get(key: string): SessionRecord | undefined {
    this.#assertOpen();
    if (typeof key !== 'string') throw new LoadBalancerConfigError('key', key, 'a string');
    return this.#cache.get(key);
  }

  /** Stores `record` under `key` for `ttlMs` (evicting the least recently used when full). */
  set(key: string, record: SessionRecord, ttlMs: number): void {
    this.#assertOpen();
    if (typeof key !== 'string') throw new LoadBalancerConfigError('key', key, 'a string');
    if (
      typeof record !== 'object' ||
      record === null ||
      typeof record.backend !== 'string' ||
      typeof record.createdAt !== 'number'
    ) {
      throw new LoadBalancerConfigError('record', record, '{ backend: string, createdAt: number }');
    }
    checkDuration('ttlMs', ttlMs, { min: 0, minExclusive: true });
    this.#cache.set(key, record, { ttl: ttlMs });
  }

  /**
   * Stores `record` unless another binding replaced `expected` first; returns the binding held
   * afterwards (see {@link SessionStore.bind}).
   */
  bind(
    key: string,
    record: SessionRecord,
    ttlMs: number,
    expected: SessionRecord | undefined,
  ): SessionRecord | undefined {
    this.#assertOpen();
    if (typeof key !== 'string') throw new LoadBalancerConfigError('key', key, 'a string');
    const current = this.#cache.get(key);
    if (
      current !== undefined &&
      (expected === undefined ||
        current.backend !== expected.backend ||
        current.createdAt !== expected.createdAt)
    ) {
      return current;
    }
    this.set(key, record, ttlMs);
    return record;
  }

  /** Forgets the session under `key`; returns whether there was one. */
  delete(key: string): boolean {
    if (typeof key !== 'string') throw new LoadBalancerConfigError('key', key, 'a string');
    return this.#cache.delete(key);
  }

  /** Forgets every session pinned to `backend` (a full scan: backends leave rarely). */
  purgeBackend(backend: string): number {
    if (typeof backend !== 'string')
      throw new LoadBalancerConfigError('backend', backend, 'a backend id string');
    const doomed: string[] = [];
    // Collect first: deleting while lru-cache iterates its own linked list is unsafe.
    for (const [key, record] of this.#cache.entries()) {
      if (record.backend === backend) doomed.push(key);
    }
    for (const key of doomed) this.#cache.delete(key);
    return doomed.length;
  }

  /** Frees every expired session now; returns whether any was freed. */
  prune(): boolean {
    return this.#cache.purgeStale();
  }

  /** Forgets every session. */
  clear(): void {
    this.#cache.clear();
  }

  /**
   * Stops the sweep timer and forgets every session. Idempotent; `get` and `set` afterwards
   * throw {@link PoolClosedError}.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#cache.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new PoolClosedError('memory session store');
  }

  #arm(): void {
    if (this.#cleanupMs <= 0 || this.#closed) return;
    this.#timer = backgroundTimer(
      this.#clock,
      () => {
        this.#timer = undefined;
        this.#cache.purgeStale();
        this.#arm();
      },
      this.#cleanupMs,
    );
  }
}
