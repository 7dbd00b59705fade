import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { requireEnv, round, snapshotIndex } from './shared.js';

/**
 * A random backend, with probability proportional to its effective weight. O(1) per pick:
 * uniform when all weights are equal, otherwise Walker's alias method (Vose's O(n) table
 * construction), one per pool snapshot (per priority tier that takes calls), rebuilt only when
 * that snapshot changes. A binary search over cumulative weights measured 75 ns per pick at 100
 * backends (bench/picks.ts), mostly mispredicted branches.
 *
 * An array other than the pool's eligible snapshots (announced through `onEligibleChange`), the
 * reduced list of a retry that excludes backends, is served by a linear weighted draw instead
 * of replacing a table.
 *
 * @example
 * ```ts
 * new BackendPool({ backends, algorithm: new RandomPick(), random: seededRandom(7) });
 * ```
 */
export class RandomPick implements Algorithm {
  readonly name = 'random';
  #env: AlgorithmEnv | undefined;
  /** The pool's eligible snapshots, as announced by `onEligibleChange`. */
  #snapshots: readonly (readonly BackendView[])[] | undefined;
  /** One table per snapshot (one for any array, without a pool). */
  #tables: AliasTable[] = [emptyTable()];

  attach(env: AlgorithmEnv): void {
    this.#env = env;
  }

  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.#snapshots = snapshots;
    for (let k = this.#tables.length; k < snapshots.length; k++) this.#tables.push(emptyTable());
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const random = requireEnv(this.#env, this.name).random;
    const slot = snapshotIndex(candidates, this.#snapshots);
    if (slot < 0) return linearDraw(candidates, random());
    const table = this.#tables[slot]!;
    if (candidates !== table.cached) rebuild(table, candidates);
    const n = candidates.length;
    const k = Math.floor(random() * n);
    if (table.uniform) return candidates[k];
    return random() < table.prob[k]! ? candidates[k] : candidates[table.alias[k]!];
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

/** Walker's alias table for one candidate array. */
interface AliasTable {
  cached: readonly BackendView[] | undefined;
  uniform: boolean;
  /** Column k keeps itself with probability `prob[k]`, else gives `alias[k]`. */
  prob: Float64Array;
  alias: Int32Array;
}

function emptyTable(): AliasTable {
  return { cached: undefined, uniform: true, prob: new Float64Array(0), alias: new Int32Array(0) };
}

function rebuild(table: AliasTable, candidates: readonly BackendView[]): void {
  table.cached = candidates;
  const n = candidates.length;
  const first = candidates[0]?.effectiveWeight;
  let sum = 0;
  let uniform = true;
  for (let i = 0; i < n; i++) {
    const w = candidates[i]!.effectiveWeight;
    if (w !== first) uniform = false;
    sum += w;
  }
  table.uniform = uniform;
  if (uniform) return;
  // Vose (1991): split scaled weights into "small" (< 1) and "large" columns, and top each
  // small column up from a large one.
  const prob = new Float64Array(n);
  const alias = new Int32Array(n);
  const scaled = new Float64Array(n);
  const small = new Int32Array(n);
  const large = new Int32Array(n);
  let ns = 0;
  let nl = 0;
  for (let i = 0; i < n; i++) {
    scaled[i] = (candidates[i]!.effectiveWeight * n) / sum;
    if (scaled[i]! < 1) small[ns++] = i;
    else large[nl++] = i;
  }
  while (ns > 0 && nl > 0) {
    const s = small[--ns]!;
    const l = large[--nl]!;
    prob[s] = scaled[s]!;
    alias[s] = l;
    scaled[l] = scaled[l]! + scaled[s]! - 1;
    if (scaled[l]! < 1) small[ns++] = l;
    else large[nl++] = l;
  }
  // What is left is 1 up to rounding.
  while (nl > 0) {
    const l = large[--nl]!;
    prob[l] = 1;
    alias[l] = l;
  }
  while (ns > 0) {
    const s = small[--ns]!;
    prob[s] = 1;
    alias[s] = s;
  }
  table.prob = prob;
  table.alias = alias;
}

/** A weighted draw by walking cumulative weights (O(n), no table). */
function linearDraw(candidates: readonly BackendView[], u: number): BackendView | undefined {
  let total = 0;
  for (const b of candidates) total += b.effectiveWeight;
  let target = u * total;
  for (const b of candidates) {
    target -= b.effectiveWeight;
    if (target < 0) return b;
  }
  return candidates[candidates.length - 1];
}
