import { LoadBalancerError } from './load-balancer-error.js';

/** Thrown by a `Router` when no rule matches a request and the router has no default route. */
export class NoRouteError extends LoadBalancerError {
  /** The request's method. */
  readonly method: string;
  /** The request's path. */
  readonly path: string;

  constructor(method: string, path: string, routes: readonly string[]) {
    super(
      'LB_NO_ROUTE',
      `No route matches ${method} ${path} (routes tried in order: ${routes.join(', ') || '(none)'}); ` +
        'add a rule for it or a `default` route.',
    );
    this.method = method;
    this.path = path;
  }
}
