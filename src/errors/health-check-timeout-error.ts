import { LoadBalancerError } from './load-balancer-error.js';

/**
 * The reason a health probe failed when it did not finish within the checker's `timeoutMs`. The
 * probe's `AbortSignal` is aborted with this error, so a probe that honours the signal stops its
 * I/O at once.
 */
export class HealthCheckTimeoutError extends LoadBalancerError {
  /** The backend that was probed. */
  readonly backendId: string;
  /** The timeout that ran out, in ms. */
  readonly timeoutMs: number;

  constructor(backendId: string, timeoutMs: number) {
    super(
      'LB_HEALTH_CHECK_TIMEOUT',
      `Health probe of ${JSON.stringify(backendId)} timed out after ${timeoutMs} ms: the backend did not answer in time; if it is merely slow, raise timeoutMs (it must stay below intervalMs)`,
    );
    this.backendId = backendId;
    this.timeoutMs = timeoutMs;
  }
}
