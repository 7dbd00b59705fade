import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { checkNumber, checkOptions } from '../validate.js';
import { snapshotIndex } from './shared.js';

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
 * Each eligible backend in turn, ignoring weights. O(1) per pick. Each of the pool's snapshots
 * (one per priority tier that takes calls) has a rotation of its own, as Envoy keeps one per
 * priority.
 *
 * @example
 * ```ts
 * new BackendPool({ backends, algorithm: new RoundRobin() });
 * ```
 */
export class RoundRobin implements Algorithm {
  readonly name = 'round-robin';
  /** Where a rotation starts. */
  #start: number;
  readonly #fixedStart: boolean;
  /** The pool's eligible snapshots, as announced by `onEligibleChange`. */
  #snapshots: readonly (readonly BackendView[])[] | undefined;
  /** The next turn of each snapshot's rotation (of any array, without a pool). */
  #turns: number[];
  /** The rotation of retries' subsets. */
  #side = 0;

  constructor(options: RoundRobinOptions = {}) {
    const o = checkOptions('RoundRobinOptions', options, ['startIndex']);
    this.#fixedStart = o.startIndex !== undefined;
    this.#start =
      o.startIndex === undefined
        ? 0
        : checkNumber('startIndex', o.startIndex, { min: 0, integer: true });
    this.#turns = [this.#start];
  }

  attach(env: AlgorithmEnv): void {
    if (!this.#fixedStart) {
      this.#start = Math.floor(env.random() * 0x7fffffff);
      this.#turns = [this.#start];
    }
  }

  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.#snapshots = snapshots;
    // Each rotation keeps its turn across changes (by tier order); a new one starts afresh.
    const turns = this.#turns;
    for (let k = turns.length; k < snapshots.length; k++) turns.push(this.#start);
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const k = snapshotIndex(candidates, this.#snapshots);
    if (k < 0) {
      // A retry's subset (backends already tried left out): served from a rotation of its own,
      // so retries do not shift the main turn. Sharing one counter let a dead backend's retries
      // starve one of the healthy backends.
      return candidates[this.#side++ % candidates.length];
    }
    const n = candidates.length;
    let i = this.#turns[k]!;
    if (i >= n) i %= n;
    this.#turns[k] = i + 1;
    return candidates[i];
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    const k = snapshotIndex(candidates, this.#snapshots);
    const turn = k < 0 ? this.#side : this.#turns[k]!;
    const wouldPick = candidates[turn % candidates.length];
    return {
      wouldPick,
      note: `round robin over ${candidates.length} backends; next in turn is ${wouldPick?.id}`,
    };
  }
}
