import { LoadBalancerError } from './load-balancer-error.js';

/** Thrown when a call names a backend id that the pool does not hold. */
export class UnknownBackendError extends LoadBalancerError {
  /** The id that was asked for. */
  readonly backendId: string;

  constructor(backendId: string, known: readonly string[]) {
    const list = known.length > 10 ? `${known.slice(0, 10).join(', ')}, ...` : known.join(', ');
    super(
      'LB_UNKNOWN_BACKEND',
      `Unknown backend ${JSON.stringify(backendId)}; the pool holds: ${list || '(none)'}`,
    );
    this.backendId = backendId;
  }
}
