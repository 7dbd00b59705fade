import type { Algorithm, AlgorithmExplanation, BackendView } from '../types.js';
import { describeLoads, loadOf } from './shared.js';

/**
 * The backend with the fewest calls in flight per unit of weight. Ties are broken fairly: the
 * scan starts one position further on every pick, so equally loaded backends take turns rather
 * than the first one always winning. O(n) per pick.
 *
 * Right for calls of very different lengths and for long-lived connections.
 *
 * @example
 * ```ts
 * new BackendPool({ backends, algorithm: new LeastConnections() });
 * ```
 */
export class LeastConnections implements Algorithm {
  readonly name = 'least-connections';
  #offset = 0;

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const n = candidates.length;
    let start = this.#offset;
    if (start >= n) start = 0;
    this.#offset = start + 1;
    let best = candidates[start]!;
    let bestLoad = best.inFlight / best.effectiveWeight;
    for (let k = 1; k < n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      const b = candidates[i]!;
      const load = b.inFlight / b.effectiveWeight;
      if (load < bestLoad) {
        best = b;
        bestLoad = load;
      }
    }
    return best;
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    let best: BackendView | undefined;
    for (const b of candidates) if (best === undefined || loadOf(b) < loadOf(best)) best = b;
    return {
      wouldPick: best,
      note: `least in-flight per weight (ties take turns); in-flight/weight: ${describeLoads(candidates)}`,
    };
  }
}
