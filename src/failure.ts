/**
 * Which failures speak about the backend.
 * @internal
 */
import type { FailureKind } from './types.js';

/**
 * Whether an outcome's failure kind counts against its backend. A caller's abort, a failure in
 * this process (`local`) and an attempt superseded by another (`cancelled`) do not: they feed no
 * failure count or outlier rule.
 */
export function blamesBackend(failure: FailureKind | undefined): boolean {
  return failure !== 'aborted' && failure !== 'local' && failure !== 'cancelled';
}

/**
 * Whether an outcome's latency says something about the backend: everything but a caller's abort
 * and a local failure. A superseded attempt's time so far is a lower bound of the backend's
 * latency, which latency-aware algorithms must see (a hedge beat it because it was slow).
 */
export function measuresBackend(failure: FailureKind | undefined): boolean {
  return failure !== 'aborted' && failure !== 'local';
}
