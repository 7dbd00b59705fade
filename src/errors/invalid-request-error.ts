import { LoadBalancerError } from './load-balancer-error.js';

/** What was wrong with a request a balanced call refused before picking a backend. */
export type InvalidRequestReason = 'method' | 'header-name' | 'header-value';

const RULES: Record<InvalidRequestReason, string> = {
  method: 'a method is an HTTP token (RFC 9110 §9.1), and fetch refuses CONNECT, TRACE and TRACK',
  'header-name':
    "a header name is an HTTP token: letters, digits and !#$%&'*+-.^_`|~ (RFC 9110 §5.1)",
  'header-value': 'a header value may not contain CR, LF or NUL (RFC 9110 §5.5)',
};

/**
 * Thrown before anything is sent, and before any backend is picked, when a request could never be
 * sent: a method or header that no HTTP implementation would put on the wire. It is the caller's
 * mistake, so no backend is blamed, nothing is retried, and no lease is taken. The message names
 * the method or header but never repeats a header's value (it may hold a credential).
 *
 * @example
 * ```ts
 * try {
 *   await fetchUsers('/users/42', { headers: { 'x-forwarded-for': untrusted } });
 * } catch (error) {
 *   if (error instanceof InvalidRequestError) return badRequest(error.message);
 *   throw error;
 * }
 * ```
 */
export class InvalidRequestError extends LoadBalancerError {
  /** What was wrong. */
  readonly reason: InvalidRequestReason;
  /** The method, or the header's name, as given (truncated to 80 characters). */
  readonly part: string;

  constructor(reason: InvalidRequestReason, part: string, detail: string) {
    const shown = JSON.stringify(part.length > 80 ? `${part.slice(0, 77)}...` : part);
    const what =
      reason === 'method'
        ? `method ${shown}`
        : reason === 'header-name'
          ? `header name ${shown}`
          : `value of header ${shown}`;
    super(
      'LB_INVALID_REQUEST',
      `Invalid request: the ${what} ${detail}; ${RULES[reason]}. Nothing was sent and no backend was picked.`,
    );
    this.reason = reason;
    this.part = part.length > 80 ? part.slice(0, 80) : part;
  }
}
