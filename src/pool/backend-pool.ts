import '../disposable.js';
import { PowerOfTwoChoices } from '../algorithms/power-of-two-choices.js';
import { backgroundTimer, type Clock, systemClock, type TimerHandle } from '../clock.js';
import { Emitter } from '../emitter.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { NoBackendAvailableError, type NoBackendReason } from '../errors/no-backend-error.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import { SnapshotRestoreError } from '../errors/snapshot-restore-error.js';
import { listIds, UnknownBackendError } from '../errors/unknown-backend-error.js';
import { blamesBackend, FAILURE_KINDS, measuresBackend } from '../failure.js';
import { defaultRandom, type Random } from '../random.js';
import { redactUrl } from '../redact.js';
import type {
  Algorithm,
  BackendSpec,
  BackendState,
  BackendStats,
  BackendView,
  Lease,
  LeaseOutcome,
  PickContext,
  PickExplanation,
  PoolEvents,
  PoolStats,
} from '../types.js';
import {
  checkBoolean,
  checkClock,
  checkDuration,
  checkNumber,
  checkOptions,
  checkRandom,
  checkString,
  isPlainObject,
  optDuration,
  optInterval,
  optNumber,
} from '../validate.js';
import { BackendRecord } from './backend-record.js';
import type { PointDraws } from './draws.js';
import {
  checkDecayCalls,
  type LatencyDecay,
  latencyDecay,
  observeLatency,
} from './latency-estimate.js';
import { idOfUrl, type NormalizedBackend, normalizeBackend } from './normalize.js';
import { PriorityLoad, tierDraws } from './priority-load.js';
import {
  type PoolSnapshot,
  planRestore,
  type RestoredBackend,
  type RestorePlan,
  takeSnapshot,
} from './snapshot.js';
import {
  parseZoneAware,
  type ZoneAwareOptions,
  ZoneRouting,
  type ZoneRules,
  zoneDraws,
} from './zone-routing.js';

/** Options of the distribution-skew monitor. */
export interface SkewOptions {
  /**
   * Emit `skew` when a backend's share of the window's requests exceeds this multiple of its
   * fair share (its effective weight over the total).
   * @default 2
   */
  factor?: number;
  /**
   * Length of one observation window.
   * @default 10000
   */
  windowMs?: number;
  /**
   * Windows with fewer requests than this are not judged (too little data).
   * @default 100
   */
  minRequests?: number;
}

/** Options of {@link BackendPool}. */
export interface BackendPoolOptions {
  /**
   * The initial backends.
   * @default []
   * @example
   * ```ts
   * backends: ['http://10.0.1.10:8080', { url: 'http://10.0.1.11:8080', weight: 3, zone: 'b' }]
   * ```
   */
  backends?: readonly BackendSpec[];
  /**
   * The balancing strategy. An instance serves one pool only.
   * @default new PowerOfTwoChoices()
   */
  algorithm?: Algorithm;
  /**
   * Enter panic mode when fewer backends than this are healthy (in a tier, when the tiers
   * together cannot take the load; see `panicThreshold`). With the default, a pool never routes
   * to nothing while something is up, even with `panicThreshold: 0`; set both to 0 to turn panic
   * off.
   * @default 1
   */
  minHealthy?: number;
  /**
   * Enter panic mode when the healthy share of non-draining backends falls below this fraction.
   * In panic mode calls spread over every backend that is not draining, rather than pile onto
   * the few that look healthy or fail outright. Envoy's `healthy_panic_threshold` default is 50%.
   * As in Envoy, panic is judged per priority tier and only while the tiers together cannot take
   * the load (their health, see `overprovisioningFactor`, sums to less than 100%); when every
   * tier is in panic, calls split across tiers by backend count. Set 0 to rely on `minHealthy`
   * alone.
   * @default 0.5
   */
  panicThreshold?: number;
  /**
   * How much spare capacity each priority tier is assumed to have (Envoy's
   * `overprovisioning_factor`, 140%). A tier's health is min(100%, factor × its healthy share):
   * with 1.4 a tier keeps every call until fewer than 72% of its backends are healthy, then
   * takes its health in percent of the calls and the next tiers take the rest, in order. With
   * 1 a tier sheds load as soon as one backend fails; a very large factor (such as 1e6) keeps
   * every call on the best tier while any backend of it is healthy, the strict order of DNS SRV
   * priorities (RFC 2782). A finite number > 0.
   * @default 1.4
   */
  overprovisioningFactor?: number;
  /**
   * Zone-aware routing: prefer backends in this process's zone (`localZone`) while that zone has
   * enough healthy capacity, and spill the rest to the other zones in proportion to their spare
   * capacity, as Envoy's zone aware routing does, within each priority tier. Off by default;
   * `false` turns it off too. See {@link ZoneAwareOptions}.
   * @default undefined (off: every zone alike)
   * @example
   * ```ts
   * zoneAware: { localZone: process.env.ZONE ?? 'us-east-1a' }
   * ```
   */
  zoneAware?: ZoneAwareOptions | false;
  /**
   * Ramp a backend that joins (after construction) or recovers from a floor to its full weight
   * over this many ms, so a cold instance is not flooded (Envoy `slow_start_window`, HAProxy
   * `slowstart`). 0 turns slow start off.
   * @default 0
   */
  slowStartMs?: number;
  /**
   * The share of its weight a backend gets at the start of slow start (Envoy `min_weight_percent`).
   * @default 0.1
   */
  slowStartMinWeight?: number;
  /**
   * Shape of the ramp: effective weight = weight × max(min, progress^(1/aggression))
   * (Envoy's `aggression`; 1 is linear, larger ramps faster at first).
   * @default 1
   */
  slowStartAggression?: number;
  /**
   * Decay time constant of the per-backend peak-EWMA latency (Finagle's default decay is 10 s):
   * a latency peak falls by a factor e over this long, and an idle backend's estimate decays
   * towards 0 with it, so that it is tried again.
   * @default 10000
   */
  latencyDecayMs?: number;
  /**
   * Successful calls that bring a backend's latency peak down by a factor e, however quickly they
   * come: each call faster than the estimate moves it at least 1 − e^(−1/n) of the way towards
   * its own latency, besides the decay with time. With time alone (`Infinity`, Finagle's rule)
   * one slow call on a busy backend (a cold connection, a pause of the client's event loop)
   * outweighs thousands of fast ones for about `latencyDecayMs`. Failed calls decay with time
   * only, so fast failures do not make a backend look fast. Backends that take fewer than
   * n calls per `latencyDecayMs` decay with time as before.
   * @default 300
   */
  latencyDecayCalls?: number;
  /**
   * Grace period of `drain()` and `remove()` when the call does not give one.
   * @default 30000
   */
  drainGraceMs?: number;
  /**
   * Distribution-skew monitor; `false` turns it off.
   * @default { factor: 2, windowMs: 10000, minRequests: 100 }
   */
  skew?: SkewOptions | false;
  /**
   * A name for this pool in metrics and logs.
   * @default 'default'
   */
  name?: string;
  /**
   * A snapshot from `pool.snapshot()` (of this pool's previous process, after `JSON.parse` when
   * persisted) to start warm from: backends keep their health, draining, ejections (for the
   * time they had left), slow-start ramps and latency estimates, so the first calls after a
   * restart do not stampede a backend the previous process had learnt to avoid. Every field is
   * checked before anything is applied; a snapshot of another format version, older than
   * `maxSnapshotAgeMs`, stamped in the future beyond a minute of clock skew, malformed, or
   * holding a backend that is not among `backends` (when given) is refused with a
   * {@link SnapshotRestoreError} and no pool is built. Without `backends`, the snapshot's own
   * backends are the pool's (except those a `remove()` was taking out). See docs/warm-restarts.md.
   * @default undefined (a cold start)
   * @example
   * ```ts
   * const saved = await readFile('pool-snapshot.json', 'utf8').catch(() => undefined);
   * const pool = new BackendPool({
   *   backends,
   *   ...(saved === undefined ? {} : { restore: JSON.parse(saved) }),
   *   maxSnapshotAgeMs: 60_000,
   * });
   * ```
   */
  restore?: PoolSnapshot;
  /**
   * The oldest snapshot `restore` accepts, by the wall clock: an older one is refused. After a
   * few minutes what it says is out of date: latency estimates have decayed (10 s time constant
   * by default) and ejections ended (Envoy's longest is 300 s).
   * @default 300000
   * @example
   * ```ts
   * maxSnapshotAgeMs: 60_000 // a process restarted more than a minute later starts cold
   * ```
   */
  maxSnapshotAgeMs?: number;
  /** Time source. @default systemClock */
  clock?: Clock;
  /** Random source in [0, 1). @default defaultRandom (sfc32 seeded once per process) */
  random?: Random;
}

/** The result of `drain()` and `remove()`. */
export interface DrainResult {
  /** The backend that drained. */
  readonly id: string;
  /** `true` when every call finished within the grace period. */
  readonly completed: boolean;
  /** Calls still in flight when the grace period ended (0 when completed). */
  readonly remaining: number;
}

/** Options of {@link BackendPool.drain}. */
export interface DrainOptions {
  /** How long to wait for calls in flight. @default the pool's `drainGraceMs` */
  graceMs?: number;
}

/** Options of {@link BackendPool.remove}. */
export interface RemoveOptions extends DrainOptions {
  /**
   * Let calls in flight finish before the backend is forgotten. With `false` the backend is
   * removed at once (its leases still release harmlessly).
   * @default true
   */
  drain?: boolean;
}

/** Options of {@link BackendPool.eject}. */
export interface EjectOptions {
  /**
   * Whether a passing health probe ends the ejection early.
   * @default true
   */
  endsOnProbe?: boolean;
}

/** A probe result reported by a health checker. */
export interface ProbeReport {
  /** Whether the probe passed. */
  ok: boolean;
  /** Which checker reported (separate checkers count separately). @default 'default' */
  source?: string;
  /** Consecutive passes that mark an unhealthy backend healthy. @default 1 */
  healthyThreshold?: number;
  /** Consecutive failures that mark a healthy backend unhealthy. @default 1 */
  unhealthyThreshold?: number;
  /** Why, for the `state` event. */
  reason?: string;
}

const POOL_KEYS = [
  'backends',
  'algorithm',
  'minHealthy',
  'panicThreshold',
  'overprovisioningFactor',
  'zoneAware',
  'slowStartMs',
  'slowStartMinWeight',
  'slowStartAggression',
  'latencyDecayMs',
  'latencyDecayCalls',
  'drainGraceMs',
  'skew',
  'name',
  'restore',
  'maxSnapshotAgeMs',
  'clock',
  'random',
] as const;

const EMPTY_CTX: PickContext = Object.freeze({});
const attachedAlgorithms = new WeakSet<Algorithm>();

/**
 * The backends of one upstream service, their states, and the rules that decide which of them
 * may take the next call. Every call takes a {@link Lease} with `acquire()` and gives it back with
 * `release()`.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({
 *   backends: ['http://10.0.1.10:8080', { url: 'http://10.0.1.11:8080', weight: 3 }],
 *   algorithm: new LeastConnections(),
 * });
 * const lease = pool.acquire();
 * try {
 *   await callBackend(lease.backend.url);
 *   lease.release({ ok: true });
 * } catch (error) {
 *   lease.release({ ok: false, error });
 * }
 * ```
 */
export class BackendPool extends Emitter<PoolEvents> {
  /** The pool's name, for metrics and logs. */
  readonly name: string;
  /** The clock this pool and its components use. */
  readonly clock: Clock;
  /** The random source this pool and its components use. */
  readonly random: Random;
  /** The balancing strategy. */
  readonly algorithm: Algorithm;

  readonly #minHealthy: number;
  readonly #panicThreshold: number;
  readonly #overprovisioningFactor: number;
  readonly #slowStartMs: number;
  readonly #slowStartMin: number;
  readonly #slowStartAggression: number;
  readonly #latencyDecayMs: number;
  readonly #latencyDecay: LatencyDecay;
  /** Whether anyone listens to `acquire` / `release` (asked on every call, kept by the hook). */
  #tapAcquire = false;
  #tapRelease = false;
  /** What the algorithm is lent; the pool keeps its counts up to date. */
  readonly #env: {
    readonly clock: Clock;
    readonly random: Random;
    readonly latencyDecayMs: number;
    eligibleCount: number;
    inFlight: number;
  };
  readonly #drainGraceMs: number;
  readonly #skew: Required<SkewOptions> | undefined;
  readonly #zoneRules: ZoneRules | undefined;

  readonly #records = new Map<string, BackendRecord>();
  #members: BackendRecord[] = [];
  #candidates: BackendRecord[] = [];
  /** The split of calls across priority tiers, with each loaded tier's candidates. */
  #load: PriorityLoad = PriorityLoad.EMPTY;
  /** The arrays picks draw from: a tier, then (with `zoneAware`) a zone within it. */
  #route: ZoneRouting = ZoneRouting.EMPTY;
  /** Draws of the injected random for choosing a tier when tiers share the calls. */
  readonly #draws: PointDraws;
  /** Draws of the injected random for choosing a zone when zones share a tier's calls. */
  readonly #zoneDraws: PointDraws;
  #panic = false;
  #closed = false;
  #slowStarting = 0;
  #nextSlowStartRefresh = Number.POSITIVE_INFINITY;
  #skewTimer: TimerHandle | undefined;
  readonly #timers = new Set<TimerHandle>();
  #closing: Promise<void> | undefined;

  constructor(options: BackendPoolOptions = {}) {
    super();
    const o = checkOptions('BackendPoolOptions', options, POOL_KEYS);
    this.name = o.name === undefined ? 'default' : checkString('name', o.name);
    this.clock = o.clock === undefined ? systemClock : checkClock('clock', o.clock);
    this.random = o.random === undefined ? defaultRandom : checkRandom('random', o.random);
    this.#draws = tierDraws(this.random);
    this.#zoneDraws = zoneDraws(this.random);
    this.#minHealthy = optNumber('minHealthy', o.minHealthy, 1, { min: 0, integer: true });
    this.#panicThreshold = optNumber('panicThreshold', o.panicThreshold, 0.5, { min: 0, max: 1 });
    this.#overprovisioningFactor = optNumber(
      'overprovisioningFactor',
      o.overprovisioningFactor,
      1.4,
      { min: 0, minExclusive: true },
    );
    this.#slowStartMs = optDuration('slowStartMs', o.slowStartMs, 0, { min: 0 });
    this.#slowStartMin = optNumber('slowStartMinWeight', o.slowStartMinWeight, 0.1, {
      min: 0,
      max: 1,
      minExclusive: true,
    });
    this.#slowStartAggression = optNumber('slowStartAggression', o.slowStartAggression, 1, {
      min: 0,
      minExclusive: true,
    });
    this.#latencyDecayMs = optDuration('latencyDecayMs', o.latencyDecayMs, 10_000, {
      min: 0,
      minExclusive: true,
    });
    this.#latencyDecay = latencyDecay(
      this.#latencyDecayMs,
      checkDecayCalls(o.latencyDecayCalls, 300),
    );
    this.#drainGraceMs = optDuration('drainGraceMs', o.drainGraceMs, 30_000, { min: 0 });
    this.#skew = parseSkew(o.skew);
    this.#zoneRules = parseZoneAware(o.zoneAware);
    const maxSnapshotAgeMs = optDuration('maxSnapshotAgeMs', o.maxSnapshotAgeMs, 300_000, {
      min: 0,
    });
    // The whole snapshot is checked before the pool takes anything from it.
    const plan =
      o.restore === undefined
        ? undefined
        : planRestore(o.restore, this.#wallNow(), maxSnapshotAgeMs);

    const algorithm = o.algorithm ?? new PowerOfTwoChoices();
    if (
      typeof algorithm !== 'object' ||
      algorithm === null ||
      typeof algorithm.pick !== 'function'
    ) {
      throw new LoadBalancerConfigError(
        'algorithm',
        algorithm,
        'an Algorithm such as new RoundRobin()',
      );
    }
    if (attachedAlgorithms.has(algorithm)) {
      throw new LoadBalancerConfigError(
        'algorithm',
        algorithm.name,
        'an algorithm instance not already used by another pool',
      );
    }
    attachedAlgorithms.add(algorithm);
    this.algorithm = algorithm;
    this.#env = {
      clock: this.clock,
      random: this.random,
      latencyDecayMs: this.#latencyDecayMs,
      eligibleCount: 0,
      inFlight: 0,
    };
    algorithm.attach?.(this.#env);

    const specs = o.backends ?? [];
    if (!Array.isArray(specs))
      throw new LoadBalancerConfigError('backends', specs, 'an array of backends');
    try {
      if (o.backends === undefined && plan !== undefined) {
        // Already normalized (and their ids unique) when the plan was checked.
        for (const b of plan.backends) {
          this.#insertNormalized(b.spec, `restore.backends[${b.index}]`, false);
        }
      } else {
        specs.forEach((spec, i) => {
          this.#insert(spec, `backends[${i}]`, false);
        });
      }
      if (plan !== undefined) {
        const now = this.clock.now();
        for (const [record, b] of this.#matchRestored(plan)) this.#applyRestored(record, b, now);
      }
      this.#membershipChanged();
    } catch (error) {
      // Ejections restored before the algorithm refused the membership: no timer outlives it.
      for (const record of this.#records.values()) this.#clearEjection(record);
      // This pool never comes to life: its algorithm may serve another one.
      attachedAlgorithms.delete(algorithm);
      throw error;
    }
  }

  /** @internal Keeps the per-call questions (is anyone listening?) to a field read. */
  protected override listenersChanged(): void {
    this.#tapAcquire = this.listenerCount('acquire') > 0;
    this.#tapRelease = this.listenerCount('release') > 0;
  }

  // ---------------------------------------------------------------- warm restarts

  /**
   * The pool's state for a warm restart, as plain JSON-serialisable data: every backend with its
   * health, draining, the time its ejection has left, how far its slow-start ramp has gone and
   * its latency estimate, stamped with the wall clock (`clock.wallNow()`). Give it to a new
   * pool's `restore` option (after `JSON.parse` when persisted). Works after `close()` too, so
   * a service can take it on shutdown. See docs/warm-restarts.md.
   *
   * @example
   * ```ts
   * process.once('SIGTERM', async () => {
   *   await pool.close({ graceMs: 5000 });
   *   await writeFile('pool-snapshot.json', JSON.stringify(pool.snapshot()));
   * });
   * ```
   */
  snapshot(): PoolSnapshot {
    if (!this.#closed) this.#refreshSlowStartIfDue();
    return takeSnapshot(this.name, this.#members, this.clock.now(), this.#wallNow());
  }

  #wallNow(): number {
    return this.clock.wallNow?.() ?? this.clock.now();
  }

  /**
   * Pairs each backend of the plan with the pool's record of the same id; refuses a backend the
   * pool was not given, or one whose URL differs, before anything is applied.
   */
  #matchRestored(plan: RestorePlan): [BackendRecord, RestoredBackend][] {
    return plan.backends.map((b) => {
      const record = this.#records.get(b.spec.id);
      if (record === undefined) {
        throw new SnapshotRestoreError(
          'unknown-backend',
          `backend ${JSON.stringify(b.spec.id)} is not among the pool's backends (${listIds([...this.#records.keys()], 'none')}); restore with the same backends, or leave \`backends\` out to take the snapshot's`,
          `backends[${b.index}].id`,
        );
      }
      if (record.url !== b.spec.url) {
        throw new SnapshotRestoreError(
          'mismatch',
          `backend ${JSON.stringify(b.spec.id)} has the URL ${redactUrl(b.spec.url)} in the snapshot and ${redactUrl(record.url)} in the pool`,
          `backends[${b.index}].url`,
        );
      }
      return [record, b];
    });
  }

  /** Gives a record the state the plan holds for it (nothing here can fail). */
  #applyRestored(record: BackendRecord, b: RestoredBackend, now: number): void {
    record.healthy = b.healthy;
    record.draining = b.draining;
    if (b.ejection !== undefined) {
      record.ejectReason = b.ejection.reason;
      record.ejectEndsOnProbe = b.ejection.endsOnProbe;
      this.#armEjection(record, b.ejection.remainingMs);
    }
    const elapsed = b.slowStartElapsedMs;
    if (elapsed !== undefined && elapsed < this.#slowStartMs) {
      this.#slowStarting++;
      record.slowStartFrom = now - elapsed;
      record.effectiveWeight = this.#rampWeight(record, now);
      this.#nextSlowStartRefresh = Math.min(
        this.#nextSlowStartRefresh,
        now + this.#slowStartStep(),
      );
    }
    if (b.latency !== undefined) {
      record.latencyEwma = b.latency.ewmaMs;
      record.latencyStamp = now - b.latency.ageMs;
    }
    record.state = record.derivedState();
  }

  // ---------------------------------------------------------------- picking

  /**
   * Picks a backend for one call and counts the call as in flight until the lease is released.
   *
   * @throws {NoBackendAvailableError} when nothing can take the call (the `reason` says why).
   * @throws {PoolClosedError} after `close()`.
   */
  acquire(ctx?: PickContext): Lease {
    const record = this.#pick(ctx);
    record.inFlight++;
    this.#env.inFlight++;
    record.requests++;
    record.windowRequests++;
    this.algorithm.onAcquire?.(record);
    if (this.#tapAcquire) this.emit('acquire', { backend: record, ctx });
    return new PoolLease(this, record, this.clock.now());
  }

  #pick(ctx: PickContext | undefined): BackendRecord {
    if (this.#closed) throw new PoolClosedError();
    this.#refreshSlowStartIfDue();
    const c = ctx ?? EMPTY_CTX;
    if (typeof c !== 'object' || c === null) {
      throw new LoadBalancerConfigError('ctx', ctx, 'undefined or a PickContext object');
    }
    if (c.affinity !== undefined) {
      if (typeof c.affinity !== 'object' || typeof c.affinity?.id !== 'string') {
        throw new LoadBalancerConfigError(
          'ctx.affinity',
          c.affinity,
          'undefined or { id: string, allowDraining?: boolean }',
        );
      }
      const pinned = this.#records.get(c.affinity.id);
      if (pinned !== undefined && this.#affinityRoutable(pinned, c.affinity.allowDraining === true))
        return pinned;
    }
    if (this.#candidates.length === 0) throw this.#noBackendError();
    // The tier first (Envoy's choosePriority, a draw only when tiers share the calls), then the
    // zone within it (zone-aware routing), then the algorithm among those candidates.
    const route = this.#route;
    const candidates = route.only ?? route.choose(this.#draws, this.#zoneDraws);
    if (c.exclude !== undefined) return this.#pickExcluding(candidates, c);
    const picked = this.algorithm.pick(candidates, c) as BackendRecord | undefined;
    if (picked === undefined || !picked.eligible) throw this.#algorithmFailed(picked);
    return picked;
  }

  #pickExcluding(drawn: BackendRecord[], ctx: PickContext): BackendRecord {
    let candidates = drawn;
    const exclude = ctx.exclude!;
    if (
      !Array.isArray(exclude) &&
      (typeof exclude !== 'object' ||
        exclude === null ||
        typeof (exclude as { has?: unknown }).has !== 'function')
    ) {
      throw new LoadBalancerConfigError(
        'ctx.exclude',
        exclude,
        'undefined, an array of backend ids or a Set of them',
      );
    }
    const has = isSet(exclude)
      ? (id: string) => exclude.has(id)
      : (id: string) => exclude.includes(id);
    let kept = candidates.filter((r) => !has(r.id));
    if (kept.length === 0) {
      // Every candidate of the drawn tier was tried: another tier that takes calls, if any.
      for (const tier of this.#load.snapshots) {
        const others = tier.candidates.filter((r) => !has(r.id));
        if (others.length > 0) {
          candidates = tier.candidates;
          kept = others;
          break;
        }
      }
    }
    if (kept.length === 0 || kept.length === candidates.length) {
      const picked = this.algorithm.pick(candidates, ctx) as BackendRecord | undefined;
      if (picked === undefined || !picked.eligible) throw this.#algorithmFailed(picked);
      return picked;
    }
    // Hide excluded backends from table-based algorithms for this one pick.
    const hidden = candidates.filter((r) => has(r.id));
    for (const r of hidden) r.eligible = false;
    try {
      const picked = this.algorithm.pick(kept, ctx) as BackendRecord | undefined;
      if (picked === undefined || !picked.eligible) throw this.#algorithmFailed(picked);
      return picked;
    } finally {
      for (const r of hidden) r.eligible = true;
    }
  }

  #affinityRoutable(r: BackendRecord, allowDraining: boolean): boolean {
    if (r.eligible) return true;
    return (
      allowDraining && r.draining && (r.healthy || this.#panic) && r.ejectedUntil === undefined
    );
  }

  #algorithmFailed(picked: BackendRecord | undefined): Error {
    return new LoadBalancerConfigError(
      `algorithm (${this.algorithm.name}).pick`,
      picked?.id,
      'one of the eligible candidates it was given',
    );
  }

  #noBackendError(): NoBackendAvailableError {
    const counts: Record<BackendState, number> = {
      healthy: 0,
      unhealthy: 0,
      draining: 0,
      ejected: 0,
    };
    for (const r of this.#members) counts[r.state]++;
    let reason: NoBackendReason;
    if (this.#members.length === 0) reason = 'empty';
    else if (counts.draining === this.#members.length) reason = 'all-draining';
    else reason = 'all-unhealthy';
    return new NoBackendAvailableError(reason, counts);
  }

  /** @internal Called by {@link PoolLease.release}. */
  _release(
    record: BackendRecord,
    acquiredAt: number,
    outcome: LeaseOutcome | undefined,
    at?: number,
  ): void {
    const o: LeaseOutcome = outcome ?? OK_OUTCOME;
    record.inFlight--;
    this.#env.inFlight--;
    const now = at ?? this.clock.now();
    const latency = o.latencyMs ?? now - acquiredAt;
    if (blamesBackend(o.failure) && !o.ok) record.failures++;
    // A superseded attempt's time is a lower bound of the backend's latency: it counts, but only
    // a success pulls a peak down (see observeLatency).
    if (measuresBackend(o.failure)) observeLatency(record, latency, now, o.ok, this.#latencyDecay);
    this.algorithm.onRelease?.(record);
    if (this.#tapRelease) this.emit('release', { backend: record, outcome: o, latencyMs: latency });
    if (record.inFlight === 0 && record.idleWaiters.length > 0) {
      for (const wake of record.idleWaiters.splice(0)) wake();
    }
  }

  /**
   * Says how the next pick for `ctx` would be decided: which backends are eligible and why the
   * others are not, how the calls split across priority tiers and why, whether panic or
   * stickiness applies, and which backend would be picked when that is known without picking.
   * Changes nothing.
   */
  explain(ctx?: PickContext): PickExplanation {
    if (!this.#closed) this.#refreshSlowStartIfDue();
    const c = ctx ?? EMPTY_CTX;
    const eligible = this.#candidates.map((r) => ({
      id: r.id,
      state: r.state,
      effectiveWeight: r.effectiveWeight,
      inFlight: r.inFlight,
    }));
    const excluded = this.#members
      .filter((r) => !r.eligible)
      .map((r) => ({ id: r.id, state: r.state, why: this.#whyExcluded(r) }));
    const base = {
      algorithm: this.algorithm.name,
      panic: this.#panic,
      tiers: this.#load.tiers,
      zones: this.#route.tiers,
      eligible,
      excluded,
    };
    if (this.#closed) {
      return {
        ...base,
        affinity: 'none',
        wouldPick: undefined,
        note: 'pool closed',
        error: new PoolClosedError().message,
      };
    }
    if (c.affinity !== undefined) {
      const pinned = this.#records.get(c.affinity.id);
      if (
        pinned !== undefined &&
        this.#affinityRoutable(pinned, c.affinity.allowDraining === true)
      ) {
        return {
          ...base,
          affinity: 'applied',
          wouldPick: pinned.id,
          note: `sticky affinity to ${pinned.id}`,
        };
      }
    }
    const affinity = c.affinity === undefined ? 'none' : 'not-routable';
    // With more than one tier, say how the calls split and why before the algorithm's part;
    // then how each tier's calls split by zone.
    const zones = this.#route.describe();
    const split = `${
      this.#load.tiers.length > 1
        ? `${this.#load.describe(this.#overprovisioningFactor, this.#panicThreshold)}. `
        : ''
    }${zones === '' ? '' : `${zones}. `}`;
    if (this.#candidates.length === 0) {
      return {
        ...base,
        affinity,
        wouldPick: undefined,
        note: `${split}nothing to pick`,
        error: this.#noBackendError().message,
      };
    }
    const panic = this.#panic ? 'PANIC: routing across unhealthy backends too. ' : '';
    const only = this.#route.only;
    if (only === undefined) {
      // Which tier or zone the next pick goes to is a draw: say what each would do.
      const loads = new Map(this.#load.snapshots.map((t) => [t.priority, t.figures.load / 100]));
      const notes = this.#route
        .shares((t) => loads.get(t) ?? 0)
        .map(({ candidates, p }) => {
          const e = this.algorithm.explain?.(candidates, c);
          const first = candidates[0]!;
          const zone =
            candidates ===
            this.#load.snapshots.find((t) => t.priority === first.priority)?.candidates
              ? ''
              : ` zone ${first.zone ?? '(no zone)'}`;
          return `tier ${first.priority}${zone} (${Math.round(p * 10_000) / 100}%): ${e?.note ?? `${this.algorithm.name} picks among ${candidates.length} backends`}`;
        });
      return {
        ...base,
        affinity,
        wouldPick: undefined,
        note: `${panic}${split}${this.#zoneRules === undefined ? 'The tier is' : 'The tier and the zone are'} drawn per pick; ${notes.join('; ')}`,
      };
    }
    const e = this.algorithm.explain?.(only, c);
    return {
      ...base,
      affinity,
      wouldPick: e?.wouldPick?.id,
      note: `${panic}${split}${e?.note ?? `${this.algorithm.name} picks among ${only.length} backends`}`,
    };
  }

  #whyExcluded(r: BackendRecord): string {
    switch (r.state) {
      case 'draining':
        return 'draining: takes no new calls';
      case 'ejected':
        return `ejected until ${r.ejectedUntil}: ${r.ejectReason}`;
      case 'unhealthy':
        return 'failing health checks';
      default: {
        const tier = this.#load.tiers.find((t) => t.priority === r.priority);
        return tier !== undefined && tier.load === 0
          ? `priority ${r.priority} takes no calls now (better tiers are healthy enough)`
          : 'not routable';
      }
    }
  }

  // ---------------------------------------------------------------- membership

  /**
   * Adds a backend. It starts healthy (in slow start when `slowStartMs` is set).
   * @throws {LoadBalancerConfigError} for an invalid spec or a duplicate id.
   * @throws {PoolClosedError} after `close()`.
   */
  add(spec: BackendSpec): BackendView {
    this.#assertOpen();
    const record = this.#insert(spec, 'backend', this.#slowStartMs > 0);
    try {
      this.#membershipChanged();
    } catch (error) {
      // The algorithm refused the new membership (a ring over its point limit, a throwing
      // ringKey): take the backend out again so the pool and the algorithm agree.
      this.#records.delete(record.id);
      if (record.slowStartFrom !== undefined) {
        record.slowStartFrom = undefined;
        this.#slowStarting--;
      }
      this.#membershipChanged();
      throw error;
    }
    this.emit('added', { backend: record });
    return record;
  }

  #insert(spec: BackendSpec, field: string, slowStart: boolean): BackendRecord {
    return this.#insertNormalized(normalizeBackend(spec, field), field, slowStart);
  }

  #insertNormalized(n: NormalizedBackend, field: string, slowStart: boolean): BackendRecord {
    if (this.#records.has(n.id)) {
      throw new LoadBalancerConfigError(
        `${field}.id`,
        n.id,
        'an id not already in the pool (give an explicit id to add the same URL twice)',
      );
    }
    const record = new BackendRecord(n.id, n.url, n.weight, n.zone, n.priority, n.metadata);
    record.state = record.derivedState();
    if (slowStart) this.#startSlowStart(record);
    this.#records.set(n.id, record);
    return record;
  }

  /**
   * Removes a backend. By default it drains first: no new calls at once, and the promise
   * resolves once its calls finish or the grace period ends.
   * @throws {PoolClosedError} after `close()`.
   */
  async remove(id: string, options: RemoveOptions = {}): Promise<DrainResult> {
    this.#assertOpen();
    const o = checkOptions('remove options', options, ['drain', 'graceMs']);
    const record = this.#get(id);
    let result: DrainResult = { id, completed: record.inFlight === 0, remaining: record.inFlight };
    if (o.drain === undefined || checkBoolean('drain', o.drain)) {
      record.leaving = true;
      result = await this.#drain(id, o.graceMs === undefined ? {} : { graceMs: o.graceMs });
    }
    if (this.#records.get(id) === record) {
      record.removed = true;
      this.#clearEjection(record);
      this.#records.delete(id);
      if (record.slowStartFrom !== undefined) {
        record.slowStartFrom = undefined;
        this.#slowStarting--;
      }
      this.#membershipChanged();
      this.emit('removed', { backend: record });
    }
    return result;
  }

  /** Whether the pool holds a backend with this id. */
  has(id: string): boolean {
    return this.#records.has(id);
  }

  /** The backend with this id, or undefined. */
  get(id: string): BackendView | undefined {
    return this.#records.get(id);
  }

  /** Every backend, in the order they were added. */
  backends(): readonly BackendView[] {
    return this.#members;
  }

  /**
   * The backends the next pick may choose from: those of every priority tier that takes a share
   * of the calls (its healthy ones, or in panic all that are not draining), in every zone. With
   * one such tier and no zone split, the very array the algorithm's `pick` receives.
   */
  eligible(): readonly BackendView[] {
    return this.#candidates;
  }

  /** Whether panic mode is on. */
  get panic(): boolean {
    return this.#panic;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Changes a backend's weight (slow start, when active, keeps ramping towards the new weight).
   * @throws {PoolClosedError} after `close()`.
   */
  setWeight(id: string, weight: number): void {
    this.#assertOpen();
    const record = this.#get(id);
    const w = checkNumber('weight', weight, { min: 0, minExclusive: true });
    if (w === record.weight) return;
    record.weight = w;
    record.effectiveWeight =
      record.slowStartFrom === undefined ? w : this.#rampWeight(record, this.clock.now());
    this.#membershipChanged();
    this.emit('updated', { backend: record });
  }

  // ---------------------------------------------------------------- draining

  /**
   * Stops new calls to a backend at once and resolves when its calls in flight reach 0, or when
   * the grace period ends (then `completed` is false and `remaining` says how many still run).
   * The backend stays in the pool, draining, until `undrain()` or `remove()`.
   * @throws {PoolClosedError} after `close()`.
   */
  drain(id: string, options: DrainOptions = {}): Promise<DrainResult> {
    this.#assertOpen();
    return this.#drain(id, options);
  }

  /** `drain()` without the open check: `close({ graceMs })` drains through it. */
  #drain(id: string, options: DrainOptions): Promise<DrainResult> {
    const o = checkOptions('drain options', options, ['graceMs']);
    const record = this.#get(id);
    const graceMs = optDuration('graceMs', o.graceMs, this.#drainGraceMs, { min: 0 });
    if (!record.draining) {
      record.draining = true;
      this.#stateMaybeChanged(record, 'drain requested');
      this.#rebuild();
    }
    return new Promise<DrainResult>((resolve) => {
      const finish = (completed: boolean): void => {
        const result = { id, completed, remaining: record.inFlight };
        this.emit('drained', { backend: record, completed, remaining: record.inFlight });
        resolve(result);
      };
      if (record.inFlight === 0) {
        finish(true);
        return;
      }
      let done = false;
      const timer = this.#schedule(() => {
        if (done) return;
        done = true;
        const i = record.idleWaiters.indexOf(onIdle);
        if (i >= 0) record.idleWaiters.splice(i, 1);
        finish(false);
      }, graceMs);
      // Woken when in-flight reaches 0, or by close(), which clears the grace timer: then
      // calls may still be running and the drain did not complete.
      const onIdle = (): void => {
        if (done) return;
        done = true;
        this.#cancel(timer);
        finish(record.inFlight === 0);
      };
      record.idleWaiters.push(onIdle);
    });
  }

  /**
   * Puts a draining backend back into rotation.
   * @throws {PoolClosedError} after `close()`.
   */
  undrain(id: string): void {
    this.#assertOpen();
    const record = this.#get(id);
    if (!record.draining) return;
    record.draining = false;
    this.#stateMaybeChanged(record, 'undrained');
    this.#rebuild();
  }

  // ---------------------------------------------------------------- health observations

  /**
   * Marks a backend healthy or unhealthy at once (health checkers normally use
   * {@link BackendPool.reportProbe}, which applies thresholds).
   * @throws {PoolClosedError} after `close()`.
   */
  setHealthy(
    id: string,
    healthy: boolean,
    reason = healthy ? 'marked healthy' : 'marked unhealthy',
  ): void {
    this.#assertOpen();
    checkString('reason', reason, { nonEmpty: false });
    this.#setHealthy(this.#get(id), checkBoolean('healthy', healthy), reason);
  }

  #setHealthy(record: BackendRecord, healthy: boolean, reason: string): void {
    if (record.healthy === healthy) return;
    record.healthy = healthy;
    const before = record.state;
    this.#stateMaybeChanged(record, reason);
    if (healthy && before !== 'healthy' && record.state === 'healthy') this.#startSlowStart(record);
    this.#rebuild();
  }

  /**
   * Records one probe result. After `unhealthyThreshold` consecutive failures a healthy backend
   * becomes unhealthy; after `healthyThreshold` consecutive passes an unhealthy one recovers.
   * A passing probe also ends an ejection early.
   * @returns the backend's state afterwards.
   * @throws {PoolClosedError} after `close()`.
   */
  reportProbe(id: string, report: ProbeReport): BackendState {
    this.#assertOpen();
    const record = this.#get(id);
    const r = checkOptions('probe report', report, [
      'ok',
      'source',
      'healthyThreshold',
      'unhealthyThreshold',
      'reason',
    ]);
    const ok = checkBoolean('ok', r.ok);
    const source = r.source === undefined ? 'default' : checkString('source', r.source);
    const up = optNumber('healthyThreshold', r.healthyThreshold, 1, { min: 1, integer: true });
    const down = optNumber('unhealthyThreshold', r.unhealthyThreshold, 1, {
      min: 1,
      integer: true,
    });
    let run = record.probeRuns.get(source);
    if (run === undefined) {
      run = { ok: 0, fail: 0 };
      record.probeRuns.set(source, run);
    }
    if (ok) {
      run.ok++;
      run.fail = 0;
      if (!record.healthy && run.ok >= up)
        this.#setHealthy(
          record,
          true,
          r.reason ?? `${run.ok} consecutive passing probes (${source})`,
        );
      if (record.ejectedUntil !== undefined && record.ejectEndsOnProbe) {
        this.#uneject(record, `passing probe (${source})`);
      }
    } else {
      run.fail++;
      run.ok = 0;
      if (record.healthy && run.fail >= down)
        this.#setHealthy(
          record,
          false,
          r.reason ?? `${run.fail} consecutive failing probes (${source})`,
        );
    }
    return record.state;
  }

  /**
   * Takes a backend out of rotation for `durationMs` (outlier detection, `Retry-After`). A later
   * call with a longer duration extends the ejection; a shorter one does not shorten it.
   *
   * By default a passing health probe ends the ejection early (Envoy and grpc-js do the same for
   * outlier ejections). Pass `{ endsOnProbe: false }` when the backend itself asked for the pause
   * (`Retry-After`): its health endpoint may well pass while it sheds load.
   * @throws {PoolClosedError} after `close()`.
   */
  eject(id: string, durationMs: number, reason = 'ejected', options: EjectOptions = {}): void {
    this.#assertOpen();
    const record = this.#get(id);
    const ms = checkDuration('durationMs', durationMs, { min: 0 });
    checkString('reason', reason, { nonEmpty: false });
    const o = checkOptions('eject options', options, ['endsOnProbe']);
    const endsOnProbe =
      o.endsOnProbe === undefined ? true : checkBoolean('endsOnProbe', o.endsOnProbe);
    const until = this.clock.now() + ms;
    if (record.ejectedUntil !== undefined && record.ejectedUntil >= until) {
      // A longer ejection already runs; a backend's own request for a pause still pins it.
      if (!endsOnProbe) record.ejectEndsOnProbe = false;
      return;
    }
    record.ejectReason = reason;
    record.ejectEndsOnProbe = endsOnProbe;
    this.#armEjection(record, ms);
    this.#stateMaybeChanged(record, reason);
    this.#rebuild();
  }

  /**
   * Ends an ejection early.
   * @throws {PoolClosedError} after `close()`.
   */
  uneject(id: string, reason = 'unejected'): void {
    this.#assertOpen();
    checkString('reason', reason, { nonEmpty: false });
    this.#uneject(this.#get(id), reason);
  }

  #uneject(record: BackendRecord, reason: string): void {
    if (record.ejectedUntil === undefined) return;
    this.#clearEjection(record);
    const before = record.state;
    this.#stateMaybeChanged(record, reason);
    if (before !== 'healthy' && record.state === 'healthy') this.#startSlowStart(record);
    this.#rebuild();
  }

  /** Ejects `record` for `ms` from now (replacing any ejection timer) and arms its end. */
  #armEjection(record: BackendRecord, ms: number): void {
    if (record.ejectTimer !== undefined) this.#cancel(record.ejectTimer);
    record.ejectedUntil = this.clock.now() + ms;
    record.ejectTimer = this.#schedule(() => {
      record.ejectTimer = undefined;
      if (!record.removed) this.#uneject(record, 'ejection period over');
    }, ms);
  }

  #clearEjection(record: BackendRecord): void {
    if (record.ejectTimer !== undefined) this.#cancel(record.ejectTimer);
    record.ejectTimer = undefined;
    record.ejectedUntil = undefined;
  }

  // ---------------------------------------------------------------- stats

  /** A snapshot of every backend's state and figures. */
  stats(): PoolStats {
    this.#refreshSlowStartIfDue();
    const now = this.clock.now();
    let healthy = 0;
    let inFlight = 0;
    const backends: BackendStats[] = this.#members.map((r) => {
      if (r.state === 'healthy') healthy++;
      inFlight += r.inFlight;
      return {
        id: r.id,
        url: r.url,
        state: r.state,
        weight: r.weight,
        effectiveWeight: r.effectiveWeight,
        inFlight: r.inFlight,
        requests: r.requests,
        failures: r.failures,
        latencyEwmaMs: this.decayedLatency(r, now),
        zone: r.zone,
        priority: r.priority,
        metadata: r.metadata,
        ejectedUntil: r.ejectedUntil,
      };
    });
    return { backends, panic: this.#panic, healthy, total: this.#members.length, inFlight };
  }

  /** A backend's peak-EWMA latency decayed to `now` (Finagle decays idle backends towards 0). */
  decayedLatency(backend: BackendView, now = this.clock.now()): number {
    if (backend.latencyEwma === 0) return 0;
    return (
      backend.latencyEwma *
      Math.exp(-Math.max(now - backend.latencyStamp, 0) / this.#latencyDecayMs)
    );
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Stops the pool: new calls fail with {@link PoolClosedError} at once; the promise resolves once
   * calls in flight finish or `graceMs` passes, then every timer is cleared. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    const o = checkOptions('close options', options, ['graceMs']);
    const graceMs = optDuration('graceMs', o.graceMs, 0, { min: 0 });
    this.#closed = true;
    this.#closing = (async () => {
      const busy = this.#members.filter((r) => r.inFlight > 0);
      if (graceMs > 0 && busy.length > 0) {
        await Promise.all(busy.map((r) => this.#drain(r.id, { graceMs })));
      }
      for (const t of this.#timers) this.clock.clearTimeout(t);
      this.#timers.clear();
      if (this.#skewTimer !== undefined) this.clock.clearTimeout(this.#skewTimer);
      this.#skewTimer = undefined;
      for (const r of this.#members) {
        r.ejectTimer = undefined;
        for (const wake of r.idleWaiters.splice(0)) wake();
      }
      this.emit('close');
    })();
    return this.#closing;
  }

  /** Same as {@link BackendPool.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- internals

  #assertOpen(): void {
    if (this.#closed) throw new PoolClosedError();
  }

  #get(id: string): BackendRecord {
    if (typeof id !== 'string') throw new LoadBalancerConfigError('id', id, 'a backend id string');
    const record = this.#records.get(id);
    if (record === undefined) {
      const known = [...this.#records.keys()];
      throw new UnknownBackendError(id, known, idOfUrl(this.#records.values(), id));
    }
    return record;
  }

  #schedule(fn: () => void, ms: number): TimerHandle {
    const handle = backgroundTimer(
      this.clock,
      () => {
        this.#timers.delete(handle);
        fn();
      },
      ms,
    );
    this.#timers.add(handle);
    return handle;
  }

  #cancel(handle: TimerHandle): void {
    this.clock.clearTimeout(handle);
    this.#timers.delete(handle);
  }

  #stateMaybeChanged(record: BackendRecord, reason: string): void {
    const to = record.derivedState();
    const from = record.state;
    if (to === from) return;
    record.state = to;
    this.emit('state', { backend: record, from, to, reason });
  }

  #membershipChanged(): void {
    this.#members = [...this.#records.values()];
    this.algorithm.onMembershipChange?.(this.#members);
    this.#rebuild();
  }

  /**
   * Recomputes the split across priority tiers, panic and the eligible snapshots after any state
   * or weight change (src/pool/priority-load.ts, Envoy's priority load): each pick then only
   * draws a tier and lets the algorithm choose among that tier's candidates.
   */
  #rebuild(): void {
    const previous = this.#load;
    const load = PriorityLoad.compute(this.#members, {
      overprovisioningFactor: this.#overprovisioningFactor,
      panicThreshold: this.#panicThreshold,
      minHealthy: this.#minHealthy,
    });
    this.#load = load;
    const candidates = load.candidates;
    for (const r of this.#members) r.eligible = false;
    for (const r of candidates) r.eligible = true;
    this.#candidates = candidates;
    this.#env.eligibleCount = candidates.length;
    const previousRoute = this.#route;
    const route = ZoneRouting.compute(load, this.#members, this.#zoneRules);
    this.#route = route;
    this.algorithm.onEligibleChange?.(route.arrays);
    const panic = load.panic;
    if (panic !== this.#panic) {
      this.#panic = panic;
      let healthy = 0;
      let total = 0;
      for (const t of load.snapshots) {
        healthy += t.figures.healthy;
        total += t.figures.backends;
      }
      this.emit('panic', { active: panic, healthy, total, threshold: this.#panicThreshold });
    }
    if ((load.tiers.length > 1 || previous.tiers.length > 1) && !load.sameSplit(previous)) {
      this.emit('priority-load', {
        tiers: load.tiers,
        normalizedHealth: load.normalizedHealth,
        totalPanic: load.totalPanic,
      });
    }
    const zoneRules = this.#zoneRules;
    if (zoneRules !== undefined && !route.sameSplit(previousRoute)) {
      this.emit('zone-load', { localZone: zoneRules.localZone, tiers: route.tiers });
    }
    if (
      this.#skew !== undefined &&
      this.#skewTimer === undefined &&
      !this.#closed &&
      this.#members.length > 0
    ) {
      this.#armSkewTimer();
    }
  }

  // ---------------------------------------------------------------- slow start

  #startSlowStart(record: BackendRecord): void {
    if (this.#slowStartMs <= 0) return;
    if (record.slowStartFrom === undefined) this.#slowStarting++;
    const now = this.clock.now();
    record.slowStartFrom = now;
    record.effectiveWeight = this.#rampWeight(record, now);
    this.#nextSlowStartRefresh = Math.min(this.#nextSlowStartRefresh, now + this.#slowStartStep());
  }

  #slowStartStep(): number {
    // About 50 steps over the window: smooth enough, and rare enough to keep picks cheap.
    return Math.max(this.#slowStartMs / 50, 1);
  }

  #rampWeight(record: BackendRecord, now: number): number {
    const progress = Math.min(
      Math.max((now - (record.slowStartFrom ?? now)) / this.#slowStartMs, 0),
      1,
    );
    const factor = Math.max(this.#slowStartMin, progress ** (1 / this.#slowStartAggression));
    return record.weight * factor;
  }

  /** Brings slow-start weights up to date when a step is due (picks, stats and explain call it). */
  #refreshSlowStartIfDue(): void {
    if (this.#slowStarting > 0 && this.clock.now() >= this.#nextSlowStartRefresh)
      this.#refreshSlowStart();
  }

  #refreshSlowStart(): void {
    const now = this.clock.now();
    for (const r of this.#members) {
      if (r.slowStartFrom === undefined) continue;
      if (now - r.slowStartFrom >= this.#slowStartMs) {
        r.slowStartFrom = undefined;
        r.effectiveWeight = r.weight;
        this.#slowStarting--;
      } else {
        r.effectiveWeight = this.#rampWeight(r, now);
      }
    }
    this.#nextSlowStartRefresh =
      this.#slowStarting > 0 ? now + this.#slowStartStep() : Number.POSITIVE_INFINITY;
    // Weights changed: give weight-aware algorithms a fresh snapshot.
    this.algorithm.onMembershipChange?.(this.#members);
    this.#rebuild();
  }

  // ---------------------------------------------------------------- skew monitor

  #armSkewTimer(): void {
    const skew = this.#skew!;
    this.#skewTimer = backgroundTimer(
      this.clock,
      () => {
        this.#skewTimer = undefined;
        if (this.#closed) return;
        this.#checkSkew(skew);
        if (this.#members.length > 0) this.#armSkewTimer();
      },
      skew.windowMs,
    );
  }

  #checkSkew(skew: Required<SkewOptions>): void {
    let total = 0;
    for (const r of this.#members) total += r.windowRequests;
    if (total >= skew.minRequests && this.#candidates.length > 0) {
      // A backend's fair share: over every array a pick can receive (a tier, or a zone of it),
      // the array's probability times the backend's weight within it.
      const tierLoad = new Map<number, number>();
      for (const t of this.#load.snapshots) tierLoad.set(t.priority, t.figures.load / 100);
      const expected = new Map<BackendRecord, number>();
      for (const { candidates, p } of this.#route.shares((t) => tierLoad.get(t) ?? 0)) {
        let weight = 0;
        for (const r of candidates) weight += r.effectiveWeight;
        for (const r of candidates) {
          expected.set(r, (expected.get(r) ?? 0) + (p * r.effectiveWeight) / weight);
        }
      }
      for (const r of this.#members) {
        if (!r.eligible || r.windowRequests === 0) continue;
        const share = r.windowRequests / total;
        const expectedShare = expected.get(r) ?? 0;
        if (share > skew.factor * expectedShare) {
          this.emit('skew', {
            backend: r,
            share,
            expectedShare,
            factor: share / expectedShare,
            requests: r.windowRequests,
          });
        }
      }
    }
    for (const r of this.#members) r.windowRequests = 0;
  }
}

const OK_OUTCOME: LeaseOutcome = Object.freeze({ ok: true });

function isSet(x: ReadonlySet<string> | readonly string[]): x is ReadonlySet<string> {
  return !Array.isArray(x);
}

function parseSkew(value: unknown): Required<SkewOptions> | undefined {
  if (value === false) return undefined;
  if (value !== undefined && !isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      'skew',
      value,
      'false or { factor?, windowMs?, minRequests? }',
    );
  }
  const o = checkOptions<SkewOptions>('skew', value as SkewOptions | undefined, [
    'factor',
    'windowMs',
    'minRequests',
  ]);
  return {
    factor: optNumber('skew.factor', o.factor, 2, { min: 1, minExclusive: true }),
    windowMs: optInterval('skew.windowMs', o.windowMs, 10_000),
    minRequests: optNumber('skew.minRequests', o.minRequests, 100, { min: 1, integer: true }),
  };
}

/**
 * The fields of an outcome that observers read (outlier detection compares the status, puts it
 * in messages, and ejects for `retryAfterMs`): a status of another type threw a TypeError inside
 * the release.
 */
function checkOutcomeDetails(o: LeaseOutcome): void {
  if (o.status !== undefined && !(typeof o.status === 'number' && Number.isFinite(o.status))) {
    throw new LoadBalancerConfigError(
      'lease.release(outcome).status',
      o.status,
      'undefined or an HTTP status number',
    );
  }
  if (o.failure !== undefined && !FAILURE_KINDS.has(o.failure)) {
    throw new LoadBalancerConfigError(
      'lease.release(outcome).failure',
      o.failure,
      `undefined or one of ${[...FAILURE_KINDS].map((k) => `'${k}'`).join(', ')}`,
    );
  }
  if (
    o.retryAfterMs !== undefined &&
    !(typeof o.retryAfterMs === 'number' && o.retryAfterMs >= 0)
  ) {
    throw new LoadBalancerConfigError(
      'lease.release(outcome).retryAfterMs',
      o.retryAfterMs,
      'undefined or a number of ms >= 0',
    );
  }
}

/** The lease handed out by {@link BackendPool.acquire}. */
class PoolLease implements Lease {
  readonly backend: BackendRecord;
  readonly acquiredAt: number;
  readonly #pool: BackendPool;
  #released = false;

  constructor(pool: BackendPool, backend: BackendRecord, acquiredAt: number) {
    this.#pool = pool;
    this.backend = backend;
    this.acquiredAt = acquiredAt;
  }

  get released(): boolean {
    return this.#released;
  }

  release(outcome?: LeaseOutcome): boolean {
    if (outcome !== undefined && (typeof outcome !== 'object' || outcome === null)) {
      throw new LoadBalancerConfigError(
        'lease.release(outcome)',
        outcome,
        'undefined or an object { ok: boolean, ... }',
      );
    }
    if (outcome !== undefined && typeof outcome.ok !== 'boolean') {
      throw new LoadBalancerConfigError('lease.release(outcome).ok', outcome.ok, 'true or false');
    }
    // A NaN or infinite latency would poison the backend's EWMA for good.
    if (
      outcome?.latencyMs !== undefined &&
      !(
        typeof outcome.latencyMs === 'number' &&
        outcome.latencyMs >= 0 &&
        outcome.latencyMs < Infinity
      )
    ) {
      throw new LoadBalancerConfigError(
        'lease.release(outcome).latencyMs',
        outcome.latencyMs,
        'undefined or a finite number >= 0',
      );
    }
    if (outcome !== undefined) checkOutcomeDetails(outcome);
    return this.releaseAt(outcome, undefined);
  }

  /**
   * @internal {@link PoolLease.release} of a checked outcome, with a reading of the pool's clock
   * the caller took just before (or `undefined`): the balanced clients read the clock to measure
   * the call anyway, and a read costs about 45 ns on some virtual machines (kvm-clock).
   */
  releaseAt(outcome: LeaseOutcome | undefined, now: number | undefined): boolean {
    if (this.#released) return false;
    this.#released = true;
    this.#pool._release(this.backend, this.acquiredAt, outcome, now);
    return true;
  }
}
