import { LoadBalancerError } from './load-balancer-error.js';

/**
 * The session-store operations the manager performs, and `connect`, which a store's own
 * `connect()` (`RedisSessionStore.connect`) fails with.
 */
export type SessionStoreOperation = 'get' | 'set' | 'delete' | 'purge' | 'connect';

/**
 * A session-store call failed or did not answer in time. The session manager never lets this
 * reject a caller's call: it balances the call normally and reports the error in its
 * `storeError` event. `cause` holds the store's own error, when there was one.
 *
 * `RedisSessionStore.connect()` rejects with it (operation `connect`) when Redis cannot be
 * reached: the message names the address and the store's own error (`connect ECONNREFUSED`).
 */
export class SessionStoreError extends LoadBalancerError {
  /** Which operation failed. */
  readonly operation: SessionStoreOperation;
  /** Whether the store did not answer within the manager's `storeTimeoutMs`. */
  readonly timedOut: boolean;

  /**
   * @param target For `connect`: where the store was to be reached (a URL without credentials).
   */
  constructor(
    operation: SessionStoreOperation,
    detail: { timedOut: true; timeoutMs: number } | { timedOut: false; cause: unknown },
    target?: string,
  ) {
    super(
      'LB_SESSION_STORE',
      operation === 'connect' && !detail.timedOut
        ? `Session store connect failed${target === undefined ? '' : ` (${target})`}: ${describeCause(detail.cause)}. Check that Redis is running and reachable at that address (the url option; rediss:// for TLS), or raise connectTimeoutMs if it is only slow`
        : detail.timedOut
          ? `Session store ${operation} did not answer within ${detail.timeoutMs} ms; the call was balanced without stickiness. Check the store (Redis) latency, or raise storeTimeoutMs`
          : `Session store ${operation} failed (${describeCause(detail.cause)}); the call was balanced without stickiness. Check that the store (Redis) is reachable`,
      detail.timedOut ? undefined : { cause: detail.cause },
    );
    this.operation = operation;
    this.timedOut = detail.timedOut;
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
