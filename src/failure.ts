/**
 * Which failures speak about the backend.
 * @internal
 */
import type { FailureKind } from './types.js';

/**
 * Whether an outcome's failure kind counts against its backend. A caller's abort and a failure
 * in this process (`local`) say nothing about the backend: they feed no statistic, latency or
 * outlier rule.
 */
export function blamesBackend(failure: FailureKind | undefined): boolean {
  return failure !== 'aborted' && failure !== 'local';
}
