/**
 * The contract between `SessionPersistenceManager` and the table that maps a session key
 * to a backend. Kept free of implementations so a store never imports the manager.
 */

/** A value that may arrive now or later: stores in memory answer at once, remote ones later. */
export type Awaitable<T> = T | Promise<T>;

/** One sticky session: the backend it is pinned to and when the binding was made. */
export interface SessionRecord {
  /** The id of the backend the session is pinned to (as in `BackendView.id`). */
  readonly backend: string;
  /**
   * Clock reading when the session was bound, for the absolute maximum life. Replicas sharing a
   * store compare these readings, so they need clocks on the same scale (the default
   * `systemClock` counts milliseconds since the epoch).
   */
  readonly createdAt: number;
}

/**
 * Where sticky sessions live. Methods may answer synchronously (the in-memory store) or with a
 * promise (a shared store such as Redis); the manager bounds every promise with a short
 * timeout, so a slow store never holds a call up for long.
 *
 * @example
 * ```ts
 * class MapStore implements SessionStore {
 *   readonly #map = new Map<string, SessionRecord>();
 *   get(key: string) { return this.#map.get(key); }
 *   set(key: string, record: SessionRecord) { this.#map.set(key, record); }
 *   delete(key: string) { return this.#map.delete(key); }
 * }
 * ```
 */
export interface SessionStore {
  /** The session stored under `key`, or `undefined` when there is none or it expired. */
  get(key: string): Awaitable<SessionRecord | undefined>;
  /**
   * Stores (or refreshes) a session; it expires `ttlMs` after this call unless set again.
   * Sliding expiry is done by setting the same record again on use.
   */
  set(key: string, record: SessionRecord, ttlMs: number): Awaitable<void>;
  /**
   * Writes `record` only if the key still holds `expected` (the record the caller read, or
   * `undefined` for none) or holds no valid session, as one atomic step, and returns the record
   * the key holds afterwards: `record` when it was written, else the binding another writer made
   * first (or `undefined` when the key holds nothing usable). This lets the first of two replicas
   * that bind one new session at once win, and both use its backend. Optional: without it the
   * manager uses `set`, and the last writer wins.
   */
  bind?(
    key: string,
    record: SessionRecord,
    ttlMs: number,
    expected: SessionRecord | undefined,
  ): Awaitable<SessionRecord | undefined>;
  /** Forgets a session. What it returns (often whether there was one) is not used. */
  delete(key: string): Awaitable<unknown>;
  /**
   * Forgets every session pinned to `backend` (a backend left the pool) and returns how many
   * went. Optional: stores that cannot enumerate cheaply leave it out, and the manager then
   * rebinds such sessions when they are next used.
   */
  purgeBackend?(backend: string): Awaitable<number>;
  /** Releases what the store holds (timers, connections). */
  close?(): Awaitable<void>;
}
