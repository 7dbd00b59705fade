import type { AttemptRecord } from './all-attempts-failed-error.js';
import { LoadBalancerError } from './load-balancer-error.js';

/** Which limit ran out: one attempt's `timeoutMs`, or the whole call's `deadlineMs`. */
export type TimeoutScope = 'attempt' | 'deadline';

/**
 * A time limit of a balanced call ran out. With scope `attempt` it is the abort reason of one
 * attempt that got no response within `timeoutMs` (it then appears in
 * `AllAttemptsFailedError.attempts`, or as that error's `cause`); with scope `deadline` the
 * whole call, retries and backoff included, exceeded `deadlineMs`, and this error is what the
 * call rejects with (or what a body still being read errors with).
 *
 * @example
 * ```ts
 * const fetchUsers = createBalancedFetch(pool, { timeoutMs: 500, deadlineMs: 2000 });
 * try {
 *   await fetchUsers('/api/users/42');
 * } catch (error) {
 *   if (error instanceof TimeoutError && error.scope === 'deadline') return serveStale();
 *   throw error;
 * }
 * ```
 */
export class TimeoutError extends LoadBalancerError {
  /** Which limit ran out. */
  readonly scope: TimeoutScope;
  /** The limit, in ms. */
  readonly timeoutMs: number;
  /** The backend of the attempt that timed out, for scope `attempt`. */
  readonly backend: string | undefined;
  /** The attempts made before the deadline ran out (scope `deadline`; empty otherwise). */
  readonly attempts: readonly AttemptRecord[];

  constructor(
    scope: TimeoutScope,
    timeoutMs: number,
    details: { backend?: string; attempts?: readonly AttemptRecord[]; cause?: unknown } = {},
  ) {
    super(
      'LB_TIMEOUT',
      scope === 'attempt'
        ? `No response from backend ${details.backend ?? '(unknown)'} within ${timeoutMs} ms (timeoutMs); ` +
            'the backend may hang or be overloaded. Raise timeoutMs if it is just slow (timeoutMs: false turns the per-attempt limit off).'
        : `The call did not finish within its deadline of ${timeoutMs} ms (deadlineMs)` +
            `${details.attempts && details.attempts.length > 0 ? ` after ${details.attempts.length} attempt(s)` : ''}; ` +
            'raise deadlineMs (or turn it off with deadlineMs: false), or lower timeoutMs/retries so attempts fit in it.',
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.scope = scope;
    this.timeoutMs = timeoutMs;
    this.backend = details.backend;
    this.attempts = Object.freeze([...(details.attempts ?? [])]);
  }
}
