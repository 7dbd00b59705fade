import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { AlgorithmEnv, BackendView } from '../types.js';

/**
 * The environment of an algorithm that is not attached to a pool yet: the pool attaches its own
 * before the first pick.
 * @internal
 */
export function requireEnv(env: AlgorithmEnv | undefined, name: string): AlgorithmEnv {
  if (env === undefined) {
    throw new LoadBalancerConfigError(
      `${name}.pick`,
      undefined,
      "an algorithm attached to a BackendPool (pass it as the pool's `algorithm` option)",
    );
  }
  return env;
}

/** In-flight calls per unit of effective weight: the load figure of least-loaded algorithms. @internal */
export function loadOf(b: BackendView): number {
  return b.inFlight / b.effectiveWeight;
}

/** A one-line summary of candidates' loads for `explain()`. @internal */
export function describeLoads(candidates: readonly BackendView[], limit = 8): string {
  const shown = candidates
    .slice(0, limit)
    .map((b) => `${b.id}=${b.inFlight}/${round(b.effectiveWeight)}`);
  return (
    shown.join(', ') + (candidates.length > limit ? `, ... (${candidates.length} in all)` : '')
  );
}

/** Rounds to 3 decimals for messages. @internal */
export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
