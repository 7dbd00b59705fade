import { redactUrl } from '../redact.js';
import { LoadBalancerError } from './load-balancer-error.js';

/**
 * Thrown when an option or argument is invalid: names the field, the value received and what was
 * expected. Thrown at construction time, so misconfiguration fails fast.
 */
export class LoadBalancerConfigError extends LoadBalancerError {
  /** The option path that was wrong, e.g. `backends[2].weight`. */
  readonly field: string;
  /** The value that was received. */
  readonly value: unknown;
  /** What was expected instead, in words. */
  readonly expected: string;
  /** A sentence on what to do, when there is one (`Did you mean "retries"?`). */
  readonly hint?: string;

  /**
   * @param options `cause`: the error that revealed the problem; `hint`: a sentence on what to
   * do, appended to the message (`Did you mean "retries"?`).
   */
  constructor(
    field: string,
    value: unknown,
    expected: string,
    options?: { cause?: unknown; hint?: string },
  ) {
    // Errors end up in logs: a string holding a URL with credentials is kept without them.
    const kept = typeof value === 'string' ? redactUrl(value) : value;
    const hint = options?.hint === undefined ? '' : `. ${options.hint}`;
    super(
      'LB_CONFIG',
      `Invalid ${field}: expected ${expected}, got ${describe(kept)}${hint}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.field = field;
    this.value = kept;
    this.expected = expected;
    if (options?.hint !== undefined) this.hint = options.hint;
  }

  /**
   * The same error with `prefix` put before its field (`scenario.pool` and `skew.windowMs` give
   * `scenario.pool.skew.windowMs`), for options passed on under another name. Keeps the value,
   * the expectation and the hint; this error becomes the cause.
   */
  withFieldPrefix(prefix: string): LoadBalancerConfigError {
    return new LoadBalancerConfigError(`${prefix}.${this.field}`, this.value, this.expected, {
      cause: this,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
    });
  }
}

/** A short, safe rendering of a value for error messages (URL credentials hidden). */
export function describe(value: unknown): string {
  if (typeof value === 'string') {
    const shown = redactUrl(value);
    return JSON.stringify(shown.length > 80 ? `${shown.slice(0, 77)}...` : shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'symbol') return value.toString();
  return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
}
