/**
 * How an attempt went, in the pool's terms: which failures count against a backend, which may be
 * retried, and what a `Retry-After` asks for.
 * @internal
 */
import { errorCode, LOCAL_CODES } from '../call/error-codes.js';
import type { Clock } from '../clock.js';
import { parseRetryAfter } from '../health/retry-after.js';
import type { FailureKind } from '../types.js';

/** Errors raised before any byte of the request could reach the server. */
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  // A backend on a port fetch refuses (BadPortError): nothing was sent.
  'LB_BAD_PORT',
]);
/** Errors on a connection that may have carried (part of) the request. */
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/**
 * What browsers and undici say for a network failure, which carries no code (whatwg/fetch#526
 * lists them). Such a failure may have happened after the request was sent.
 */
const NETWORK_MESSAGES = new Set([
  'Failed to fetch',
  'NetworkError when attempting to fetch resource.',
  'Load failed',
  'Network request failed',
  'terminated',
]);

/**
 * Deno's fetch gives no code: it rejects with `TypeError: fetch failed` whose cause's message
 * names hyper's stage (formats in denoland/deno#24922 and #24939). `client error (Connect)` is
 * the connecting stage (DNS, TCP, TLS): nothing was sent. Deno 1.x said `error trying to
 * connect`. The OS text after it differs per platform, so only the stage is matched.
 */
const DENO_CONNECT = /client error \(Connect\)|error trying to connect|tcp connect error/;
/** Deno, after the connection was made: the request may have reached the server. */
const DENO_RESET =
  /client error \(SendRequest\)|connection reset by peer|connection closed before message completed/i;

/** A runtime refusing a port the Fetch standard blocks (Deno: "Requests to port 6000 are blocked"). */
const BLOCKED_PORT = /port \d+ (?:are|is) blocked|bad port/i;

/** The kind of a failure thrown by a fetch implementation (not by an abort signal). */
export function classifyError(error: unknown): FailureKind {
  const code = errorCode(error);
  if (code !== undefined) {
    if (LOCAL_CODES.has(code)) return 'local';
    if (CONNECT_CODES.has(code)) return 'connect';
    if (RESET_CODES.has(code)) return 'reset';
    if (TIMEOUT_CODES.has(code)) return 'timeout';
    if (code.startsWith('HPE_') || code === 'UND_ERR_INFO') return 'protocol';
    if (code.startsWith('ERR_TLS') || code.includes('CERT')) return 'connect';
  }
  if (error instanceof TypeError) {
    if (NETWORK_MESSAGES.has(error.message)) return 'reset';
    const cause = (error as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message === 'terminated') return 'reset';
    const messages = chainMessages(error);
    if (DENO_CONNECT.test(messages)) return 'connect';
    if (DENO_RESET.test(messages)) return 'reset';
    // The runtime refuses this backend's port (the Fetch standard's bad ports): nothing was
    // sent, and another backend may do.
    if (BLOCKED_PORT.test(messages)) return 'connect';
    if (error.message === 'fetch failed') return 'other';
    // Any other TypeError comes from the fetch implementation refusing its arguments (a header
    // or method it will not send, a body it cannot read) before any network activity.
    if (code === undefined) return 'local';
  }
  return 'other';
}

/** The messages of an error and its causes, joined (at most five deep). */
function chainMessages(error: Error): string {
  let text = error.message;
  let e: unknown = (error as { cause?: unknown }).cause;
  for (let depth = 1; depth < 5 && e instanceof Error; depth++) {
    text += `\n${e.message}`;
    e = (e as { cause?: unknown }).cause;
  }
  return text;
}

/** Reads a response header by name: a `Headers`, or undici's raw headers behind `get`. */
export interface HeaderSource {
  get(name: string): string | null | undefined;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) of a 429 or 503, in ms. An HTTP-date is taken relative to the
 * response's own `Date` header when it has one (the server's clock against the server's clock),
 * else to the clock (`systemClock` reads epoch ms). `undefined` when absent or malformed.
 */
export function retryAfterMs(
  status: number,
  headers: HeaderSource,
  clock: Clock,
): number | undefined {
  if (status !== 429 && status !== 503) return undefined;
  const value = headers.get('retry-after');
  if (value === null || value === undefined) return undefined;
  const date = headers.get('date');
  const serverNow = date === null || date === undefined ? Number.NaN : Date.parse(date);
  return parseRetryAfter(value, Number.isFinite(serverNow) ? serverNow : clock.now());
}
