import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { checkOneOf, checkOptions } from '../validate.js';
import { requireEnv, round } from './shared.js';

/**
 * How calls in flight weigh in {@link PeakEwma}'s cost:
 * - `'relative'`: latency × ((in-flight + 1) / weight + mean in-flight of the pool). A backend is
 *   taken to serve the pool's mean load at the latency it shows; only the calls it holds beyond
 *   that count as queueing.
 * - `'finagle'`: latency × (in-flight + 1) / weight, Finagle's and Linkerd's cost: every call in
 *   flight is taken to queue in front of the next one.
 */
export type PeakEwmaCost = 'relative' | 'finagle';

/** Options of {@link PeakEwma}. */
export interface PeakEwmaOptions {
  /**
   * How many random backends to compare per pick: 2 (Finagle's and Linkerd's choice), or `'all'`
   * to scan every eligible backend.
   * @default 2
   */
  choices?: 2 | 'all';
  /**
   * How calls in flight weigh in the cost (see {@link PeakEwmaCost}). The two agree when the pool
   * holds few calls per backend and part when it holds many: Finagle's cost then prices a fast
   * backend holding 8 calls at 9 times its latency, as dear as an idle backend 9 times slower.
   * That is right for a server that works on one call at a time, wrong for one that serves them
   * together or for a backend slow without any queue (a GC pause, a noisy neighbour). With 16
   * calls in flight over 3 backends, one 10 times slower, `'finagle'` sent it 2.5% of the calls
   * in the simulator (`slow-backend`) and `'relative'` 0.2%; docs/choosing-an-algorithm.md has
   * the figures on real sockets.
   * @default 'relative'
   */
  cost?: PeakEwmaCost;
}

/**
 * Finagle's cost used for a backend that has calls in flight but no latency sample yet: high, so
 * an unknown backend is not flooded, but ordered by pending count.
 */
const COLD_PENALTY = 2 ** 47;

/**
 * The cost of `b` at clock reading `now`: its latency decayed to `now` × (in-flight + 1) /
 * weight, plus `mean` × latency (`mean` is 0 for Finagle's cost).
 */
function costAt(b: BackendView, now: number, tau: number, mean: number): number {
  const latency =
    b.latencyEwma === 0 ? 0 : b.latencyEwma * Math.exp(-Math.max(now - b.latencyStamp, 0) / tau);
  if (latency === 0 && b.inFlight > 0) return (COLD_PENALTY + b.inFlight) / b.effectiveWeight;
  return latency * ((b.inFlight + 1) / b.effectiveWeight + mean);
}

/**
 * Whether `cost(a) <= cost(b)` at the current time, without reading the clock. Both decayed
 * latencies share the factor e^(-now/τ), which cancels: a is compared as
 * latency_a × e^((stamp_a − stamp_b)/τ) × load_a against b's undecayed figure, where
 * load = (in-flight + 1) / weight + mean, multiplied through by both weights. The clock read
 * alone (about 75 ns for the platform timer on the benchmark machine) cost more than the rest of
 * the pick. A cold backend (no sample yet) is priced at the later of the two stamps, which orders
 * it the same way for any realistic latency.
 */
function notCostlier(a: BackendView, b: BackendView, tau: number, mean: number): boolean {
  if (a.latencyEwma === 0 || b.latencyEwma === 0) {
    const ref = Math.max(a.latencyStamp, b.latencyStamp);
    return costAt(a, ref, tau, mean) <= costAt(b, ref, tau, mean);
  }
  const wa = a.effectiveWeight;
  const wb = b.effectiveWeight;
  return (
    a.latencyEwma *
      Math.exp((a.latencyStamp - b.latencyStamp) / tau) *
      (a.inFlight + 1 + mean * wa) *
      wb <=
    b.latencyEwma * (b.inFlight + 1 + mean * wb) * wa
  );
}

/**
 * Latency-aware balancing after Finagle's and Linkerd's peak EWMA: each backend's cost is its
 * peak-sensitive, decaying latency (kept by the pool, see `latencyDecayMs` and
 * `latencyDecayCalls`) times its load, and the cheaper of two random backends wins. A latency
 * spike counts at once; an idle backend's cost decays (10 s time constant by default) so it is
 * tried again. A backend with calls in flight and no sample yet counts as very expensive.
 *
 * By default calls in flight count relative to the pool's mean load (`cost: 'relative'`), so a
 * backend that is slow without a queue stays out of the way even when the fast ones each hold
 * many calls; `cost: 'finagle'` keeps Finagle's latency × (in-flight + 1).
 *
 * @example
 * ```ts
 * new BackendPool({ backends, algorithm: new PeakEwma(), latencyDecayMs: 10_000 });
 * ```
 */
export class PeakEwma implements Algorithm {
  readonly name = 'peak-ewma';
  #env: AlgorithmEnv | undefined;
  readonly #all: boolean;
  readonly #relative: boolean;

  constructor(options: PeakEwmaOptions = {}) {
    const o = checkOptions('PeakEwmaOptions', options, ['choices', 'cost']);
    if (o.choices !== undefined && o.choices !== 2 && o.choices !== 'all') {
      throw new LoadBalancerConfigError('choices', o.choices, "2 or 'all'");
    }
    this.#all = o.choices === 'all';
    this.#relative =
      o.cost === undefined || checkOneOf('cost', o.cost, ['relative', 'finagle']) === 'relative';
  }

  attach(env: AlgorithmEnv): void {
    this.#env = env;
  }

  /**
   * The mean term of the cost, or 0 for Finagle's cost: the pool's calls in flight per backend
   * taking calls, over every priority tier. An environment without the pool's counts (made by
   * other code) gives the mean in flight of `candidates` instead.
   */
  #mean(env: AlgorithmEnv, candidates: readonly BackendView[]): number {
    if (!this.#relative) return 0;
    const inFlight = env.inFlight;
    const eligible = env.eligibleCount;
    if (inFlight !== undefined && eligible !== undefined) return inFlight / Math.max(eligible, 1);
    let sum = 0;
    for (const b of candidates) sum += b.inFlight;
    return sum / Math.max(candidates.length, 1);
  }

  /** The cost the algorithm compares, at clock reading `now`. */
  cost(b: BackendView, now: number): number {
    const env = requireEnv(this.#env, this.name);
    return costAt(b, now, env.latencyDecayMs, this.#mean(env, [b]));
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const n = candidates.length;
    if (n === 1) return candidates[0];
    const env = requireEnv(this.#env, this.name);
    const mean = this.#mean(env, candidates);
    if (this.#all) {
      const now = env.clock.now();
      // Start at a random position so ties do not always favour the first backend.
      const start = Math.floor(env.random() * n);
      let best = candidates[start]!;
      const tau = env.latencyDecayMs;
      let bestCost = costAt(best, now, tau, mean);
      for (let k = 1; k < n; k++) {
        const b = candidates[(start + k) % n]!;
        const c = costAt(b, now, tau, mean);
        if (c < bestCost) {
          best = b;
          bestCost = c;
        }
      }
      return best;
    }
    const random = env.random;
    // Two distinct indices: j is drawn from the n - 1 others. `j >= i` adds 1 through the sign
    // bit of i - j - 1, without a branch that mispredicts half the time (about 7 ns per pick
    // in bench/picks.ts).
    const i = Math.floor(random() * n);
    let j = Math.floor(random() * (n - 1));
    j += (i - j - 1) >>> 31;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return notCostlier(a, b, env.latencyDecayMs, mean) ? a : b;
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    const env = requireEnv(this.#env, this.name);
    const now = env.clock.now();
    const mean = this.#mean(env, candidates);
    const cost = (b: BackendView): number => costAt(b, now, env.latencyDecayMs, mean);
    const costs = candidates
      .slice(0, 8)
      .map((b) => `${b.id}=${round(cost(b))}`)
      .join(', ');
    let cheapest: BackendView | undefined;
    if (this.#all) {
      for (const b of candidates)
        if (cheapest === undefined || cost(b) < cost(cheapest)) cheapest = b;
    }
    const load = this.#relative
      ? `((in-flight + 1) / weight + ${round(mean)} in flight per backend)`
      : '(in-flight + 1) / weight';
    return {
      wouldPick: candidates.length === 1 ? candidates[0] : cheapest,
      note: `${this.#all ? 'cheapest of all' : 'cheaper of two random'} by peak-EWMA latency × ${load}; costs: ${costs}${candidates.length > 8 ? ', ...' : ''}`,
    };
  }
}
