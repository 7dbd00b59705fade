import type { Clock } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { checkOptions, isPlainObject, optDuration, optNumber } from '../validate.js';
import { RetryBudget } from './retry-budget.js';

/**
 * Options of hedged (backup) requests: when the first attempt of a call that is safe to repeat has
 * not answered within a delay, one more attempt goes to another backend, and the first response
 * wins (Finagle's `BackupRequestFilter`, gRPC's hedging policy; Dean and Barroso, "The Tail at
 * Scale", CACM 2013).
 */
export interface HedgeOptions {
  /**
   * A fixed delay, in ms, after which the hedge is sent. Unless given, the delay is the
   * `(1 - maxExtraLoad)` percentile of the recent time to response headers (p95 with the default
   * `maxExtraLoad`), never below `minAfterMs`; until `minSamples` latencies were seen, no hedge
   * is sent.
   * @default the (1 - maxExtraLoad) percentile of recent latencies
   */
  afterMs?: number;
  /**
   * The most extra requests hedges may add, as a fraction of calls: it sets both the percentile
   * the delay is taken from and a budget that hedges spend (as Finagle's `maxExtraLoad`), on top
   * of `minHedgesPerSec`. A hedge also needs the retry budget, so hedges and retries together
   * never exceed it.
   * @default 0.05
   */
  maxExtraLoad?: number;
  /**
   * Hedges allowed per second whatever the call rate, so a client sending few calls can hedge
   * too (the budget is otherwise earned by calls: one hedge per `1 / maxExtraLoad` calls over
   * the last 10 s). 0 makes `maxExtraLoad` a strict bound.
   * @default 1
   */
  minHedgesPerSec?: number;
  /**
   * The shortest delay the percentile may give, in ms, so a service answering in ~0 ms is not
   * hedged at once on every call.
   * @default 1 (Finagle's `MinSendBackupAfterMs`)
   */
  minAfterMs?: number;
  /**
   * How far back latency samples count, in ms (at most the last 1024 samples are kept).
   * @default 30000 (Finagle's window: 10 buckets of 3 s)
   */
  windowMs?: number;
  /**
   * Samples needed in the window before a percentile delay is trusted.
   * @default 20
   */
  minSamples?: number;
}

const KEYS = [
  'afterMs',
  'maxExtraLoad',
  'minHedgesPerSec',
  'minAfterMs',
  'windowMs',
  'minSamples',
] as const;
/** Samples kept (a power of two). */
const SIZE = 1024;
/** How often the percentile is recomputed, in ms of the clock (Finagle refreshes every 3 s). */
const REFRESH_MS = 1000;
/** Or after this many new samples, whichever comes first. */
const REFRESH_SAMPLES = SIZE / 8;

/** What `fetch.explainHedging()` (and the dispatcher's) reports. */
export interface HedgeExplanation {
  /** `fixed` (`afterMs`) or `percentile` (taken from recent latencies). */
  readonly mode: 'fixed' | 'percentile';
  /** The percentile the delay is taken from (95 with the defaults), for `percentile`. */
  readonly percentile: number | undefined;
  /** The delay a call starting now would wait before its hedge; undefined while there is none. */
  readonly delayMs: number | undefined;
  /** Latency samples in the window. */
  readonly samples: number;
  /** Hedges the budget would allow now. */
  readonly budget: number;
  /** A sentence saying how the delay was chosen, or why no hedge would be sent. */
  readonly note: string;
}

/**
 * The hedging policy of one balanced fetch (or dispatcher): the delay before a hedge, from a
 * sliding window of latencies on the injected clock, and the budget hedges spend.
 */
export class Hedging {
  /** The fixed delay, when configured. */
  readonly afterMs: number | undefined;
  /** The configured `maxExtraLoad`. */
  readonly maxExtraLoad: number;
  /** The configured `minAfterMs`. */
  readonly minAfterMs: number;
  /** The configured `windowMs`. */
  readonly windowMs: number;
  /** The configured `minSamples`. */
  readonly minSamples: number;
  /** The configured `minHedgesPerSec`. */
  readonly minHedgesPerSec: number;
  /** The budget hedges spend: `maxExtraLoad` of calls, plus `minHedgesPerSec`. */
  readonly budget: RetryBudget;

  readonly #clock: Clock;
  readonly #values = new Float64Array(SIZE);
  readonly #stamps = new Float64Array(SIZE);
  readonly #scratch = new Float64Array(SIZE);
  #next = 0;
  #filled = 0;
  #sinceRefresh = 0;
  #refreshedAt = Number.NEGATIVE_INFINITY;
  #delay: number | undefined;
  #inWindow = 0;

  constructor(options: HedgeOptions, clock: Clock) {
    const o = checkOptions('hedge', options, KEYS);
    this.afterMs =
      o.afterMs === undefined ? undefined : optDuration('hedge.afterMs', o.afterMs, 0, { min: 0 });
    this.maxExtraLoad = optNumber('hedge.maxExtraLoad', o.maxExtraLoad, 0.05, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    this.minAfterMs = optDuration('hedge.minAfterMs', o.minAfterMs, 1, { min: 0 });
    this.windowMs = optDuration('hedge.windowMs', o.windowMs, 30_000, {
      min: 0,
      minExclusive: true,
    });
    this.minSamples = optNumber('hedge.minSamples', o.minSamples, 20, {
      min: 1,
      max: SIZE,
      integer: true,
    });
    this.minHedgesPerSec = optNumber('hedge.minHedgesPerSec', o.minHedgesPerSec, 1, { min: 0 });
    this.#clock = clock;
    // Finagle's BackupRequestFilter spends a RetryBudget with percentCanRetry = maxExtraLoad.
    this.budget = new RetryBudget({
      percentCanRetry: this.maxExtraLoad,
      minRetriesPerSec: this.minHedgesPerSec,
      clock,
    });
  }

  /** The percentile the delay is taken from, e.g. 95. */
  get percentile(): number {
    return 100 * (1 - this.maxExtraLoad);
  }

  /** Records one attempt's time to response headers. */
  record(latencyMs: number): void {
    this.#values[this.#next] = latencyMs;
    this.#stamps[this.#next] = this.#clock.now();
    this.#next = (this.#next + 1) & (SIZE - 1);
    if (this.#filled < SIZE) this.#filled++;
    this.#sinceRefresh++;
  }

  /** The delay before a hedge for a call starting now; undefined when no hedge may be sent. */
  delayMs(): number | undefined {
    if (this.afterMs !== undefined) return this.afterMs;
    const now = this.#clock.now();
    if (
      now - this.#refreshedAt >= REFRESH_MS ||
      this.#sinceRefresh >= REFRESH_SAMPLES ||
      // Without a delay yet, the first sample that can complete the window counts at once:
      // hedging starts with the `minSamples`-th latency, not up to a refresh period later.
      (this.#delay === undefined &&
        this.#sinceRefresh > 0 &&
        this.#inWindow + this.#sinceRefresh >= this.minSamples)
    ) {
      this.#refresh(now);
    }
    return this.#delay;
  }

  /** Whether the budget allows one more hedge now. */
  affordable(): boolean {
    return this.budget.balance() > 0;
  }

  /** Says how the delay is chosen now and what the budget allows. */
  explain(): HedgeExplanation {
    const delayMs = this.delayMs();
    const budget = this.budget.balance();
    const fixed = this.afterMs !== undefined;
    // The samples in the window now, not at the last refresh of the percentile.
    const samples = this.#countInWindow(this.#clock.now());
    let note: string;
    if (fixed) {
      note = `hedge after a fixed ${this.afterMs} ms`;
    } else if (delayMs === undefined) {
      note = `no hedge yet: ${samples} of the ${this.minSamples} latency samples needed in the last ${this.windowMs} ms`;
    } else {
      note = `hedge after ${round(delayMs)} ms, the p${round(this.percentile)} of ${samples} latencies in the last ${this.windowMs} ms (at least ${this.minAfterMs} ms)`;
    }
    if (budget === 0) note += '; the hedge budget is spent, so no hedge is sent now';
    return {
      mode: fixed ? 'fixed' : 'percentile',
      percentile: fixed ? undefined : this.percentile,
      delayMs,
      samples,
      budget,
      note,
    };
  }

  #countInWindow(now: number): number {
    let n = 0;
    const from = now - this.windowMs;
    for (let i = 0; i < this.#filled; i++) if (this.#stamps[i]! >= from) n++;
    return n;
  }

  #refresh(now: number): void {
    this.#refreshedAt = now;
    this.#sinceRefresh = 0;
    const from = now - this.windowMs;
    let n = 0;
    for (let i = 0; i < this.#filled; i++) {
      if (this.#stamps[i]! >= from) this.#scratch[n++] = this.#values[i]!;
    }
    this.#inWindow = n;
    if (n < this.minSamples) {
      this.#delay = undefined;
      return;
    }
    const sorted = this.#scratch.subarray(0, n).sort();
    // Nearest-rank percentile.
    const rank = Math.min(n - 1, Math.max(0, Math.ceil((this.percentile / 100) * n) - 1));
    this.#delay = Math.max(this.minAfterMs, sorted[rank]!);
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

/** Validates the `hedge` option: `false`/undefined (off), `true` (defaults) or options. @internal */
export function toHedging(value: unknown, clock: Clock): Hedging | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return new Hedging({}, clock);
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError('hedge', value, 'false, true or hedge options');
  }
  return new Hedging(value as HedgeOptions, clock);
}
