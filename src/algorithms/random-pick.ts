import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { requireEnv, round } from './shared.js';

/**
 * A random backend, with probability proportional to its effective weight. O(1) for equal
 * weights, O(log n) otherwise (binary search over cumulative weights, rebuilt only when the
 * eligible set changes).
 *
 * @example
 * ```ts
 * new BackendPool({ backends, algorithm: new RandomPick(), random: seededRandom(7) });
 * ```
 */
export class RandomPick implements Algorithm {
  readonly name = 'random';
  #env: AlgorithmEnv | undefined;
  #cached: readonly BackendView[] | undefined;
  #cumulative = new Float64Array(0);
  #uniform = true;

  attach(env: AlgorithmEnv): void {
    this.#env = env;
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const random = requireEnv(this.#env, this.name).random;
    if (candidates !== this.#cached) this.#rebuild(candidates);
    const n = candidates.length;
    if (this.#uniform) return candidates[Math.floor(random() * n)];
    const cum = this.#cumulative;
    const target = random() * cum[n - 1]!;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! > target) hi = mid;
      else lo = mid + 1;
    }
    return candidates[lo];
  }

  #rebuild(candidates: readonly BackendView[]): void {
    this.#cached = candidates;
    const n = candidates.length;
    this.#cumulative = new Float64Array(n);
    let sum = 0;
    this.#uniform = true;
    const first = candidates[0]?.effectiveWeight;
    for (let i = 0; i < n; i++) {
      const w = candidates[i]!.effectiveWeight;
      if (w !== first) this.#uniform = false;
      sum += w;
      this.#cumulative[i] = sum;
    }
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    const total = candidates.reduce((s, b) => s + b.effectiveWeight, 0);
    const p = candidates
      .slice(0, 8)
      .map((b) => `${b.id}=${round(b.effectiveWeight / total)}`)
      .join(', ');
    return { note: `random, weighted; probabilities: ${p}${candidates.length > 8 ? ', ...' : ''}` };
  }
}
