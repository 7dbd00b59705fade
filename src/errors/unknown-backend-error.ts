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
    const list = known.length > 10 ? `${known.slice(0, 10).join(', ')}, ...` : known.join(', ');
    super(
      'LB_UNKNOWN_BACKEND',
      idOfUrl === undefined
        ? `Unknown backend ${JSON.stringify(backendId)}: pass the id of a backend the pool holds (host:port, plus the base path, unless you gave an id); it holds: ${list || '(none)'}`
        : `Unknown backend ${JSON.stringify(backendId)}: that is the URL of backend ${JSON.stringify(idOfUrl)}; pool methods take backend ids (host:port, plus the base path, unless you gave an id), not URLs`,
    );
    this.backendId = backendId;
  }
}
