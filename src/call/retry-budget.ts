import { type Clock, systemClock } from '../clock.js';
import { checkClock, checkOptions, optDuration, optNumber } from '../validate.js';

/** Options of {@link RetryBudget}. Defaults are Finagle's `RetryBudget` defaults. */
export interface RetryBudgetOptions {
  /**
   * How long a deposit (one call) counts, in ms. Finagle allows 1 s to 60 s.
   * @default 10000
   */
  ttlMs?: number;
  /**
   * Retries allowed per second whatever the call rate, so clients that have just started or send
   * few calls can still retry. 0 gives no floor.
   * @default 10
   */
  minRetriesPerSec?: number;
  /**
   * Retries allowed as a fraction of calls on top of the floor (0.2: one retry per five calls).
   * @default 0.2
   */
  percentCanRetry?: number;
  /** Time source. @default systemClock */
  clock?: Clock;
}

const KEYS = ['ttlMs', 'minRetriesPerSec', 'percentCanRetry', 'clock'] as const;
/** Fixed-point scale of Finagle's token bucket: a deposit is worth 1000 tokens. */
const SCALE = 1000;
/** Finagle's withdrawal is an Int: at most 2^31 - 1. */
const MAX_WITHDRAWAL = 2 ** 31 - 1;
/** The window is kept as this many slices; a deposit expires with its slice. */
const SLICES = 10;

/**
 * A retry budget, after Finagle's `RetryBudget` (finagle.github.io/blog/2016/02/08/retry-budgets):
 * every call deposits, every retry withdraws, and deposits expire after `ttlMs`. Retries may add
 * at most `percentCanRetry` to the call rate, plus `minRetriesPerSec`, so retries cannot multiply
 * an outage. Time comes from the injected clock; nothing is scheduled.
 *
 * A budget may be shared by several balanced fetches (pass the same instance).
 *
 * @example
 * ```ts
 * const budget = new RetryBudget({ percentCanRetry: 0.1 });
 * const usersFetch = createBalancedFetch(usersPool, { retryBudget: budget });
 * const ordersFetch = createBalancedFetch(ordersPool, { retryBudget: budget });
 * ```
 */
export class RetryBudget {
  /** The configured `ttlMs`. */
  readonly ttlMs: number;
  /** The configured `minRetriesPerSec`. */
  readonly minRetriesPerSec: number;
  /** The configured `percentCanRetry`. */
  readonly percentCanRetry: number;

  readonly #clock: Clock;
  readonly #deposit: number;
  readonly #withdrawal: number;
  readonly #reserve: number;
  readonly #sliceMs: number;
  readonly #slices = new Float64Array(SLICES);
  #index = 0;
  #sliceStart: number;
  #sum = 0;

  constructor(options: RetryBudgetOptions = {}) {
    const o = checkOptions('RetryBudgetOptions', options, KEYS);
    this.ttlMs = optDuration('ttlMs', o.ttlMs, 10_000, { min: 1000, max: 60_000 });
    this.minRetriesPerSec = optNumber('minRetriesPerSec', o.minRetriesPerSec, 10, { min: 0 });
    this.percentCanRetry = optNumber('percentCanRetry', o.percentCanRetry, 0.2, {
      min: 0,
      max: 1000,
    });
    this.#clock = o.clock === undefined ? systemClock : checkClock('clock', o.clock);
    // Finagle's fixed point: with no percentage, deposits are worthless and a retry costs 1, so
    // only the floor allows retries.
    this.#deposit = this.percentCanRetry === 0 ? 0 : SCALE;
    // Finagle keeps the withdrawal in an Int (`(scaleFactor / percentCanRetry).toInt`, which
    // saturates at 2^31 - 1); a tiny percentage would otherwise make it infinite, and the
    // balance NaN.
    this.#withdrawal =
      this.percentCanRetry === 0 ? 1 : Math.min(SCALE / this.percentCanRetry, MAX_WITHDRAWAL);
    this.#reserve = this.minRetriesPerSec * (this.ttlMs / 1000) * this.#withdrawal;
    this.#sliceMs = this.ttlMs / SLICES;
    this.#sliceStart = this.#clock.now();
  }

  /** Records one call (done once per call, before its first attempt). */
  deposit(): void {
    if (this.#deposit === 0) return;
    this.#add(this.#deposit, this.#clock.now());
  }

  /**
   * {@link RetryBudget.deposit} with a reading of `clock` its caller already has (a clock read
   * costs about 60 ns on some virtual machines, and a call reads it often enough).
   * @internal
   */
  depositAt(clock: Clock, now: number): void {
    if (this.#deposit === 0) return;
    this.#add(this.#deposit, clock === this.#clock ? now : this.#clock.now());
  }

  /**
   * Takes one retry from the budget.
   * @returns whether the retry may go ahead.
   */
  tryWithdraw(): boolean {
    const now = this.#clock.now();
    this.#roll(now);
    if (this.#sum + this.#reserve < this.#withdrawal) return false;
    this.#add(-this.#withdrawal, now);
    return true;
  }

  /** How many retries the budget would allow now. */
  balance(): number {
    this.#roll(this.#clock.now());
    return Math.max(0, Math.floor((this.#sum + this.#reserve) / this.#withdrawal + 1e-9));
  }

  #add(amount: number, now: number): void {
    this.#roll(now);
    this.#slices[this.#index]! += amount;
    this.#sum += amount;
  }

  /** Expires the slices older than the window (a windowed adder over the clock). */
  #roll(now: number): void {
    const elapsed = now - this.#sliceStart;
    if (elapsed < this.#sliceMs) return;
    const steps = Math.floor(elapsed / this.#sliceMs);
    const clear = Math.min(steps, SLICES);
    for (let i = 0; i < clear; i++) {
      this.#index = (this.#index + 1) % SLICES;
      this.#sum -= this.#slices[this.#index]!;
      this.#slices[this.#index] = 0;
    }
    // A whole window went by: every slice is empty; drop accumulated rounding too.
    if (clear === SLICES) this.#sum = 0;
    this.#sliceStart += steps * this.#sliceMs;
  }
}

/** Validates the `retryBudget` option of a balanced fetch. @internal */
export function toRetryBudget(value: unknown, clock: Clock): RetryBudget | undefined {
  if (value === false) return undefined;
  if (value instanceof RetryBudget) return value;
  if (value === undefined) return new RetryBudget({ clock });
  checkOptions('retryBudget', value as RetryBudgetOptions, KEYS);
  const o = value as RetryBudgetOptions;
  return new RetryBudget({ ...o, clock: o.clock ?? clock });
}
