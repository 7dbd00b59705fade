import type { TimerHandle } from '../clock.js';
import type { BackendState, BackendView } from '../types.js';

/**
 * The pool's own mutable record of one backend. Algorithms see it through {@link BackendView};
 * only the pool writes to it.
 * @internal
 */
export class BackendRecord implements BackendView {
  readonly id: string;
  readonly url: string;
  weight: number;
  effectiveWeight: number;
  inFlight = 0;
  state: BackendState = 'healthy';
  eligible = false;
  latencyEwma = 0;
  latencyStamp = 0;
  requests = 0;
  failures = 0;
  readonly zone: string | undefined;
  readonly priority: number;
  readonly metadata: Readonly<Record<string, unknown>>;

  /** Health as last decided from probes (independent of draining and ejection). */
  healthy = true;
  draining = false;
  removed = false;
  /** A `remove()` is under way (draining before the backend is forgotten). */
  leaving = false;
  ejectedUntil: number | undefined = undefined;
  ejectTimer: TimerHandle | undefined = undefined;
  ejectReason = '';
  /** Whether a passing probe may end the current ejection. */
  ejectEndsOnProbe = true;
  /** Clock reading when slow start began, or undefined when at full weight. */
  slowStartFrom: number | undefined = undefined;
  /** Consecutive probe results per reporting source. */
  readonly probeRuns = new Map<string, { ok: number; fail: number }>();
  /** Resolvers waiting for inFlight to reach 0. */
  readonly idleWaiters: Array<() => void> = [];
  /** Requests in the current skew window. */
  windowRequests = 0;

  constructor(
    id: string,
    url: string,
    weight: number,
    zone: string | undefined,
    priority: number,
    metadata: Readonly<Record<string, unknown>>,
  ) {
    this.id = id;
    this.url = url;
    this.weight = weight;
    this.effectiveWeight = weight;
    this.zone = zone;
    this.priority = priority;
    this.metadata = metadata;
  }

  /** The state implied by the flags: draining, then ejected, then health. */
  derivedState(): BackendState {
    if (this.draining) return 'draining';
    if (this.ejectedUntil !== undefined) return 'ejected';
    return this.healthy ? 'healthy' : 'unhealthy';
  }
}
