import type { Algorithm, AlgorithmExplanation, BackendView } from '../types.js';
import { round, snapshotHolding, snapshotIndex } from './shared.js';

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
 * Each of the pool's snapshots (one per priority tier that takes calls) keeps an order of its own.
 * An array other than those snapshots (announced through `onEligibleChange`), the reduced list of
 * a retry that excludes backends, gets the backend the order of its snapshot reaches first among
 * its members, and that order goes on from there.
 *
 * @example
 * ```ts
 * new BackendPool({ backends: [{ url: a, weight: 5 }, { url: b }, { url: c }], algorithm: new WeightedRoundRobin() });
 * ```
 */
export class WeightedRoundRobin implements Algorithm {
  readonly name = 'weighted-round-robin';
  /** The pool's eligible snapshots, as announced by `onEligibleChange`. */
  #snapshots: readonly (readonly BackendView[])[] | undefined;
  /** One order per snapshot (one for any array, without a pool). */
  #orders: Order[] = [emptyOrder()];

  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.#snapshots = snapshots;
    for (let k = this.#orders.length; k < snapshots.length; k++) this.#orders.push(emptyOrder());
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    let k = snapshotIndex(candidates, this.#snapshots);
    if (k < 0) {
      // A retry's subset: served from the order of the snapshot it was cut from.
      k = snapshotHolding(candidates, this.#snapshots);
      const order = this.#orders[k];
      const snapshot = this.#snapshots?.[k];
      if (order === undefined || snapshot === undefined) return this.#heaviest(candidates);
      this.#adopt(order, snapshot);
      return this.#among(order, candidates, true);
    }
    const order = this.#orders[k]!;
    this.#adopt(order, candidates);
    const st = order.state;
    const cycle = st.cycle;
    if (cycle !== undefined) {
      const i = cycle[st.pos]!;
      st.pos = st.pos + 1 === cycle.length ? 0 : st.pos + 1;
      return candidates[i];
    }
    return candidates[step(st.weights, st.current, st.total)];
  }

  /** Makes `order` serve `candidates`, continuing its state where it can. */
  #adopt(order: Order, candidates: readonly BackendView[]): void {
    if (order.cached === candidates) return;
    order.state = this.#plan(candidates, order.state);
    order.cached = candidates;
  }

  /** The heaviest of `subset`. */
  #heaviest(subset: readonly BackendView[]): BackendView | undefined {
    let heaviest = subset[0];
    for (const b of subset) if (b.effectiveWeight > heaviest!.effectiveWeight) heaviest = b;
    return heaviest;
  }

  /**
   * The first of `subset` that the order reaches; with `take`, that turn is used up.
   */
  #among(order: Order, subset: readonly BackendView[], take: boolean): BackendView | undefined {
    const cached = order.cached!;
    const st = order.state;
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
    return this.#heaviest(subset);
  }

  /** The state for a new candidate array, continuing `old` where it can. */
  #plan(candidates: readonly BackendView[], old: State): State {
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
    const k = snapshotIndex(candidates, this.#snapshots);
    const held = k < 0 ? snapshotHolding(candidates, this.#snapshots) : -1;
    const heldOrder = this.#orders[held];
    if (k < 0 && heldOrder?.cached !== undefined) {
      wouldPick = this.#among(heldOrder, candidates, false);
    } else {
      const order = this.#orders[Math.max(k, 0)]!;
      const st = candidates === order.cached ? order.state : this.#plan(candidates, order.state);
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

/** One snapshot's order: the array it was planned for, and the plan. */
interface Order {
  cached: readonly BackendView[] | undefined;
  state: State;
}

function emptyOrder(): Order {
  return {
    cached: undefined,
    state: {
      index: new Map(),
      weights: new Float64Array(0),
      current: new Float64Array(0),
      total: 0,
      cycle: undefined,
      pos: 0,
    },
  };
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
