import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { checkNumber, checkOptions } from '../validate.js';
import { isRetrySubset } from './shared.js';

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
  /** The pool's eligible snapshot, which the main rotation runs over. */
  #main: readonly BackendView[] | undefined;
  /** The rotation of retries' subsets. */
  #side = 0;

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

  onEligibleChange(candidates: readonly BackendView[]): void {
    this.#main = candidates;
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    if (isRetrySubset(candidates, this.#main)) {
      // A retry's subset (backends already tried left out): served from a rotation of its own,
      // so retries do not shift the main turn. Sharing one counter let a dead backend's retries
      // starve one of the healthy backends.
      return candidates[this.#side++ % candidates.length];
    }
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
