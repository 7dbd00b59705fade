import { redactUrl } from '../redact.js';
import { describe } from './config-error.js';
import { LoadBalancerError } from './load-balancer-error.js';

/**
 * Why a balanced fetch refused a URL:
 * - `protocol-relative`: `//host/...` (or a disguise of it such as `/\host`), which names a host;
 * - `scheme`: not `http:` or `https:` (`javascript:`, `file:`, `data:`...);
 * - `scheme-change`: the host is known but with another scheme than the pool's (`https:` to an
 *   `http:` pool, or the reverse);
 * - `origin`: an absolute URL whose origin is neither a backend's nor a configured service origin;
 * - `path-escape`: dot segments (`..`) climbing above the path's root;
 * - `ambiguous-path`: an encoding servers decode differently (`..%2f`, `%5c..`, `%00`, `..;`,
 *   double encoding), refused when a backend has a base path the decoded path could climb
 *   above (the `ambiguousPaths` option of the balanced fetch);
 * - `invalid-url`: not a URL at all.
 */
export type RequestRefusedReason =
  | 'protocol-relative'
  | 'scheme'
  | 'scheme-change'
  | 'origin'
  | 'path-escape'
  | 'ambiguous-path'
  | 'invalid-url';

const ADVICE: Record<RequestRefusedReason, string> = {
  'protocol-relative': 'pass a path such as "/users/42"; a leading "//" names another host',
  scheme: 'only http: and https: URLs can be balanced; pass a path such as "/users/42"',
  'scheme-change':
    "the pool's backends use another scheme; pass a path, or configure https backends",
  origin:
    'pass a path such as "/users/42", or add the logical origin to the `serviceOrigins` option',
  'path-escape': 'remove the ".." segments that climb above the root of the path',
  'ambiguous-path':
    'the path holds an encoding servers decode differently (an encoded "/", "\\" or NUL, a double encoding, or "..;"), which could climb above a backend\'s base path once decoded; pass such values in the query, or set ambiguousPaths: \'allow\' if no backend decodes them',
  'invalid-url': 'pass a path such as "/users/42" or an absolute http(s) URL',
};

/**
 * Thrown (before anything is sent) when a balanced fetch is asked for a URL that would leave the
 * pool: a balancer must never become a way to reach arbitrary hosts. Relative paths and absolute
 * URLs whose origin is a backend's or a configured service origin are accepted.
 *
 * @example
 * ```ts
 * const fetchUsers = createBalancedFetch(pool, { serviceOrigins: ['http://users.internal'] });
 * await fetchUsers('http://users.internal/api/users/42'); // goes to a backend of the pool
 * await fetchUsers('//evil.example/x'); // rejects: RequestRefusedError, reason 'protocol-relative'
 * ```
 */
export class RequestRefusedError extends LoadBalancerError {
  /** The URL as given, without any credentials it carried (shown as `***`). */
  readonly url: string;
  /** Why it was refused. */
  readonly reason: RequestRefusedReason;

  constructor(url: string, reason: RequestRefusedReason, allowedOrigins: readonly string[] = []) {
    const allowed =
      allowedOrigins.length === 0
        ? ''
        : ` Allowed origins: ${allowedOrigins.slice(0, 5).join(', ')}${allowedOrigins.length > 5 ? ', ...' : ''}.`;
    super(
      'LB_REQUEST_REFUSED',
      `Refused to balance ${describe(url)} (${reason}): ${ADVICE[reason]}.${allowed}`,
    );
    this.url = redactUrl(url);
    this.reason = reason;
  }
}
