import { LoadBalancerError } from './load-balancer-error.js';

/** Thrown when a call names a backend id that the pool does not hold. */
export class UnknownBackendError extends LoadBalancerError {
  /** The id that was asked for. */
  readonly backendId: string;

  /**
   * @param known The ids the pool holds (the message lists up to 10).
   * @param idOfUrl When `backendId` is the URL of a backend rather than its id: that id.
   */
  constructor(backendId: string, known: readonly string[], idOfUrl?: string) {
    super(
      'LB_UNKNOWN_BACKEND',
      idOfUrl === undefined
        ? `Unknown backend ${JSON.stringify(backendId)}: pass the id of a backend the pool holds (host:port, plus the base path, unless you gave an id); it holds: ${listIds(known, '(none)')}`
        : `Unknown backend ${JSON.stringify(backendId)}: that is the URL of backend ${JSON.stringify(idOfUrl)}; pool methods take backend ids (host:port, plus the base path, unless you gave an id), not URLs`,
    );
    this.backendId = backendId;
  }
}

/**
 * The ids for an error message: the first 10, then `...` when there are more; `none` when there
 * are none.
 * @internal
 */
export function listIds(ids: readonly string[], none: string): string {
  if (ids.length === 0) return none;
  return ids.length > 10 ? `${ids.slice(0, 10).join(', ')}, ...` : ids.join(', ');
}
