import { LoadBalancerError, type LoadBalancerErrorCode } from './load-balancer-error.js';

/** Why no backend could be picked. */
export type NoBackendReason = 'empty' | 'all-unhealthy' | 'all-draining' | 'pool-closed';

const ADVICE: Record<NoBackendReason, string> = {
  empty: 'the pool has no backends; add some with pool.add() or check service discovery',
  'all-unhealthy':
    'every backend is unhealthy or ejected; check the health check (does it depend on a shared dependency?) and the backends themselves',
  'all-draining': 'every backend is draining; undrain one or add new backends',
  'pool-closed': 'the pool was closed; create a new pool',
};

/** Thrown by `acquire()` when no backend can take the call. `reason` says why. */
export class NoBackendAvailableError extends LoadBalancerError {
  /** Why nothing could be picked. */
  readonly reason: NoBackendReason;
  /** How many backends the pool held, by state, when the pick failed. */
  readonly counts: Readonly<Record<string, number>>;

  constructor(
    reason: NoBackendReason,
    counts: Readonly<Record<string, number>> = {},
    options?: { cause?: unknown; code?: LoadBalancerErrorCode },
  ) {
    const summary = Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ');
    super(
      options?.code ?? 'LB_NO_BACKEND',
      `No backend available (${reason}${summary ? `: ${summary}` : ''}): ${ADVICE[reason]}`,
      options,
    );
    this.reason = reason;
    this.counts = counts;
  }
}
