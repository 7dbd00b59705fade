import { redactUrl } from '../redact.js';
import { LoadBalancerError } from './load-balancer-error.js';

/** Thrown by a `Router` when no rule matches a request and the router has no default route. */
export class NoRouteError extends LoadBalancerError {
  /** The request's method. */
  readonly method: string;
  /** The request's path (a URL's credentials, if it held one, shown as `***`). */
  readonly path: string;

  constructor(method: string, rawPath: string, routes: readonly string[]) {
    const path = redactUrl(rawPath);
    super(
      'LB_NO_ROUTE',
      `No route matches ${method} ${path} (routes tried in order: ${routes.join(', ') || '(none)'}); ` +
        'add a rule for it or a `default` route.',
    );
    this.method = method;
    this.path = path;
  }
}
