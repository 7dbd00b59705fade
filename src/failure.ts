/**
 * Which failures speak about the backend.
 * @internal
 */
import type { FailureKind } from './types.js';

/** Every failure kind; a `Record` so that a kind added to the type and not here fails to compile. */
const KINDS: Readonly<Record<FailureKind, true>> = {
  connect: true,
  timeout: true,
  reset: true,
  http: true,
  protocol: true,
  aborted: true,
  local: true,
  cancelled: true,
  other: true,
};

/** The failure kinds `lease.release()` accepts. */
export const FAILURE_KINDS: ReadonlySet<string> = new Set(Object.keys(KINDS));

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
