import { EventEmitter } from 'eventemitter3';
import { backgroundTimer, type Clock, type TimerHandle } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import { blamesBackend } from '../failure.js';
import { BackendPool } from '../pool/backend-pool.js';
import type { Random } from '../random.js';
import type { BackendView, LeaseOutcome } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkNumber,
  checkOptions,
  checkRandom,
  isPlainObject,
  optDuration,
  optInterval,
  optNumber,
} from '../validate.js';

/**
 * Success-rate ejection (Envoy `success_rate_*`, grpc-js `successRateEjection`): at each
 * interval, among backends with enough requests, eject those whose success rate falls below
 * `mean - stdevFactor × stdev`.
 */
export interface SuccessRateOptions {
  /**
   * Judge only when at least this many backends have `requestVolume` requests in the interval
   * (Envoy `success_rate_minimum_hosts`, grpc-js `minimum_hosts`).
   * @default 5
   */
  minimumHosts?: number;
  /**
   * Requests a backend needs in the interval to be judged (Envoy `success_rate_request_volume`).
   * @default 100
   */
  requestVolume?: number;
  /**
   * How many standard deviations below the mean success rate a backend must fall. Envoy writes
   * it as `success_rate_stdev_factor: 1900` (divided by 1000).
   * @default 1.9
   */
  stdevFactor?: number;
}

/**
 * Failure-percentage ejection (Envoy `failure_percentage_*`, grpc-js
 * `failurePercentageEjection`): eject a backend whose share of failed requests in the interval
 * reaches `threshold` percent.
 */
export interface FailurePercentageOptions {
  /**
   * Failure percentage (0-100) at or above which a backend is ejected.
   * @default 85
   */
  threshold?: number;
  /**
   * Judge only when at least this many backends have `requestVolume` requests in the interval.
   * @default 5
   */
  minimumHosts?: number;
  /**
   * Requests a backend needs in the interval to be judged.
   * @default 50
   */
  requestVolume?: number;
}

/** Backpressure from `Retry-After` on ordinary HTTP responses. */
export interface RetryAfterOptions {
  /**
   * The longest ejection a `Retry-After` can cause. Long enough to honour ordinary back-off,
   * short enough that a misconfigured server (`Retry-After: 86400`) cannot remove a backend for a
   * day.
   * @default 60000
   */
  maxMs?: number;
  /**
   * Statuses whose `Retry-After` ejects the backend: 429 (RFC 6585) and 503 (RFC 9110
   * §15.6.4). An outcome without a status (a non-HTTP protocol reporting back-off) is honoured too.
   * @default [429, 503]
   */
  statuses?: readonly number[];
}

/** Options of {@link OutlierDetector}. Defaults follow Envoy's outlier detection. */
export interface OutlierDetectorOptions {
  /**
   * Eject a backend after this many consecutive failures (Envoy `consecutive_5xx`); `false` turns
   * it off.
   * @default 5
   */
  consecutiveFailures?: number | false;
  /**
   * The analysis interval: success rate and failure percentage are computed over the requests of
   * one interval, and the ejection multiplier falls by one at each analysis that finds the
   * backend back in service for at least a full interval (Envoy and grpc-js `interval`).
   * @default 10000
   */
  intervalMs?: number;
  /**
   * Ejection time for a first ejection. The n-th ejection in a row lasts n × this, up to
   * `maxEjectionMs` (Envoy `base_ejection_time`).
   * @default 30000
   */
  baseEjectionMs?: number;
  /**
   * The longest an ejection lasts, however often the backend was ejected (Envoy
   * `max_ejection_time`; the cap is never below `baseEjectionMs`). The multiplier stops growing
   * once multiplier × `baseEjectionMs` reaches this + `baseEjectionMs` (11 with the defaults), so
   * a backend that recovers is not held at the cap for long.
   * @default 300000
   */
  maxEjectionMs?: number;
  /**
   * A random extra of up to this many ms per ejection, so backends ejected together do not return
   * together (Envoy `max_ejection_time_jitter`).
   * @default 0
   */
  ejectionJitterMs?: number;
  /**
   * At most this percentage of backends may be ejected at once, counting every ejected backend
   * whatever ejected it. The rule is grpc-js's (gRFC A50, and Envoy's before 1.31): before each
   * ejection, the share already ejected must be below this, so while none is ejected one backend
   * always may be, even in a small pool (10% of 3 backends rounds to none). Envoy 1.31 and later
   * require (ejected + 1) / backends <= this instead, which at 10% ejects nothing in a pool of
   * fewer than 10 backends unless `always_eject_one_host` is set; client-side pools are mostly
   * that small, so loadwise keeps grpc-js's rule. 0 turns outlier ejection off (`Retry-After`
   * still applies). Envoy `max_ejection_percent`.
   * @default 10
   */
  maxEjectionPercent?: number;
  /**
   * Success-rate ejection; `false` turns it off. On by default, as in Envoy
   * (`enforcing_success_rate: 100`).
   * @default { minimumHosts: 5, requestVolume: 100, stdevFactor: 1.9 }
   */
  successRate?: SuccessRateOptions | false;
  /**
   * Failure-percentage ejection; pass `{}` for the defaults. Off by default, as in Envoy
   * (`enforcing_failure_percentage: 0`); its figures are Envoy's and grpc-js's
   * (`threshold: 85`, `minimumHosts: 5`, `requestVolume: 50`).
   * @default false
   */
  failurePercentage?: FailurePercentageOptions | false;
  /**
   * `Retry-After` on 429/503 takes the backend out for the stated time (`outcome.retryAfterMs`,
   * see `parseRetryAfter`), capped; `false` turns it off. Not limited by `maxEjectionPercent`:
   * the server asked, and if every backend asks, the pool's panic rule keeps calls flowing.
   * @default { maxMs: 60000, statuses: [429, 503] }
   */
  retryAfter?: RetryAfterOptions | false;
  /**
   * Which outcomes count as failures. Caller aborts (`failure: 'aborted'`) never count, whatever
   * this says. The default counts failures without a status (connect errors, timeouts, resets)
   * and 5xx, like Envoy's `consecutive_5xx` with local-origin errors mapped to 5xx; a 4xx is the
   * caller's fault, not the backend's.
   * @default (o) => !o.ok && (o.status === undefined || o.status >= 500)
   */
  isFailure?: (outcome: LeaseOutcome) => boolean;
  /** Time source. @default the pool's clock */
  clock?: Clock;
  /** Random source for ejection jitter. @default the pool's random */
  random?: Random;
}

/** Why a backend was ejected. */
export type EjectionCause =
  | 'consecutive-failures'
  | 'success-rate'
  | 'failure-percentage'
  | 'retry-after';

/** Events of an {@link OutlierDetector}. */
export interface OutlierDetectorEvents {
  /** A backend was ejected. */
  eject: (e: {
    backend: BackendView;
    cause: EjectionCause;
    durationMs: number;
    detail: string;
    /** How many outlier ejections the backend's multiplier counts now (0 for `retry-after`). */
    ejections: number;
  }) => void;
  /** An outlier was found but not ejected because `maxEjectionPercent` was reached. */
  'eject-skipped': (e: {
    backend: BackendView;
    cause: EjectionCause;
    detail: string;
    ejected: number;
    total: number;
    maxEjectionPercent: number;
  }) => void;
}

/** The detector's figures for one backend, from {@link OutlierDetector.status}. */
export interface OutlierStatus {
  readonly id: string;
  readonly consecutiveFailures: number;
  /**
   * The ejection multiplier: the next ejection lasts (this + 1) × `baseEjectionMs`, up to
   * `maxEjectionMs`.
   */
  readonly ejections: number;
  /** Successes and failures counted in the current interval. */
  readonly intervalSuccesses: number;
  readonly intervalFailures: number;
}

const DETECTOR_KEYS = [
  'consecutiveFailures',
  'intervalMs',
  'baseEjectionMs',
  'maxEjectionMs',
  'ejectionJitterMs',
  'maxEjectionPercent',
  'successRate',
  'failurePercentage',
  'retryAfter',
  'isFailure',
  'clock',
  'random',
] as const;

interface Tracked {
  readonly backend: BackendView;
  consecutive: number;
  multiplier: number;
  ok: number;
  fail: number;
  /** When the backend last came back from an ejection (Envoy's `lastUnejectionTime`). */
  returnedAt: number | undefined;
  /** Whether it was ejected at some point since the last analysis. */
  ejectedInInterval: boolean;
}

const defaultIsFailure = (o: LeaseOutcome): boolean =>
  !o.ok && (o.status === undefined || o.status >= 500);

/**
 * Passive health checking from real call outcomes (lease releases): ejects a backend after
 * consecutive failures, when its success rate or failure percentage stands out over an interval,
 * or when it answers 429/503 with `Retry-After`. Ejections go to the pool (`pool.eject`), which
 * ends them on time or when an active probe passes.
 *
 * @example
 * ```ts
 * const detector = new OutlierDetector(pool, { consecutiveFailures: 5, maxEjectionPercent: 50 });
 * detector.on('eject', (e) => log.warn(`${e.backend.id} ejected for ${e.durationMs} ms: ${e.detail}`));
 * ```
 */
export class OutlierDetector extends EventEmitter<OutlierDetectorEvents> {
  readonly #pool: BackendPool;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #consecutive: number | undefined;
  readonly #intervalMs: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #jitterMs: number;
  readonly #maxPercent: number;
  readonly #successRate: Required<SuccessRateOptions> | undefined;
  readonly #failurePct: Required<FailurePercentageOptions> | undefined;
  readonly #retryAfter: { maxMs: number; statuses: ReadonlySet<number> } | undefined;
  readonly #isFailure: (o: LeaseOutcome) => boolean;

  readonly #tracked = new Map<string, Tracked>();
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(pool: BackendPool, options: OutlierDetectorOptions = {}) {
    super();
    if (!(pool instanceof BackendPool)) {
      throw new LoadBalancerConfigError('pool', pool, 'a BackendPool');
    }
    if (pool.closed) throw new PoolClosedError();
    const o = checkOptions('OutlierDetectorOptions', options, DETECTOR_KEYS);
    this.#pool = pool;
    this.#clock = o.clock === undefined ? pool.clock : checkClock('clock', o.clock);
    this.#random = o.random === undefined ? pool.random : checkRandom('random', o.random);
    this.#consecutive =
      o.consecutiveFailures === false
        ? undefined
        : optNumber('consecutiveFailures', o.consecutiveFailures, 5, { min: 1, integer: true });
    const positive = { min: 0, minExclusive: true };
    this.#intervalMs = optInterval('intervalMs', o.intervalMs, 10_000);
    this.#baseMs = optDuration('baseEjectionMs', o.baseEjectionMs, 30_000, positive);
    // grpc-js and Envoy never let the cap fall below the base time.
    this.#maxMs = Math.max(
      this.#baseMs,
      optDuration('maxEjectionMs', o.maxEjectionMs, 300_000, positive),
    );
    this.#jitterMs = optDuration('ejectionJitterMs', o.ejectionJitterMs, 0, { min: 0 });
    this.#maxPercent = optNumber('maxEjectionPercent', o.maxEjectionPercent, 10, {
      min: 0,
      max: 100,
    });
    this.#successRate = parseSuccessRate(o.successRate);
    this.#failurePct = parseFailurePercentage(o.failurePercentage);
    this.#retryAfter = parseRetryAfterOptions(o.retryAfter);
    this.#isFailure =
      o.isFailure === undefined
        ? defaultIsFailure
        : checkFunction<(o: LeaseOutcome) => boolean>('isFailure', o.isFailure);

    pool.on('release', this.#onRelease);
    pool.on('state', this.#onState);
    pool.on('removed', this.#onRemoved);
    pool.on('close', this.#onPoolClose);
    this.#arm();
  }

  /** Whether `close()` was called (or the pool closed). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The detector's figures for every backend it has seen calls for. */
  status(): readonly OutlierStatus[] {
    return [...this.#tracked.entries()].map(([id, t]) => ({
      id,
      consecutiveFailures: t.consecutive,
      ejections: t.multiplier,
      intervalSuccesses: t.ok,
      intervalFailures: t.fail,
    }));
  }

  /**
   * Runs the interval analysis now (success rate, failure percentage, multiplier decay) and
   * starts a new interval. The detector does this on its own every `intervalMs`.
   */
  analyze(): void {
    if (this.#closed) throw new PoolClosedError('outlier detector');
    this.#sweep();
    this.#arm();
  }

  /** Stops listening to the pool and clears the interval timer. Ejections in force run out on their own. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pool.off('release', this.#onRelease);
    this.#pool.off('state', this.#onState);
    this.#pool.off('removed', this.#onRemoved);
    this.#pool.off('close', this.#onPoolClose);
    this.#tracked.clear();
  }

  // ---------------------------------------------------------------- observations

  readonly #onRelease = (e: { backend: BackendView; outcome: LeaseOutcome }): void => {
    const { backend, outcome } = e;
    // A call the caller gave up on, or that failed in this process, says nothing about the
    // backend.
    if (!blamesBackend(outcome.failure)) return;
    if (this.#pool.get(backend.id) !== backend) return;
    if (this.#honourRetryAfter(backend, outcome)) return;
    // Calls that reach an ejected backend (in flight before, or under panic) do not extend it.
    if (backend.state === 'ejected') return;
    const t = this.#trackedFor(backend);
    if (this.#isFailure(outcome)) {
      t.fail++;
      t.consecutive++;
      if (this.#consecutive !== undefined && t.consecutive >= this.#consecutive) {
        this.#tryEject(t, 'consecutive-failures', `${t.consecutive} consecutive failures`);
      }
    } else {
      t.ok++;
      t.consecutive = 0;
    }
  };

  /** Ejections by anyone (this detector, `Retry-After`, `pool.eject`) and their ends. */
  readonly #onState = (e: { backend: BackendView; from: string; to: string }): void => {
    const t = this.#tracked.get(e.backend.id);
    if (t === undefined || t.backend !== e.backend) return;
    if (e.to === 'ejected') {
      t.ejectedInInterval = true;
      t.returnedAt = undefined;
    } else if (e.from === 'ejected') {
      t.returnedAt = this.#clock.now();
    }
  };

  readonly #onRemoved = ({ backend }: { backend: BackendView }): void => {
    if (this.#tracked.get(backend.id)?.backend === backend) this.#tracked.delete(backend.id);
  };

  readonly #onPoolClose = (): void => {
    this.close();
  };

  #trackedFor(backend: BackendView): Tracked {
    let t = this.#tracked.get(backend.id);
    if (t === undefined || t.backend !== backend) {
      t = {
        backend,
        consecutive: 0,
        multiplier: 0,
        ok: 0,
        fail: 0,
        returnedAt: undefined,
        ejectedInInterval: false,
      };
      this.#tracked.set(backend.id, t);
    }
    return t;
  }

  /** @returns whether the outcome ejected the backend for its `Retry-After`. */
  #honourRetryAfter(backend: BackendView, outcome: LeaseOutcome): boolean {
    const ra = this.#retryAfter;
    const wait = outcome.retryAfterMs;
    if (ra === undefined || typeof wait !== 'number' || !(wait > 0)) return false;
    // A closing pool takes no new calls and refuses ejections; calls still finishing say nothing.
    if (this.#pool.closed) return false;
    if (outcome.status !== undefined && !ra.statuses.has(outcome.status)) return false;
    const durationMs = Math.min(wait, ra.maxMs);
    const detail = `Retry-After ${wait} ms${wait > ra.maxMs ? ` (capped at ${ra.maxMs} ms)` : ''}${outcome.status === undefined ? '' : ` on status ${outcome.status}`}`;
    this.#pool.eject(backend.id, durationMs, `backpressure: ${detail}`, { endsOnProbe: false });
    const t = this.#trackedFor(backend);
    t.consecutive = 0;
    this.emit('eject', { backend, cause: 'retry-after', durationMs, detail, ejections: 0 });
    return true;
  }

  /** Ejects unless `maxEjectionPercent` forbids it. */
  #tryEject(t: Tracked, cause: EjectionCause, detail: string): boolean {
    const backend = t.backend;
    if (this.#pool.closed) return false;
    if (backend.state === 'ejected' || backend.state === 'draining') return false;
    const members = this.#pool.backends();
    let ejected = 0;
    for (const b of members) if (b.state === 'ejected') ejected++;
    const total = members.length;
    // The Envoy/grpc-js check, before ejecting: ejected share < max share.
    if (!(ejected * 100 < this.#maxPercent * total)) {
      this.emit('eject-skipped', {
        backend,
        cause,
        detail,
        ejected,
        total,
        maxEjectionPercent: this.#maxPercent,
      });
      return false;
    }
    // Envoy `ejectHost` (source/common/upstream/outlier_detection_impl.cc): the backoff grows only
    // while backoff × base < max + base, so it stops at 11 with the defaults and decays from there.
    if (t.multiplier * this.#baseMs < this.#maxMs + this.#baseMs) t.multiplier++;
    const durationMs =
      Math.min(this.#baseMs * t.multiplier, this.#maxMs) + this.#random() * this.#jitterMs;
    t.consecutive = 0;
    this.#pool.eject(backend.id, durationMs, `outlier (${cause}): ${detail}`);
    this.emit('eject', { backend, cause, durationMs, detail, ejections: t.multiplier });
    return true;
  }

  // ---------------------------------------------------------------- interval analysis

  #arm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = backgroundTimer(
      this.#clock,
      () => {
        this.#timer = undefined;
        if (this.#closed) return;
        this.#sweep();
        this.#arm();
      },
      this.#intervalMs,
    );
  }

  #sweep(): void {
    const now = this.#clock.now();
    const live = [...this.#tracked.values()].filter(
      (t) => this.#pool.get(t.backend.id) === t.backend,
    );
    // Envoy `processSuccessRateEjections` leaves ejected hosts out of the population, and with it
    // loadwise leaves out those ejected at any time since the last analysis: their counts stop
    // at the ejection, and a pool with one backend out may have too few left to judge.
    const population = live.filter((t) => !t.ejectedInInterval && t.backend.state !== 'ejected');
    for (const t of live) t.ejectedInInterval = false;
    const sr = this.#successRate;
    if (sr !== undefined) {
      const judged = population.filter((t) => t.ok + t.fail >= sr.requestVolume);
      if (judged.length >= sr.minimumHosts) {
        const rates = judged.map((t) => t.ok / (t.ok + t.fail));
        const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
        const variance = rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length;
        const floor = mean - sr.stdevFactor * Math.sqrt(variance);
        judged.forEach((t, i) => {
          const rate = rates[i]!;
          if (rate < floor) {
            this.#tryEject(
              t,
              'success-rate',
              `success rate ${pct(rate)} below ${pct(floor)} (mean ${pct(mean)} - ${sr.stdevFactor} stdev)`,
            );
          }
        });
      }
    }
    const fp = this.#failurePct;
    if (fp !== undefined) {
      const judged = population.filter((t) => t.ok + t.fail >= fp.requestVolume);
      if (judged.length >= fp.minimumHosts) {
        for (const t of judged) {
          const failed = (100 * t.fail) / (t.ok + t.fail);
          if (failed >= fp.threshold) {
            this.#tryEject(
              t,
              'failure-percentage',
              `${failed.toFixed(1)}% of ${t.ok + t.fail} calls failed (threshold ${fp.threshold}%)`,
            );
          }
        }
      }
    }
    for (const t of live) {
      // Envoy `onIntervalTimer`: a backend in service lowers its multiplier by one at each
      // analysis, but only once a full interval has passed since it came back, so one that
      // fails again soon after its return is ejected for longer (30, 60, 90 s ...).
      if (t.backend.state !== 'ejected' && t.multiplier > 0) {
        // Back without a state event (its ejection ended while it drained): count from now.
        if (t.returnedAt === undefined) t.returnedAt = now;
        else if (now - t.returnedAt >= this.#intervalMs) t.multiplier--;
      }
      t.ok = 0;
      t.fail = 0;
    }
  }
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function parseSuccessRate(value: unknown): Required<SuccessRateOptions> | undefined {
  if (value === false) return undefined;
  if (value !== undefined && !isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      'successRate',
      value,
      'false or { minimumHosts?, requestVolume?, stdevFactor? }',
    );
  }
  const o = checkOptions<SuccessRateOptions>('successRate', value as SuccessRateOptions, [
    'minimumHosts',
    'requestVolume',
    'stdevFactor',
  ]);
  const count = { min: 1, integer: true };
  return {
    minimumHosts: optNumber('successRate.minimumHosts', o.minimumHosts, 5, count),
    requestVolume: optNumber('successRate.requestVolume', o.requestVolume, 100, count),
    stdevFactor: optNumber('successRate.stdevFactor', o.stdevFactor, 1.9, { min: 0 }),
  };
}

function parseFailurePercentage(value: unknown): Required<FailurePercentageOptions> | undefined {
  if (value === false || value === undefined) return undefined;
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      'failurePercentage',
      value,
      'false or { threshold?, minimumHosts?, requestVolume? }',
    );
  }
  const o = checkOptions<FailurePercentageOptions>('failurePercentage', value, [
    'threshold',
    'minimumHosts',
    'requestVolume',
  ]);
  const count = { min: 1, integer: true };
  return {
    threshold: optNumber('failurePercentage.threshold', o.threshold, 85, { min: 0, max: 100 }),
    minimumHosts: optNumber('failurePercentage.minimumHosts', o.minimumHosts, 5, count),
    requestVolume: optNumber('failurePercentage.requestVolume', o.requestVolume, 50, count),
  };
}

function parseRetryAfterOptions(
  value: unknown,
): { maxMs: number; statuses: ReadonlySet<number> } | undefined {
  if (value === false) return undefined;
  if (value !== undefined && !isPlainObject(value)) {
    throw new LoadBalancerConfigError('retryAfter', value, 'false or { maxMs?, statuses? }');
  }
  const o = checkOptions<RetryAfterOptions>('retryAfter', value as RetryAfterOptions, [
    'maxMs',
    'statuses',
  ]);
  const maxMs = optDuration('retryAfter.maxMs', o.maxMs, 60_000, { min: 0, minExclusive: true });
  let statuses: readonly number[] = [429, 503];
  if (o.statuses !== undefined) {
    if (!Array.isArray(o.statuses)) {
      throw new LoadBalancerConfigError(
        'retryAfter.statuses',
        o.statuses,
        'an array of HTTP statuses such as [429, 503]',
      );
    }
    statuses = o.statuses.map((s, i) =>
      checkNumber(`retryAfter.statuses[${i}]`, s, { min: 100, max: 599, integer: true }),
    );
  }
  return { maxMs, statuses: new Set(statuses) };
}
