import { ConsistentHash } from '../algorithms/consistent-hash.js';
import { LeastConnections } from '../algorithms/least-connections.js';
import { Maglev } from '../algorithms/maglev.js';
import { PeakEwma } from '../algorithms/peak-ewma.js';
import { PowerOfTwoChoices } from '../algorithms/power-of-two-choices.js';
import { RandomPick } from '../algorithms/random-pick.js';
import { RoundRobin } from '../algorithms/round-robin.js';
import { WeightedRoundRobin } from '../algorithms/weighted-round-robin.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { OutlierDetector } from '../health/outlier-detector.js';
import type { BackendPool } from '../pool/backend-pool.js';
import type { AlgorithmCandidate } from './types.js';

/** The library's algorithms by the names the simulator and its CLI use. */
const REGISTRY: Readonly<Record<string, Omit<AlgorithmCandidate, 'name'>>> = {
  'round-robin': { create: () => new RoundRobin() },
  'least-connections': { create: () => new LeastConnections() },
  'power-of-two-choices': { create: () => new PowerOfTwoChoices() },
  'peak-ewma': { create: () => new PeakEwma() },
  // Peak EWMA as Finagle has it: latency × (in flight + 1), and a latency peak that fades with
  // time only (PeakEwma before `cost: 'relative'` and the pool's `latencyDecayCalls`).
  'peak-ewma-finagle': {
    create: () => new PeakEwma({ cost: 'finagle' }),
    pool: { latencyDecayCalls: Number.POSITIVE_INFINITY },
  },
  random: { create: () => new RandomPick() },
  'weighted-round-robin': { create: () => new WeightedRoundRobin() },
  'consistent-hash': { create: () => new ConsistentHash() },
  // Bounded loads at 125%, the figure HAProxy's documentation suggests for hash-balance-factor.
  'consistent-hash-bounded': { create: () => new ConsistentHash({ balanceFactor: 1.25 }) },
  maglev: { create: () => new Maglev() },
  // The same algorithms with an OutlierDetector at its defaults (Envoy's: 5 consecutive
  // failures eject for 30 s), the usual remedy for a backend that fails fast.
  'least-connections+outlier': { create: () => new LeastConnections(), setup: withOutlierDetector },
  'peak-ewma+outlier': { create: () => new PeakEwma(), setup: withOutlierDetector },
  // Zone-aware routing off whatever the scenario sets, for comparison (zone-outage).
  'power-of-two-choices+all-zones': {
    create: () => new PowerOfTwoChoices(),
    pool: { zoneAware: false },
  },
};

function withOutlierDetector(pool: BackendPool): () => void {
  const detector = new OutlierDetector(pool);
  return () => detector.close();
}

/** Names accepted by {@link simulationCandidates}. */
export const SIMULATION_ALGORITHMS: readonly string[] = Object.freeze(Object.keys(REGISTRY));

/**
 * The four algorithms of Linkerd's "Beyond Round Robin" comparison, with their default options:
 * round robin, least loaded (`LeastConnections`), power of two choices, and peak EWMA.
 */
export const STANDARD_ALGORITHMS: readonly string[] = Object.freeze([
  'round-robin',
  'least-connections',
  'power-of-two-choices',
  'peak-ewma',
]);

/**
 * Candidates for {@link simulate} from algorithm names (see {@link SIMULATION_ALGORITHMS}), each
 * with the algorithm's default options.
 *
 * @param names Which algorithms. @default STANDARD_ALGORITHMS
 * @throws {LoadBalancerConfigError} for an unknown name.
 * @example
 * ```ts
 * const report = await simulate(linkerdScenario(), {
 *   algorithms: simulationCandidates(['round-robin', 'peak-ewma']),
 * });
 * ```
 */
export function simulationCandidates(
  names: readonly string[] = STANDARD_ALGORITHMS,
): AlgorithmCandidate[] {
  if (!Array.isArray(names) || names.length === 0) {
    throw new LoadBalancerConfigError('names', names, 'a non-empty array of algorithm names');
  }
  return names.map((name, i) => {
    const entry =
      typeof name === 'string' && Object.hasOwn(REGISTRY, name) ? REGISTRY[name] : undefined;
    if (entry === undefined) {
      throw new LoadBalancerConfigError(
        `names[${i}]`,
        name,
        `one of ${SIMULATION_ALGORITHMS.map((n) => `'${n}'`).join(', ')}`,
      );
    }
    return { name, ...entry };
  });
}
