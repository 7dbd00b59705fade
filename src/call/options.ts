/**
 * The options every balanced HTTP client shares (the fetch wrapper and the undici dispatcher):
 * retries, timeouts, budgets and hedging, validated in one place.
 * @internal
 */
import type { Clock } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { Random } from '../random.js';
import { checkDuration, checkNumber, checkString, optDuration, optNumber } from '../validate.js';
import type { CallConfig } from './call.js';
import { type HedgeOptions, toHedging } from './hedging.js';
import type { RetryBudget } from './retry-budget.js';
import { type RetryBudgetOptions, toRetryBudget } from './retry-budget.js';
import { TimeoutQueue } from './timeouts.js';

/** The most `retries` a call takes (the client option, a route's or a resolved target's). */
export const MAX_RETRIES = 100;

/** The retry, timeout, budget and hedging options of a balanced HTTP client. */
export interface CallOptions {
  /**
   * Retries after the first attempt (so at most `retries + 1` attempts, plus a hedge). Each retry
   * prefers a backend not yet tried in the call.
   * @default 2
   */
  retries?: number;
  /**
   * Response statuses that are retried (for requests that may be retried at all); when no retry
   * is left the last such response is returned, as Envoy does.
   * @default [502, 503, 504]
   */
  retryOn?: readonly number[];
  /**
   * Methods that may be retried (and hedged) after the request may have reached the server.
   * Other methods are retried only when the connection was refused (nothing was sent), or when
   * the request carries an idempotency key.
   * @default ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'] (RFC 9110 §9.2.2)
   */
  retryMethods?: readonly string[];
  /**
   * A request header whose presence makes any method safe to retry and hedge, or `false`.
   * @default 'idempotency-key'
   */
  idempotencyKeyHeader?: string | false;
  /**
   * Base of the jittered exponential backoff between retries, in ms.
   * @default 25 (Envoy's router retry back-off)
   */
  backoffBaseMs?: number;
  /**
   * Cap of the backoff, in ms.
   * @default 250 (10 × the base, as Envoy)
   */
  backoffMaxMs?: number;
  /**
   * The retry budget, shared by every call of this client: retries (and hedges) may add at most
   * `percentCanRetry` to the call rate, plus a floor of `minRetriesPerSec` (Finagle's
   * `RetryBudget`: 20%, 10/s, over 10 s). Pass a {@link RetryBudget} to share one between
   * several clients, options to make a new one, or `false` to turn budgeting off.
   * @default new RetryBudget({ ttlMs: 10000, minRetriesPerSec: 10, percentCanRetry: 0.2 })
   */
  retryBudget?: RetryBudget | RetryBudgetOptions | false;
  /**
   * Per-attempt limit, in ms, on the time to response headers; an attempt that runs out is
   * aborted and (for a retryable request) retried on another backend. `false`: no per-attempt
   * limit (the deadline still applies).
   *
   * Unless set, a request that may be retried after a timeout (an idempotent method or an
   * idempotency key, with a replayable body) gives each attempt an equal share of the deadline,
   * `deadlineMs / (retries + 1)` (5 s with the defaults), so a hanging backend leaves time to try
   * others; any other request has only the deadline, so a slow but working backend can finish.
   * @default deadlineMs / (retries + 1) for requests retried after a timeout, else none
   */
  timeoutMs?: number | false;
  /**
   * Limit, in ms, on the whole call: every attempt, hedge and backoff, and (when set explicitly)
   * the response body while its lease is held. The call then fails with a `TimeoutError` (scope
   * `deadline`).
   *
   * Unless set, a call has 15 s to get response headers (Envoy's default route timeout), and
   * reading the body is left to the HTTP implementation's own idle limit (undici: 300 s between
   * chunks), so long downloads and streams are not cut. `false`: no limit at all.
   * @default 15000 (to the response headers)
   */
  deadlineMs?: number | false;
  /**
   * Hedged (backup) requests for calls that are safe to repeat (the same rule as retries: a
   * method of `retryMethods` or an idempotency key, and a replayable body): when the first
   * attempt has not answered within a delay, one more attempt goes to another backend; the first
   * response wins and the other is aborted, its lease released as `cancelled` (not the backend's
   * failure). `true` uses the defaults of {@link HedgeOptions}: the delay is the p95 of recent
   * latencies and hedges add at most 5% to the call rate.
   * @default false
   */
  hedge?: boolean | HedgeOptions;
}

export const CALL_OPTION_KEYS = [
  'retries',
  'retryOn',
  'retryMethods',
  'idempotencyKeyHeader',
  'backoffBaseMs',
  'backoffMaxMs',
  'retryBudget',
  'timeoutMs',
  'deadlineMs',
  'hedge',
] as const;

/** RFC 9110 §9.2.2 idempotent methods (TRACE is never balanced). */
const DEFAULT_RETRY_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'];
const DEFAULT_RETRY_ON = [502, 503, 504];
/**
 * The default time a call has to get response headers, attempts and backoff included: Envoy's
 * default route timeout (`RouteAction.timeout`, 15 s). Without one, a backend that accepts and
 * never answers holds a call until the runtime's own limit (undici: 300 s headers timeout).
 */
const DEFAULT_DEADLINE_MS = 15_000;

/** A client's call configuration, with the idempotency header the adapters look for. */
export interface ParsedCallOptions extends CallConfig {
  /** Lower-cased header name, or undefined when idempotency keys are not honoured. */
  readonly idempotencyKeyHeader: string | undefined;
}

/**
 * Validates the shared options. `lingeringTimer`: the client closes `timeouts` when it closes,
 * so its timer may outlive a moment without attempts (see {@link TimeoutQueue}).
 */
export function parseCallOptions(
  o: CallOptions,
  clock: Clock,
  random: Random,
  lingeringTimer = false,
): ParsedCallOptions {
  return {
    clock,
    random,
    retries: optNumber('retries', o.retries, 2, { min: 0, max: MAX_RETRIES, integer: true }),
    retryOn: new Set(statusList('retryOn', o.retryOn ?? DEFAULT_RETRY_ON)),
    retryMethods: new Set(methodList('retryMethods', o.retryMethods ?? DEFAULT_RETRY_METHODS)),
    idempotencyKeyHeader:
      o.idempotencyKeyHeader === false
        ? undefined
        : checkString(
            'idempotencyKeyHeader',
            o.idempotencyKeyHeader ?? 'idempotency-key',
          ).toLowerCase(),
    backoffBaseMs: optDuration('backoffBaseMs', o.backoffBaseMs, 25, { min: 0 }),
    backoffMaxMs: optDuration('backoffMaxMs', o.backoffMaxMs, 10 * 25, { min: 0 }),
    budget: toRetryBudget(o.retryBudget, clock),
    hedging: toHedging(o.hedge, clock),
    timeoutMs: o.timeoutMs === undefined ? 'auto' : optionalMs('timeoutMs', o.timeoutMs),
    deadlineMs:
      o.deadlineMs === undefined ? DEFAULT_DEADLINE_MS : optionalMs('deadlineMs', o.deadlineMs),
    deadlineCoversBody: o.deadlineMs !== undefined && o.deadlineMs !== false,
    timeouts: new TimeoutQueue(clock, lingeringTimer),
  };
}

/** A duration option that `false` turns off. */
export function optionalMs(field: string, value: unknown): number | undefined {
  return value === undefined || value === false
    ? undefined
    : checkDuration(field, value, { min: 0, minExclusive: true });
}

function statusList(field: string, value: unknown): number[] {
  if (!Array.isArray(value))
    throw new LoadBalancerConfigError(field, value, 'an array of HTTP statuses');
  return value.map((s, i) =>
    checkNumber(`${field}[${i}]`, s, { min: 100, max: 599, integer: true }),
  );
}

function methodList(field: string, value: unknown): string[] {
  if (!Array.isArray(value))
    throw new LoadBalancerConfigError(field, value, 'an array of HTTP methods');
  return value.map((m, i) => checkString(`${field}[${i}]`, m).toUpperCase());
}
