import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { Algorithm, AlgorithmEnv, AlgorithmExplanation, BackendView } from '../types.js';
import { checkOptions } from '../validate.js';
import { requireEnv, round } from './shared.js';

/** Options of {@link PeakEwma}. */
export interface PeakEwmaOptions {
  /**
   * How many random backends to compare per pick: 2 (Finagle's and Linkerd's choice), or `'all'`
   * to scan every eligible backend.
   * @default 2
   */
  choices?: 2 | 'all';
}

/**
 * Finagle's cost used for a backend that has calls in flight but no latency sample yet: high, so
 * an unknown backend is not flooded, but ordered by pending count.
 */
const COLD_PENALTY = 2 ** 47;

/** Finagle's cost of `b` at clock reading `now`, per unit of weight. */
function costAt(b: BackendView, now: number, tau: number): number {
  const latency =
    b.latencyEwma === 0 ? 0 : b.latencyEwma * Math.exp(-Math.max(now - b.latencyStamp, 0) / tau);
  const cost =
    latency === 0 && b.inFlight > 0 ? COLD_PENALTY + b.inFlight : latency * (b.inFlight + 1);
  return cost / b.effectiveWeight;
}

/**
 * Whether `cost(a) <= cost(b)` at the current time, without reading the clock. Both decayed
 * latencies share the factor e^(-now/τ), which cancels: a is compared as
 * latency_a × e^((stamp_a − stamp_b)/τ) × (in-flight_a + 1) / weight_a against b's undecayed
 * figure. The clock read alone (about 75 ns for the platform timer on the benchmark machine)
 * cost more than the rest of the pick. A cold backend (no sample yet) is priced at the later of
 * the two stamps, which orders it the same way for any realistic latency.
 */
function notCostlier(a: BackendView, b: BackendView, tau: number): boolean {
  if (a.latencyEwma === 0 || b.latencyEwma === 0) {
    const ref = Math.max(a.latencyStamp, b.latencyStamp);
    return costAt(a, ref, tau) <= costAt(b, ref, tau);
  }
  return (
    a.latencyEwma *
      Math.exp((a.latencyStamp - b.latencyStamp) / tau) *
      (a.inFlight + 1) *
      b.effectiveWeight <=
    b.latencyEwma * (b.inFlight + 1) * a.effectiveWeight
  );
}

/**
 * Latency-aware balancing, as Finagle's and Linkerd's peak EWMA: each backend's cost is its
 * peak-sensitive, exponentially decayed latency times (in-flight + 1), divided by its weight;
 * the cheaper of two random backends wins. A latency spike counts at once, and an idle
 * backend's cost decays (10 s time constant by default) so it is tried again. A backend with
 * calls in flight and no sample yet counts as very expensive.
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

  constructor(options: PeakEwmaOptions = {}) {
    const o = checkOptions('PeakEwmaOptions', options, ['choices']);
    if (o.choices !== undefined && o.choices !== 2 && o.choices !== 'all') {
      throw new LoadBalancerConfigError('choices', o.choices, "2 or 'all'");
    }
    this.#all = o.choices === 'all';
  }

  attach(env: AlgorithmEnv): void {
    this.#env = env;
  }

  /** The cost the algorithm compares, at clock reading `now`. */
  cost(b: BackendView, now: number): number {
    return costAt(b, now, requireEnv(this.#env, this.name).latencyDecayMs);
  }

  pick(candidates: readonly BackendView[]): BackendView | undefined {
    const n = candidates.length;
    if (n === 1) return candidates[0];
    const env = requireEnv(this.#env, this.name);
    if (this.#all) {
      const now = env.clock.now();
      // Start at a random position so ties do not always favour the first backend.
      const start = Math.floor(env.random() * n);
      let best = candidates[start]!;
      const tau = env.latencyDecayMs;
      let bestCost = costAt(best, now, tau);
      for (let k = 1; k < n; k++) {
        const b = candidates[(start + k) % n]!;
        const c = costAt(b, now, tau);
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
    return notCostlier(a, b, env.latencyDecayMs) ? a : b;
  }

  explain(candidates: readonly BackendView[]): AlgorithmExplanation {
    const now = requireEnv(this.#env, this.name).clock.now();
    const costs = candidates
      .slice(0, 8)
      .map((b) => `${b.id}=${round(this.cost(b, now))}`)
      .join(', ');
    let cheapest: BackendView | undefined;
    if (this.#all) {
      for (const b of candidates)
        if (cheapest === undefined || this.cost(b, now) < this.cost(cheapest, now)) cheapest = b;
    }
    return {
      wouldPick: candidates.length === 1 ? candidates[0] : cheapest,
      note: `${this.#all ? 'cheapest of all' : 'cheaper of two random'} by peak-EWMA latency × (in-flight + 1) / weight; costs: ${costs}${candidates.length > 8 ? ', ...' : ''}`,
    };
  }
}
