import type { AttemptRecord } from './all-attempts-failed-error.js';
import { LoadBalancerError } from './load-balancer-error.js';

/** Advice for the local error codes a call may end with. */
const ADVICE: Record<string, string> = {
  EMFILE: 'this process has too many open files: raise its limit (ulimit -n) or lower concurrency',
  ENFILE: 'the system has too many open files: lower concurrency or raise fs.file-max',
  EADDRNOTAVAIL:
    'no local port or address is free: reuse connections (keep-alive) or lower concurrency',
  ENOBUFS: 'the system is out of network buffers: lower concurrency',
  ENOMEM: 'the system is out of memory',
};

/**
 * Thrown when an attempt failed in this process, before any byte could reach the backend: a
 * local resource ran out (`EMFILE`, `ENFILE`, `EADDRNOTAVAIL`, ...), or the fetch implementation
 * refused the request itself (an invalid argument). Such a failure is the caller's side: the
 * backend is not blamed (its lease is released as `failure: 'local'`, which no statistic, outlier
 * detector or health rule counts), and the call is not retried on another backend, where it
 * would fail the same way.
 *
 * @example
 * ```ts
 * try {
 *   await fetchUsers('/users/42');
 * } catch (error) {
 *   if (error instanceof LocalFailureError) log.error('client-side failure', error.cause);
 *   throw error;
 * }
 * ```
 */
export class LocalFailureError extends LoadBalancerError {
  /** The backend that had been picked (it received nothing). */
  readonly backend: string;
  /** Every attempt of the call, in order; the last one is the local failure. */
  readonly attempts: readonly AttemptRecord[];

  constructor(
    backend: string,
    detail: string,
    attempts: readonly AttemptRecord[],
    options?: { cause?: unknown; localCode?: string | undefined },
  ) {
    const advice =
      (options?.localCode !== undefined ? ADVICE[options.localCode] : undefined) ??
      'check the request and the runtime (the fetch implementation refused it)';
    super(
      'LB_LOCAL_FAILURE',
      `The call failed in this process before anything reached ${backend} (${detail}); the backend is not blamed and the call is not retried on another backend: ${advice}.`,
      options,
    );
    this.backend = backend;
    this.attempts = Object.freeze([...attempts]);
  }
}
