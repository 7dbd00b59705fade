import type { Algorithm, AlgorithmExplanation, BackendView } from '../types.js';
import { isRetrySubset, round } from './shared.js';

/** Longest cycle worth precomputing; beyond it picks run the O(n) loop. */
const MAX_CYCLE = 1 << 16;
/**
 * Most steps × distinct weights spent precomputing one cycle (about a millisecond); beyond it
 * picks run the O(n) loop instead of stalling every membership change.
 */
const MAX_PRECOMPUTE = 1 << 21;

/**
 * Smooth weighted round robin as nginx does it: every pick, each backend's current weight grows
 * by its effective weight; the largest wins and gives back the total. Weights 5, 1, 1 give
 * `a a b a c a a`: proportional and evenly interleaved.
 *
 * For integer weights (divided by their greatest common divisor) whose sum is at most 65536,
 * the whole cycle is computed once per change of the candidate array, so a pick is an array
 * read (O(1)); otherwise (e.g. fractional weights during slow start) each pick runs nginx's
 * O(n) loop. A new candidate array continues the cycle at the same position rather than
 * restarting it, so frequent changes do not favour the first backend.
 *
 * An array other than the pool's eligible snapshot (announced through `onEligibleChange`), the
 * reduced list of a retry that excludes backends, gets the backend the current order reaches
 * first among its members, and the order goes on from there.
 *
 * @example
 * ```ts
 * new BackendPool({ backends: [{ url: a, weight: 5 }, { url: b }, { url: c }], algorithm: new WeightedRoundRobin() });
 * ```
 */
export class WeightedRoundRobin implements Algorithm {
  readonly name = 'weighted-round-robin';
  #cached: readonly BackendView[] | undefined;
  /** The pool's eligible snapshot, as announced by `onEligibleChange`. */
  #snapshot: readonly BackendView[] | undefined;
  #state: State = {
    index: new Map(),
    weights: new Float64Array(0),
    current: new Float64Array(0),
    total: 0,
    cycle: undefined,
    pos: 0,
  };

  onEligibleChange(candidates: readonly BackendView[]): void {
    this.#snapshot = candidates;
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    if (candidates !== this.#cached) {
      if (this.#cached !== undefined && isRetrySubset(candidates, this.#snapshot)) {
        return this.#among(candidates, true);
      }
      this.#cached = candidates;
      this.#state = this.#plan(candidates);
    }
    const st = this.#state;
    const cycle = st.cycle;
    if (cycle !== undefined) {
      const i = cycle[st.pos]!;
      st.pos = st.pos + 1 === cycle.length ? 0 : st.pos + 1;
      return candidates[i];
    }
    return candidates[step(st.weights, st.current, st.total)];
  }

  /**
   * The first of `subset` that the adopted order reaches; with `take`, that turn is used up.
   */
  #among(subset: readonly BackendView[], take: boolean): BackendView | undefined {
    const cached = this.#cached!;
    const st = this.#state;
    const cycle = st.cycle;
    if (cycle !== undefined) {
      const member = new Uint8Array(cached.length);
      for (const b of subset) {
        const i = st.index.get(b);
        if (i !== undefined) member[i] = 1;
      }
      const len = cycle.length;
      for (let k = 0, p = st.pos; k < len; k++, p = p + 1 === len ? 0 : p + 1) {
        if (member[cycle[p]!] === 1) {
          if (take) st.pos = p + 1 === len ? 0 : p + 1;
          return cached[cycle[p]!];
        }
      }
    } else {
      // What nginx's next step would choose if only `subset` took part (state left unchanged).
      let best: BackendView | undefined;
      let bestScore = Number.NEGATIVE_INFINITY;
      for (const b of subset) {
        const i = st.index.get(b);
        const score = i === undefined ? b.effectiveWeight : st.current[i]! + st.weights[i]!;
        if (score > bestScore) {
          best = b;
          bestScore = score;
        }
      }
      if (best !== undefined) return best;
    }
    // None of them is known: the heaviest.
    let heaviest = subset[0];
    for (const b of subset) if (b.effectiveWeight > heaviest!.effectiveWeight) heaviest = b;
    return heaviest;
  }

  /** The state for a new candidate array, continuing the current one where it can. */
  #plan(candidates: readonly BackendView[]): State {
    const old = this.#state;
    const n = candidates.length;
    const index = new Map<BackendView, number>();
    const weights = new Float64Array(n);
    const current = new Float64Array(n);
    let total = 0;
    let integral = true;
    let equal = true;
    let divisor = 0;
    for (let i = 0; i < n; i++) {
      const b = candidates[i]!;
      const w = b.effectiveWeight;
      index.set(b, i);
      weights[i] = w;
      total += w;
      if (w !== weights[0]) equal = false;
      if (Number.isInteger(w)) divisor = gcd(divisor, w);
      else integral = false;
    }
    let cycle: Uint32Array | undefined;
    if (equal) {
      // Equal weights: nginx's loop visits the backends in order.
      cycle = new Uint32Array(n);
      for (let i = 0; i < n; i++) cycle[i] = i;
    } else if (integral) {
      // Weights with a common divisor give the same order as the divided weights.
      const length = total / divisor;
      if (length <= MAX_CYCLE) cycle = smoothCycle(weights, divisor, length);
    }
    if (cycle !== undefined) {
      return { index, weights, current, total, cycle, pos: old.pos % cycle.length };
    }
    // Keep each backend's current weight, as nginx does when weights change.
    for (let i = 0; i < n; i++) {
      const j = old.index.get(candidates[i]!);
      if (j !== undefined && j < old.current.length) current[i] = old.current[j]!;
    }
    return { index, weights, current, total, cycle, pos: 0 };
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    let wouldPick: BackendView | undefined;
    if (
      candidates !== this.#cached &&
      this.#cached !== undefined &&
      isRetrySubset(candidates, this.#snapshot)
    ) {
      wouldPick = this.#among(candidates, false);
    } else {
      const st = candidates === this.#cached ? this.#state : this.#plan(candidates);
      if (st.cycle !== undefined) {
        wouldPick = candidates[st.cycle[st.pos]!];
      } else {
        // nginx's next step without taking it: the first largest current + weight.
        let best = 0;
        for (let i = 1; i < candidates.length; i++) {
          if (st.current[i]! + st.weights[i]! > st.current[best]! + st.weights[best]!) best = i;
        }
        wouldPick = candidates[best];
      }
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

/** Smooth weighted round robin's state for one candidate array. */
interface State {
  /** Candidate → index. */
  readonly index: Map<BackendView, number>;
  readonly weights: Float64Array;
  /** nginx's current weights (used when there is no precomputed cycle). */
  readonly current: Float64Array;
  readonly total: number;
  /** The whole order, when precomputed. */
  readonly cycle: Uint32Array | undefined;
  /** Next position in `cycle`. */
  pos: number;
}

/**
 * nginx's whole cycle for integer weights (divided by `divisor`; `length` is their sum), or
 * undefined when computing it would cost more than MAX_PRECOMPUTE.
 *
 * Running nginx's loop for every step costs O(length × n): 30 to 60 ms per membership change at
 * 1000 backends on the benchmark machine. But at step t a backend's current weight is
 * t × w − length × (its picks so far), so among backends of equal weight the one with the fewest
 * picks (then the lowest index) is ahead: each weight class takes its turns in index order. One
 * step then compares one candidate per distinct weight, O(length × classes), with the same
 * order as nginx (ties to the lowest index).
 */
function smoothCycle(
  weights: Float64Array,
  divisor: number,
  length: number,
): Uint32Array | undefined {
  const classes = new Map<number, number[]>();
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i]! / divisor;
    const members = classes.get(w);
    if (members === undefined) classes.set(w, [i]);
    else members.push(i);
  }
  const g = classes.size;
  if (length * g > MAX_PRECOMPUTE) return undefined;
  const weight = new Float64Array(g);
  const members: number[][] = [];
  for (const [w, list] of classes) {
    weight[members.length] = w;
    members.push(list);
  }
  // Per class: the member in turn (those before it have had one pick more), and its picks.
  const next = new Int32Array(g);
  const picks = new Float64Array(g);
  const cycle = new Uint32Array(length);
  for (let t = 1; t <= length; t++) {
    let best = 0;
    let bestValue = Number.NEGATIVE_INFINITY;
    let bestIndex = 0;
    for (let k = 0; k < g; k++) {
      const value = t * weight[k]! - length * picks[k]!;
      const index = members[k]![next[k]!]!;
      if (value > bestValue || (value === bestValue && index < bestIndex)) {
        best = k;
        bestValue = value;
        bestIndex = index;
      }
    }
    cycle[t - 1] = bestIndex;
    if (++next[best]! === members[best]!.length) {
      next[best] = 0;
      picks[best]!++;
    }
  }
  return cycle;
}

/** One step of nginx's smooth weighted round robin; returns the winner's index. */
function step(weights: Float64Array, current: Float64Array, total: number): number {
  let best = 0;
  for (let i = 0; i < weights.length; i++) {
    current[i]! += weights[i]!;
    if (current[i]! > current[best]!) best = i;
  }
  current[best]! -= total;
  return best;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}
