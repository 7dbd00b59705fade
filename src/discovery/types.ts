import type { BackendSpec } from '../types.js';

/**
 * One answer of a discovery source: the complete current set of endpoints, or a failure.
 *
 * An answer is always the whole set, never a delta, so a missed answer cannot leave the pool
 * wrong for good: the next one corrects it.
 */
export type DiscoveryAnswer =
  | {
      readonly ok: true;
      /**
       * Every endpoint the source knows now, as URL strings or {@link BackendInit}s with weights,
       * zones and priorities where the source knows them. An empty list is a valid answer that
       * the pool never applies (see {@link DiscoveryBinding}).
       */
      readonly endpoints: readonly BackendSpec[];
    }
  | {
      readonly ok: false;
      /** Why the source could not answer (a DNS error with its `code`, an HTTP failure, ...). */
      readonly error: unknown;
    };

/** Receives the answers of a {@link Discovery} source. */
export type DiscoveryListener = (answer: DiscoveryAnswer) => void;

/**
 * A source of endpoints: a static list, DNS, a service registry. It pushes answers to its
 * subscribers; {@link attachDiscovery} applies them to a pool.
 *
 * Contract:
 * - `subscribe(listener)` registers a listener and returns a function that unregisters it. A
 *   source that already has a good answer hands it to the new listener at once.
 * - `start()` begins producing answers (idempotent). Sources do nothing before it.
 * - `close()` stops every timer and request of the source; no answer follows it. Idempotent.
 * - A source never throws from a background refresh: failures are answers with `ok: false`.
 *
 * Extend {@link BaseDiscovery} to push answers from a watch API, or use
 * {@link PollingDiscovery} to poll one.
 */
export interface Discovery {
  /** A short name for events and logs, e.g. `dns:api.internal`. */
  readonly name: string;
  /** Registers `listener`; returns the function that unregisters it. */
  subscribe(listener: DiscoveryListener): () => void;
  /** Begins producing answers. Idempotent. */
  start(): void;
  /**
   * Asks for a fresh answer now, when the source can fetch one on demand. Resolves once the
   * answer (or the failure) has been handed to the listeners; never rejects.
   */
  refresh?(): Promise<void>;
  /** Stops the source: timers cleared, requests cancelled, no more answers. Idempotent. */
  close(): Promise<void>;
}
