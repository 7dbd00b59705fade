import { backgroundTimer, type Clock, systemClock, type TimerHandle } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { DiscoveryError } from '../errors/discovery-error.js';
import type { BackendSpec } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkOptions,
  checkString,
  isPlainObject,
  optDuration,
  optInterval,
} from '../validate.js';
import { BaseDiscovery } from './base-discovery.js';

/** What one poll found: the endpoints, and how long the answer stays valid when known. */
export interface PollResult {
  /** Every endpoint known now. */
  endpoints: readonly BackendSpec[];
  /**
   * How long this answer may be trusted (a DNS TTL, a `Cache-Control: max-age`), in ms. The next
   * poll happens after it, clamped to `[minRefreshMs, maxRefreshMs]`; without it, after
   * `intervalMs`.
   */
  ttlMs?: number;
}

/**
 * Fetches the current endpoints once. It receives an `AbortSignal` that fires when the poll
 * times out or the source closes; pass it to `fetch` or your client so the request stops too.
 */
export type PollFunction = (
  signal: AbortSignal,
) => Promise<readonly BackendSpec[] | PollResult> | readonly BackendSpec[] | PollResult;

/** Options of {@link PollingDiscovery} (and of the DNS sources built on it). */
export interface PollingDiscoveryOptions {
  /**
   * Fetches the endpoints once. Required unless a subclass overrides `poll()`.
   * @default undefined
   */
  poll?: PollFunction;
  /**
   * A short name for events and logs.
   * @default 'polling'
   */
  name?: string;
  /**
   * Time between polls when an answer carries no TTL, in ms (clamped like a TTL). grpc-js
   * re-resolves DNS at most every 30 s by default (`grpc.dns_min_time_between_resolutions_ms`).
   * @default 30000
   */
  intervalMs?: number;
  /**
   * The shortest time between two polls, in ms: a TTL of 0 or 1 s does not turn into a query
   * storm. Also the first retry delay after a failed or empty answer (Envoy's DNS clusters
   * refresh every 5 s by default, `dns_refresh_rate`).
   * @default 5000
   */
  minRefreshMs?: number;
  /**
   * The longest time between two polls, in ms, however long the TTL: removed endpoints leave
   * within this bound. Retries after repeated failures back off up to it too.
   * @default 300000
   */
  maxRefreshMs?: number;
  /**
   * How long one poll may take, in ms, measured on `clock`; then it counts as failed and its
   * signal aborts.
   * @default 10000
   */
  timeoutMs?: number;
  /**
   * Time source for the schedule and the timeout.
   * @default systemClock
   */
  clock?: Clock;
}

/**
 * The options of {@link PollingDiscoveryOptions} besides `poll`, which the DNS sources take too.
 * @internal
 */
export const SCHEDULE_KEYS = [
  'name',
  'intervalMs',
  'minRefreshMs',
  'maxRefreshMs',
  'timeoutMs',
  'clock',
] as const;

const POLLING_KEYS = ['poll', ...SCHEDULE_KEYS] as const;

/**
 * A source that asks a registry for the whole set of endpoints on a schedule: after each answer
 * it waits for the answer's TTL (or `intervalMs`), clamped to `[minRefreshMs, maxRefreshMs]`.
 * After a failed or empty answer it retries after `minRefreshMs`, doubling up to `maxRefreshMs`
 * while the trouble lasts. Every wait runs on the injected clock.
 *
 * @example
 * ```ts
 * const source = new PollingDiscovery({
 *   name: 'registry',
 *   intervalMs: 10_000,
 *   poll: async (signal) => {
 *     const res = await fetch('http://registry.internal/v1/services/api', { signal });
 *     if (!res.ok) throw new Error(`registry answered ${res.status}`);
 *     const nodes = (await res.json()) as { address: string; port: number }[];
 *     return nodes.map((n) => `http://${n.address}:${n.port}`);
 *   },
 * });
 * attachDiscovery(pool, source);
 * ```
 */
export class PollingDiscovery extends BaseDiscovery {
  /** The clock the schedule runs on. */
  readonly clock: Clock;
  readonly #poll: PollFunction | undefined;
  readonly #intervalMs: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #timeoutMs: number;
  #timer: TimerHandle | undefined;
  #nextAt: number | undefined;
  #inFlight: Promise<void> | undefined;
  #controller: AbortController | undefined;
  #misses = 0;
  #polls = 0;
  #lastTtlMs: number | undefined;

  constructor(options: PollingDiscoveryOptions = {}) {
    const o = checkOptions('PollingDiscoveryOptions', options, POLLING_KEYS);
    super(o.name === undefined ? 'polling' : checkString('name', o.name));
    this.#poll = o.poll === undefined ? undefined : checkFunction<PollFunction>('poll', o.poll);
    if (this.#poll === undefined && this.poll === PollingDiscovery.prototype.poll) {
      throw new LoadBalancerConfigError(
        'PollingDiscoveryOptions.poll',
        undefined,
        'a function (signal) => endpoints',
      );
    }
    this.clock = o.clock === undefined ? systemClock : checkClock('clock', o.clock);
    this.#intervalMs = optInterval('intervalMs', o.intervalMs, 30_000);
    this.#minMs = optInterval('minRefreshMs', o.minRefreshMs, 5_000);
    this.#maxMs = optDuration('maxRefreshMs', o.maxRefreshMs, 300_000, { min: this.#minMs });
    this.#timeoutMs = optDuration('timeoutMs', o.timeoutMs, 10_000, { min: 0, minExclusive: true });
  }

  /** Clock reading of the next scheduled poll, or undefined when none is scheduled. */
  get nextRefreshAt(): number | undefined {
    return this.#nextAt;
  }

  /** The TTL of the last good answer, in ms, when it had one. */
  get lastTtlMs(): number | undefined {
    return this.#lastTtlMs;
  }

  /** Polls finished so far (successful, empty or failed). */
  get polls(): number {
    return this.#polls;
  }

  /** Failed or empty answers in a row (0 after a good answer). */
  get consecutiveMisses(): number {
    return this.#misses;
  }

  /**
   * Polls now (unless a poll is already running, whose promise is returned) and reschedules.
   * Resolves once the answer has been handed to the listeners; never rejects.
   */
  refresh(): Promise<void> {
    if (this.closed || !this.started) return Promise.resolve();
    if (this.#inFlight !== undefined) return this.#inFlight;
    this.#clearTimer();
    const run = this.#run().finally(() => {
      if (this.#inFlight === run) this.#inFlight = undefined;
    });
    this.#inFlight = run;
    return run;
  }

  /** Resolves once no poll is running (at once when none is). Never rejects. */
  settled(): Promise<void> {
    return this.#inFlight ?? Promise.resolve();
  }

  /**
   * Fetches the endpoints once. Subclasses override this; the default calls the `poll` option.
   * Throw (or reject) to report a failure.
   */
  protected poll(signal: AbortSignal): Promise<readonly BackendSpec[] | PollResult> {
    return Promise.resolve(this.#poll!(signal));
  }

  protected override onStart(): void {
    void this.refresh();
  }

  protected override onClose(): void {
    this.#clearTimer();
    this.#controller?.abort(new DiscoveryError('closed', this.name));
  }

  async #run(): Promise<void> {
    const controller = new AbortController();
    this.#controller = controller;
    // A timeout or close() aborts the poll; the race ends at once even if poll() ignores it.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), {
        once: true,
      });
    });
    const timer = backgroundTimer(
      this.clock,
      () => {
        controller.abort(new DiscoveryError('timeout', this.name, this.#timeoutMs));
      },
      this.#timeoutMs,
    );
    let result: PollResult | undefined;
    let failure: { error: unknown } | undefined;
    try {
      const raw = await Promise.race([
        new Promise<readonly BackendSpec[] | PollResult>((resolve) =>
          resolve(this.poll(controller.signal)),
        ),
        aborted,
      ]);
      result = parseResult(this.name, raw);
    } catch (error) {
      failure = { error };
    } finally {
      this.clock.clearTimeout(timer);
      if (this.#controller === controller) this.#controller = undefined;
    }
    if (this.closed) return;
    this.#polls++;
    if (result !== undefined && result.endpoints.length > 0) {
      this.#misses = 0;
      this.#lastTtlMs = result.ttlMs;
      this.publish(result.endpoints);
      this.#schedule(result.ttlMs ?? this.#intervalMs);
      return;
    }
    this.#misses++;
    if (failure !== undefined) this.publishError(failure.error);
    else this.publish([]);
    // Retry soon after trouble, backing off while it lasts, as Envoy's dns_failure_refresh_rate.
    this.#schedule(this.#minMs * 2 ** Math.min(this.#misses - 1, 30));
  }

  #schedule(ms: number): void {
    this.#clearTimer();
    const delay = Math.min(Math.max(ms, this.#minMs), this.#maxMs);
    this.#nextAt = this.clock.now() + delay;
    this.#timer = backgroundTimer(
      this.clock,
      () => {
        this.#timer = undefined;
        this.#nextAt = undefined;
        void this.refresh();
      },
      delay,
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#nextAt = undefined;
  }
}

function parseResult(name: string, raw: unknown): PollResult {
  if (Array.isArray(raw)) return { endpoints: raw as BackendSpec[] };
  if (isPlainObject(raw) && Array.isArray(raw['endpoints'])) {
    const ttl = raw['ttlMs'];
    if (ttl === undefined) return { endpoints: raw['endpoints'] as BackendSpec[] };
    if (typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 0)
      return { endpoints: raw['endpoints'] as BackendSpec[], ttlMs: ttl };
  }
  throw new LoadBalancerConfigError(
    `${name}: poll() result`,
    raw,
    'an array of endpoints or { endpoints, ttlMs? } with ttlMs >= 0',
  );
}
