import { LoadBalancerError } from './load-balancer-error.js';

/**
 * A backend of a balanced fetch listens on a port that the Fetch standard blocks (a "bad port",
 * https://fetch.spec.whatwg.org/#port-blocking: 6000, 6667, 10080 and other ports of non-HTTP
 * services). Node, Deno and browsers refuse every request to such a port, so the backend could
 * never answer a call.
 *
 * `createBalancedFetch` throws it when its target already holds such a backend. A backend added
 * later (`pool.add()`, discovery) fails each attempt picked for it with this error before
 * anything is sent: the attempt counts as a `connect` failure of that backend and the call is
 * retried on another one.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({ backends: ['http://10.0.1.10:6000'] });
 * createBalancedFetch(pool); // throws BadPortError: port 6000 is a bad port
 * ```
 */
export class BadPortError extends LoadBalancerError {
  /** The backend's id. */
  readonly backendId: string;
  /** The backend's URL. */
  readonly url: string;
  /** The blocked port. */
  readonly port: number;

  constructor(backendId: string, url: string, port: number) {
    super(
      'LB_BAD_PORT',
      `Backend ${JSON.stringify(backendId)} (${url}) uses port ${port}, a "bad port" that the Fetch standard blocks (https://fetch.spec.whatwg.org/#port-blocking): fetch refuses every request to it. Serve the backend on another port, or reach it through pool.acquire() with a client of your own.`,
    );
    this.backendId = backendId;
    this.url = url;
    this.port = port;
  }
}
