/** Stable machine-readable codes carried by every loadwise error. */
export type LoadBalancerErrorCode =
  | 'LB_CONFIG'
  | 'LB_NO_BACKEND'
  | 'LB_POOL_CLOSED'
  | 'LB_UNKNOWN_BACKEND'
  | 'LB_ALL_ATTEMPTS_FAILED'
  | 'LB_TIMEOUT'
  | 'LB_REQUEST_REFUSED'
  | 'LB_INVALID_REQUEST'
  | 'LB_LOCAL_FAILURE'
  | 'LB_NO_ROUTE'
  | 'LB_DISCOVERY_TIMEOUT'
  | 'LB_DISCOVERY_CLOSED'
  | 'LB_SESSION_STORE'
  | 'LB_HEALTH_CHECK_TIMEOUT'
  | 'LB_BAD_PORT'
  | 'LB_SNAPSHOT_REFUSED'
  | (string & {});

/**
 * The base class of every error loadwise throws. Match on {@link LoadBalancerError.code}, which
 * is stable across versions, rather than on the message.
 */
export class LoadBalancerError extends Error {
  /** A stable code such as `LB_NO_BACKEND`. */
  readonly code: LoadBalancerErrorCode;

  constructor(code: LoadBalancerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
  }
}
