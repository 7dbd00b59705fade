import type { Algorithm, AlgorithmExplanation, BackendView } from '../types.js';
import { round } from './shared.js';

/** Longest cycle worth precomputing; beyond it picks run the O(n) loop. */
const MAX_CYCLE = 1 << 16;

/**
 * Smooth weighted round robin as nginx does it: every pick, each backend's current weight grows
 * by its effective weight; the largest wins and gives back the total. Weights 5, 1, 1 give
 * `a a b a c a a`: proportional and evenly interleaved.
 *
 * For integer weights whose sum is at most 65536 the whole cycle is computed once per change of
 * the eligible set, so a pick is an array read (O(1)); otherwise (e.g. fractional weights during
 * slow start) each pick runs nginx's O(n) loop.
 *
 * @example
 * ```ts
 * new BackendPool({ backends: [{ url: a, weight: 5 }, { url: b }, { url: c }], algorithm: new WeightedRoundRobin() });
 * ```
 */
export class WeightedRoundRobin implements Algorithm {
  readonly name = 'weighted-round-robin';
  #cached: readonly BackendView[] | undefined;
  #weights = new Float64Array(0);
  #current = new Float64Array(0);
  #total = 0;
  #cycle: Uint32Array | undefined;
  #pos = 0;

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    if (candidates !== this.#cached) this.#rebuild(candidates);
    const cycle = this.#cycle;
    if (cycle !== undefined) {
      const i = cycle[this.#pos]!;
      this.#pos = this.#pos + 1 === cycle.length ? 0 : this.#pos + 1;
      return candidates[i];
    }
    return candidates[this.#step()];
  }

  /** One step of nginx's smooth weighted round robin; returns the winner's index. */
  #step(): number {
    const w = this.#weights;
    const cur = this.#current;
    let best = 0;
    for (let i = 0; i < w.length; i++) {
      cur[i]! += w[i]!;
      if (cur[i]! > cur[best]!) best = i;
    }
    cur[best]! -= this.#total;
    return best;
  }

  #rebuild(candidates: readonly BackendView[]): void {
    const n = candidates.length;
    this.#cached = candidates;
    this.#weights = new Float64Array(n);
    this.#current = new Float64Array(n);
    let total = 0;
    let integral = true;
    for (let i = 0; i < n; i++) {
      const w = candidates[i]!.effectiveWeight;
      this.#weights[i] = w;
      total += w;
      if (!Number.isInteger(w)) integral = false;
    }
    this.#total = total;
    this.#pos = 0;
    this.#cycle = undefined;
    if (integral && total <= MAX_CYCLE) {
      const cycle = new Uint32Array(total);
      for (let k = 0; k < total; k++) cycle[k] = this.#step();
      this.#cycle = cycle;
      this.#current.fill(0);
    }
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    let wouldPick: BackendView | undefined;
    if (candidates === this.#cached && this.#cycle !== undefined) {
      wouldPick = candidates[this.#cycle[this.#pos]!];
    }
    const total = candidates.reduce((s, b) => s + b.effectiveWeight, 0);
    const shares = candidates
      .slice(0, 8)
      .map((b) => `${b.id}=${round(b.effectiveWeight / total)}`)
      .join(', ');
    return {
      wouldPick,
      note: `smooth weighted round robin; shares by effective weight: ${shares}${candidates.length > 8 ? ', ...' : ''}`,
    };
  }
}
