import type { Clock } from './clock.js';
import type { Random } from './random.js';

/**
 * Where a backend stands:
 * - `healthy`: takes new calls;
 * - `unhealthy`: failed its health checks; no new calls (except in panic mode);
 * - `draining`: leaving; no new calls, calls in flight finish;
 * - `ejected`: taken out for a while by outlier detection or a `Retry-After`; back on its own.
 */
export type BackendState = 'healthy' | 'unhealthy' | 'draining' | 'ejected';

/** A backend as given to the pool. */
export interface BackendInit {
  /** Base URL, e.g. `http://10.0.1.10:8080` or `http://10.0.1.10:8080/v1`. */
  url: string;
  /**
   * Relative share of traffic for weight-aware algorithms. A finite number > 0.
   * @default 1
   */
  weight?: number;
  /**
   * Stable identity of the backend. Defaults to the URL's `host:port` (with the base path when
   * it has one), which is also what ketama-compatible hashing uses.
   */
  id?: string;
  /** Locality label (zone, rack, region) for zone-aware routing and reporting. */
  zone?: string;
  /**
   * Priority tier, 0 being the best. The best tier takes every call while enough of it is
   * healthy; as its backends fail, a share of the calls spills to the next tiers in order, as
   * Envoy's priority levels do (see the pool's `overprovisioningFactor`). An integer >= 0.
   * @default 0
   */
  priority?: number;
  /** Free-form data carried along and returned in stats and events. */
  metadata?: Readonly<Record<string, unknown>>;
}

/** A backend given as a URL string or a {@link BackendInit}. */
export type BackendSpec = string | BackendInit;

/**
 * A read-only view of one backend as the pool holds it. Algorithms and observers read these;
 * only the pool writes them.
 */
export interface BackendView {
  /** Stable identity (unique in the pool). */
  readonly id: string;
  /** Normalized base URL (no trailing slash unless the path is `/`). */
  readonly url: string;
  /** The configured weight. */
  readonly weight: number;
  /** The weight in force now: lower than {@link BackendView.weight} during slow start. */
  readonly effectiveWeight: number;
  /** Calls (leases) currently in flight. */
  readonly inFlight: number;
  /** Current state. */
  readonly state: BackendState;
  /** Whether the current pick may choose this backend (kept up to date by the pool). */
  readonly eligible: boolean;
  /** Peak-EWMA latency in ms at {@link BackendView.latencyStamp} (0 before any sample). */
  readonly latencyEwma: number;
  /** Clock reading of the last latency sample. */
  readonly latencyStamp: number;
  /** Total leases handed out for this backend. */
  readonly requests: number;
  /** Total leases released as failures. */
  readonly failures: number;
  /** Locality label, when known. */
  readonly zone: string | undefined;
  /** Priority tier (0 is the best). */
  readonly priority: number;
  /** Free-form data from the backend's definition. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** What a caller may tell the pool about one call, to steer the pick. */
export interface PickContext {
  /** Affinity key for hash-based algorithms and sticky sessions (user id, cache key, tenant). */
  key?: string | undefined;
  /** Client address, for `IpHash` (`req.socket.remoteAddress` may be passed as it is). */
  clientAddress?: string | undefined;
  /** Backend ids to avoid if any other is routable (retries prefer untried backends). */
  exclude?: ReadonlySet<string> | readonly string[];
  /**
   * Route to this backend id if it can take the call (sticky sessions). With
   * `allowDraining`, a draining backend still takes calls for existing sessions.
   */
  affinity?: { id: string; allowDraining?: boolean };
}

/** Facilities a pool lends to its algorithm when the algorithm is attached. */
export interface AlgorithmEnv {
  readonly clock: Clock;
  readonly random: Random;
  /** Decay time constant of the pool's peak-EWMA latency, in ms. */
  readonly latencyDecayMs: number;
  /**
   * How many backends take calls now, over every priority tier, each counted once however many
   * of the announced snapshots hold it. Kept up to date by the pool (set before
   * `onEligibleChange`); an environment made by other code may leave it out.
   */
  readonly eligibleCount?: number;
  /**
   * Calls in flight in the pool now: acquired, not yet released. Kept up to date by the pool; an
   * environment made by other code may leave it out.
   */
  readonly inFlight?: number;
}

/** Details an algorithm may give to `pool.explain()`. */
export interface AlgorithmExplanation {
  /** The backend the algorithm would choose now, when that can be known without picking. */
  readonly wouldPick?: BackendView | undefined;
  /** A sentence on how the algorithm decides, with the figures it would compare. */
  readonly note: string;
}

/**
 * A balancing strategy: a pure picker over the pool's eligible backends. It never changes
 * backend state, and its `pick` allocates nothing.
 */
export interface Algorithm {
  /** A short name for logs and `explain()`, e.g. `round-robin`. */
  readonly name: string;
  /** Called once when a pool adopts the algorithm. An instance serves one pool only. */
  attach?(env: AlgorithmEnv): void;
  /**
   * Called whenever membership or weights change, with every member (eligible or not), so
   * table-based algorithms rebuild here and never during a pick.
   */
  onMembershipChange?(members: readonly BackendView[]): void;
  /**
   * Called with the pool's new eligible snapshots whenever they change (before the next pick):
   * one array per priority tier that takes a share of the calls, best tier first, or with
   * zone-aware routing one array per zone a tier routes to (the local zone first; and the whole
   * tier too while `routingEnabled` is below 100). A pool whose calls all go to one array
   * (every pool without priority tiers or zones) announces a single array. `pick` then receives
   * one of these very arrays, except on retries that exclude backends already tried, which get
   * a shorter array of their own; keep per-array state (a rotation, a table) per snapshot.
   */
  onEligibleChange?(snapshots: readonly (readonly BackendView[])[]): void;
  /**
   * Picks one of `candidates` (never empty; every element has `eligible === true`). The
   * candidates of one pick all belong to one priority tier, and with zone-aware routing to one
   * zone: the pool chooses the tier and the zone first. Other eligible backends (of other tiers
   * or zones) must not be returned.
   * Return `undefined` only when the algorithm cannot choose (the pool then reports an error).
   */
  pick(candidates: readonly BackendView[], ctx: PickContext): BackendView | undefined;
  /** Says how the next pick would be decided, without changing any state. */
  explain?(candidates: readonly BackendView[], ctx: PickContext): AlgorithmExplanation;
  /** Called after a lease on `backend` was taken (its `inFlight` already counts it). */
  onAcquire?(backend: BackendView): void;
  /** Called after a lease on `backend` was released (its `inFlight` no longer counts it). */
  onRelease?(backend: BackendView): void;
}

/**
 * How a failed call failed. Three kinds say nothing against the backend and never count as its
 * failure (statistics, outlier detection): `aborted` (the caller gave up), `local` (the call
 * failed in this process before anything reached the backend: a local resource such as file
 * descriptors or ports ran out, or the request was refused by the HTTP implementation), and
 * `cancelled` (another attempt of the same call answered first, e.g. a hedge; its time so far
 * still counts as a latency sample, a lower bound of the backend's latency).
 */
export type FailureKind =
  | 'connect'
  | 'timeout'
  | 'reset'
  | 'http'
  | 'protocol'
  | 'aborted'
  | 'local'
  | 'cancelled'
  | 'other';

/** What happened to a call, reported through `lease.release()`. */
export interface LeaseOutcome {
  /** Whether the call succeeded. */
  ok: boolean;
  /** Latency to report; measured from acquire to release on the pool's clock when omitted. */
  latencyMs?: number;
  /** HTTP status, when there was one. */
  status?: number;
  /** How the call failed, when it did. */
  failure?: FailureKind;
  /** Server-requested back-off (`Retry-After` on 429/503), in ms. */
  retryAfterMs?: number;
  /** The underlying error, when there was one. */
  error?: unknown;
}

/** A claim on one backend for one call. Release it exactly once; later releases are ignored. */
export interface Lease {
  /** The backend picked for this call. */
  readonly backend: BackendView;
  /** Clock reading when the lease was taken. */
  readonly acquiredAt: number;
  /** Whether the lease was released already. */
  readonly released: boolean;
  /**
   * Ends the call and feeds its outcome to the pool's statistics.
   * @returns `true` the first time, `false` for repeated releases (which change nothing).
   */
  release(outcome?: LeaseOutcome): boolean;
}

/** Per-backend figures from `pool.stats()`. */
export interface BackendStats {
  readonly id: string;
  readonly url: string;
  readonly state: BackendState;
  readonly weight: number;
  readonly effectiveWeight: number;
  readonly inFlight: number;
  readonly requests: number;
  readonly failures: number;
  /** Peak-EWMA latency decayed to now, in ms. */
  readonly latencyEwmaMs: number;
  readonly zone: string | undefined;
  readonly priority: number;
  readonly metadata: Readonly<Record<string, unknown>>;
  /** When an ejection ends (clock reading), if ejected. */
  readonly ejectedUntil: number | undefined;
}

/** A snapshot of the whole pool. */
export interface PoolStats {
  readonly backends: readonly BackendStats[];
  /** Whether the panic rule is routing across unhealthy backends now. */
  readonly panic: boolean;
  readonly healthy: number;
  readonly total: number;
  readonly inFlight: number;
}

/**
 * One priority tier's share of the calls, as the pool computes it (Envoy's priority load): in
 * `pool.explain().tiers` and the `priority-load` event.
 */
export interface PriorityTierLoad {
  /** The tier (0 is the best). */
  readonly priority: number;
  /** Its backends that are not draining. */
  readonly backends: number;
  /** How many of them are healthy. */
  readonly healthy: number;
  /**
   * Its health score in whole percent: min(100, ⌊overprovisioningFactor × 100 × healthy /
   * backends⌋), so a tier at 72% healthy still scores 100 with the default factor 1.4.
   */
  readonly health: number;
  /** The percentage of calls it takes; the tiers' loads add up to 100 while any can take one. */
  readonly load: number;
  /** Whether its unhealthy backends take calls too (panic within the tier). */
  readonly panic: boolean;
}

/**
 * One zone's figures in zone-aware routing within a priority tier (Envoy's locality percentages,
 * `calculateLocalityPercentages`): in `pool.explain().zones` and the `zone-load` event. Shares
 * are percentages with two decimals, computed in Envoy's basis points (1/100 of a percent).
 */
export interface ZoneLoad {
  /** The zone label (`undefined` for backends that have none). */
  readonly zone: string | undefined;
  /** Whether it is the pool's local zone. */
  readonly local: boolean;
  /** Its backends in the tier that are not draining. */
  readonly backends: number;
  /** How many of them are healthy. */
  readonly healthy: number;
  /** Its share of the tier's healthy backends, in percent (Envoy's upstream percentage). */
  readonly healthyShare: number;
  /**
   * Its share of the calling fleet, in percent (Envoy's local percentage): from the pool's
   * `zoneAware.callerZones`, or by default its share of the tier's backends, as if the callers
   * were spread over the zones like the backends.
   */
  readonly callerShare: number;
  /**
   * The percentage of the tier's zone-routed calls this pool sends to the zone, or `undefined`
   * while zone-aware routing is off for the tier (the algorithm then picks across every zone).
   */
  readonly load: number | undefined;
}

/**
 * How a tier's calls are routed by zone:
 * - `direct`: the local zone has at least its callers' share of the healthy backends, so every
 *   zone-routed call stays in it (Envoy's `LocalityDirect`);
 * - `residual`: it has less, so it takes (its healthy share / its callers' share) of the calls
 *   and the rest spill to the other zones in proportion to their spare capacity (Envoy's
 *   `LocalityResidual`);
 * - `off`: a precondition failed (the tier is in panic, the local zone has no healthy backend,
 *   fewer healthy backends than `minClusterSize`, fewer than two zones): the algorithm picks
 *   across every zone.
 */
export type ZoneRoutingMode = 'direct' | 'residual' | 'off';

/** Zone-aware routing within one priority tier that takes calls. */
export interface TierZoneLoad {
  /** The tier (0 is the best). */
  readonly priority: number;
  /** The pool's local zone. */
  readonly localZone: string;
  readonly mode: ZoneRoutingMode;
  /** Why this mode, with the figures that decided it. */
  readonly why: string;
  /**
   * The percentage of the tier's picks zone-aware routing applies to (the pool's
   * `zoneAware.routingEnabled`, Envoy's `routing_enabled`); the others pick across every zone.
   */
  readonly routingEnabled: number;
  /** Every zone with backends in the tier, the local zone first. */
  readonly zones: readonly ZoneLoad[];
}

/** The answer of `pool.explain(ctx)`. */
export interface PickExplanation {
  readonly algorithm: string;
  /** Whether any tier that takes calls routes across unhealthy backends. */
  readonly panic: boolean;
  /**
   * How the calls split across priority tiers, best first: one entry per tier that has
   * backends (a single one in a pool without tiers).
   */
  readonly tiers: readonly PriorityTierLoad[];
  /**
   * Zone-aware routing in each tier that takes calls, best first; empty when the pool's
   * `zoneAware` option is off.
   */
  readonly zones: readonly TierZoneLoad[];
  /** The backends the algorithm would choose from (in every zone). */
  readonly eligible: readonly {
    id: string;
    state: BackendState;
    effectiveWeight: number;
    inFlight: number;
  }[];
  /** Backends left out, with why. */
  readonly excluded: readonly { id: string; state: BackendState; why: string }[];
  /** Whether a sticky affinity decided the pick. */
  readonly affinity: 'applied' | 'not-routable' | 'none';
  /** The backend that would be picked, when known without picking. */
  readonly wouldPick: string | undefined;
  readonly note: string;
  /** Set when nothing could be picked. */
  readonly error?: string;
}

/** Event payloads emitted by a pool. */
export interface PoolEvents {
  /** A backend changed state. */
  state: (e: {
    backend: BackendView;
    from: BackendState;
    to: BackendState;
    reason: string;
  }) => void;
  added: (e: { backend: BackendView }) => void;
  removed: (e: { backend: BackendView }) => void;
  /** A weight or another attribute changed. */
  updated: (e: { backend: BackendView }) => void;
  /**
   * Panic mode entered (`active: true`) or left. `healthy` and `total` count the backends (not
   * draining) of the tiers that take calls.
   */
  panic: (e: { active: boolean; healthy: number; total: number; threshold: number }) => void;
  /**
   * The split of calls across priority tiers changed (a tier's load or panic), in a pool with
   * more than one tier. `normalizedHealth` is the tiers' health summed and capped at 100; below
   * 100 tiers may panic, and with `totalPanic` every tier is in panic and the load follows
   * backend counts.
   */
  'priority-load': (e: {
    tiers: readonly PriorityTierLoad[];
    normalizedHealth: number;
    totalPanic: boolean;
  }) => void;
  /**
   * The split of calls across zones changed in a pool with `zoneAware` routing (a tier's mode or
   * a zone's load): one entry per tier that takes calls, as in `pool.explain().zones`.
   */
  'zone-load': (e: { localZone: string; tiers: readonly TierZoneLoad[] }) => void;
  /** A backend took a share of recent requests above `factor` × its fair share. */
  skew: (e: {
    backend: BackendView;
    share: number;
    expectedShare: number;
    factor: number;
    requests: number;
  }) => void;
  /** A drain finished (all calls done) or its grace period ran out. */
  drained: (e: { backend: BackendView; completed: boolean; remaining: number }) => void;
  /** A lease was released; observers (outlier detection, metrics) read outcomes here. */
  release: (e: { backend: BackendView; outcome: LeaseOutcome; latencyMs: number }) => void;
  /** The pool was closed; attached components stop with it. */
  close: () => void;
  /** A lease was taken. */
  acquire: (e: { backend: BackendView; ctx: PickContext | undefined }) => void;
}
