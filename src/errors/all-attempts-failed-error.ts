import { LoadBalancerError } from './load-balancer-error.js';

/**
 * One attempt of a balanced call, as reported by {@link AllAttemptsFailedError} and
 * `TimeoutError.attempts`.
 */
export interface AttemptRecord {
  /** The backend's id, or `'(none)'` when no backend could be picked for this attempt. */
  readonly backend: string;
  /**
   * How the attempt ended: `'http'` (a response with a failing status, see `status`),
   * `'connect'` (nothing was sent), `'reset'`, `'timeout'`, `'protocol'`, `'aborted'`,
   * `'cancelled'` (another attempt answered first), `'local'`,
   * `'no-backend'` or `'other'`.
   */
  readonly outcome: string;
  /** The HTTP status, when the attempt got a response. */
  readonly status?: number;
  /** The error the attempt failed with, when it failed without a response. */
  readonly error?: unknown;
  /** Set on a hedge: an extra attempt sent because an earlier one was slow to answer. */
  readonly hedge?: boolean;
}

/**
 * Thrown by a balanced fetch when no attempt produced a response: every attempt failed to
 * connect, was reset or timed out, and retrying stopped (no retries left, the request could
 * not be retried safely, or the retry budget was spent). `attempts` lists each attempt's
 * backend and outcome; `cause` is the last attempt's error.
 *
 * When the last attempt did get a response (a 503, say), the balanced fetch returns that
 * response instead of throwing, as the platform `fetch` does.
 *
 * @example
 * ```ts
 * try {
 *   await fetchUsers('/api/users/42');
 * } catch (error) {
 *   if (error instanceof AllAttemptsFailedError) {
 *     for (const a of error.attempts) log.warn(`${a.backend}: ${a.outcome}`, a.error);
 *   }
 *   throw error;
 * }
 * ```
 */
export class AllAttemptsFailedError extends LoadBalancerError {
  /** Every attempt, in order. */
  readonly attempts: readonly AttemptRecord[];
  /** Why no further attempt was made. */
  readonly stoppedBecause: string;

  constructor(
    attempts: readonly AttemptRecord[],
    stoppedBecause: string,
    options?: { cause?: unknown },
  ) {
    const n = attempts.length;
    const what = attempts.map(describeAttempt).join('; ');
    super(
      'LB_ALL_ATTEMPTS_FAILED',
      `${n === 1 ? 'The only attempt' : `All ${n} attempts`} failed (${what}); no retry because ${stoppedBecause}. ` +
        'Check that the backends are up and reachable; raise `retries` or `timeoutMs` if failures are transient.',
      options,
    );
    this.attempts = Object.freeze([...attempts]);
    this.stoppedBecause = stoppedBecause;
  }
}

/** A short rendering of one attempt for messages, e.g. `10.0.0.1:80 connect (ECONNREFUSED)`. */
export function describeAttempt(a: AttemptRecord): string {
  const who = a.hedge === true ? `${a.backend} (hedge)` : a.backend;
  if (a.status !== undefined) return `${who} status ${a.status}`;
  const detail = errorDetail(a.error);
  return `${who} ${a.outcome}${detail ? ` (${detail})` : ''}`;
}

function errorDetail(error: unknown): string {
  if (error === undefined || error === null) return '';
  if (typeof error !== 'object') return String(error);
  const e = error as { code?: unknown; message?: unknown; cause?: unknown };
  const cause = e.cause as { code?: unknown; message?: unknown } | undefined;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof e.code === 'string' && !e.code.startsWith('LB_')) return e.code;
  if (typeof cause?.message === 'string' && cause.message !== '') return cause.message;
  return typeof e.message === 'string' ? e.message : '';
}
