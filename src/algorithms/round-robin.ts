import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { checkNumber, checkOptions } from '../validate.js';

/** Options of {@link RoundRobin}. */
export interface RoundRobinOptions {
  /**
   * Where the rotation starts. By default a random position, so that many clients started at
   * once do not all send their first call to the same backend (grpc-js and Envoy do the same).
   * @default a random index
   */
  startIndex?: number;
}

/**
 * Each eligible backend in turn, ignoring weights. O(1) per pick.
 *
 * @example
 * ```ts
 * new BackendPool({ backends, algorithm: new RoundRobin() });
 * ```
 */
export class RoundRobin implements Algorithm {
  readonly name = 'round-robin';
  #next: number;
  readonly #fixedStart: boolean;

  constructor(options: RoundRobinOptions = {}) {
    const o = checkOptions('RoundRobinOptions', options, ['startIndex']);
    this.#fixedStart = o.startIndex !== undefined;
    this.#next =
      o.startIndex === undefined
        ? 0
        : checkNumber('startIndex', o.startIndex, { min: 0, integer: true });
  }

  attach(env: AlgorithmEnv): void {
    if (!this.#fixedStart) this.#next = Math.floor(env.random() * 0x7fffffff);
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const n = candidates.length;
    let i = this.#next;
    if (i >= n) i %= n;
    this.#next = i + 1;
    return candidates[i];
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    const wouldPick = candidates[this.#next % candidates.length];
    return {
      wouldPick,
      note: `round robin over ${candidates.length} backends; next in turn is ${wouldPick?.id}`,
    };
  }
}
