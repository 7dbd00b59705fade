/**
 * The fleet scenario: N clients, each a real `BackendPool` with `DeterministicSubset`, calling M
 * backends through churn (a backend leaves, one joins, a client joins, a rolling deploy replaces
 * a tenth of the backends, a client leaves). After each step every client makes the same number
 * of calls; the report gives, per step, the connections and calls each backend receives and how
 * many client–backend assignments moved. Other ways to choose subsets run on the same steps for
 * comparison (computed, not pooled): the SRE book's deterministic subsetting, random subsets
 * (rendezvous hashing per client, which moves as little as possible) and no subsetting.
 */
import { DeterministicSubset } from '../algorithms/deterministic-subset.js';
import { RoundRobin } from '../algorithms/round-robin.js';
import type { SubsetPlacement } from '../fleet/subset.js';
import { murmur3 } from '../hashing/murmur3.js';
import { BackendPool } from '../pool/backend-pool.js';
import { sfc32 } from '../random.js';
import { checkOptions, optNumber } from '../validate.js';
import { table } from './format.js';
import { maxOverMean } from './metrics.js';
import { barChart, type Chart } from './svg.js';

const FLEET_KEYS = [
  'clients',
  'backends',
  'size',
  'callsPerClient',
  'seed',
  'deployShare',
] as const;
/** The largest fleet dimension taken: the simulation builds one pool per client. */
const MAX_FLEET = 100_000;

/** Options of {@link simulateFleet}. */
export interface FleetScenarioOptions {
  /** Clients at the start. @default 500 */
  clients?: number;
  /** Backends at the start. @default 1000 */
  backends?: number;
  /** Target subset size. @default 20 */
  size?: number;
  /** Calls each client makes after each step (round robin inside its subset). @default 100 */
  callsPerClient?: number;
  /** Seed of the churn (which backends leave). @default 1 */
  seed?: number;
  /** Backends replaced by the rolling-deploy step, as a share of the backends. @default 0.1 */
  deployShare?: number;
}

/** Ways of choosing subsets compared by {@link simulateFleet}. */
export type FleetStrategy =
  | 'deterministic-subset'
  | 'deterministic-subset-stable'
  | 'sre-book'
  | 'random-subset'
  | 'no-subsetting';

/** Figures of one strategy after one step. */
export interface FleetStepResult {
  readonly step: string;
  readonly clients: number;
  readonly backends: number;
  /** Clients holding a connection to each backend: the largest, the mean, the smallest. */
  readonly connections: { readonly max: number; readonly mean: number; readonly min: number };
  /** max / mean of connections per backend. */
  readonly connectionSkew: number;
  /** max / mean of calls per backend. */
  readonly callSkew: number;
  /** Client–backend pairs in use. */
  readonly totalConnections: number;
  /** Subset sizes: the smallest and the largest. */
  readonly subsetSize: { readonly min: number; readonly max: number };
  /** Assignments (client, backend) new since the previous step, over clients present in both. */
  readonly moved: number;
  /** `moved` over the previous step's total connections. */
  readonly movedShare: number;
}

/** The report of {@link simulateFleet}. */
export interface FleetReport {
  readonly clients: number;
  readonly backends: number;
  readonly size: number;
  readonly callsPerClient: number;
  readonly seed: number;
  readonly strategies: readonly {
    readonly name: FleetStrategy;
    readonly description: string;
    readonly steps: readonly FleetStepResult[];
  }[];
}

const DESCRIPTIONS: Record<FleetStrategy, string> = {
  'deterministic-subset':
    'DeterministicSubset in real pools: slices of a hash-ordered ring (Finagle deterministic aperture)',
  'deterministic-subset-stable':
    "the same with placement 'stable': clients at van der Corput positions (Ringsteady)",
  'sre-book': 'SRE book ch. 20: rounds of clients, each round over its own seeded shuffle',
  'random-subset': 'each client its own k backends by rendezvous hashing (moves least)',
  'no-subsetting': 'every client calls every backend',
};

interface Step {
  label: string;
  clients: number;
  backends: string[];
}

/**
 * Runs the fleet scenario. With the defaults (500 clients, 1,000 backends, subsets of 20) it
 * builds 500 pools of 1,000 backends, so it takes a few seconds; tests run smaller fleets.
 *
 * @example
 * ```ts
 * const report = simulateFleet({ clients: 500, backends: 1000, size: 20 });
 * console.log(formatFleetReport(report));
 * ```
 */
export function simulateFleet(options: FleetScenarioOptions = {}): FleetReport {
  const o = checkOptions('FleetScenarioOptions', options, FLEET_KEYS);
  const int = (field: string, v: unknown, fallback: number, min: number): number =>
    optNumber(field, v, fallback, { min, max: MAX_FLEET, integer: true });
  const clients = int('clients', o.clients, 500, 1);
  const backends = int('backends', o.backends, 1000, 2);
  const size = int('size', o.size, 20, 1);
  const calls = int('callsPerClient', o.callsPerClient, 100, 1);
  const seed = optNumber('seed', o.seed, 1, { integer: true });
  const deployShare = optNumber('deployShare', o.deployShare, 0.1, { min: 0, max: 1 });
  const steps = churnSteps(clients, backends, seed, deployShare);
  const strategies: FleetReport['strategies'][number][] = [
    {
      name: 'deterministic-subset',
      description: DESCRIPTIONS['deterministic-subset'],
      steps: pooled(steps, size, calls, 'even'),
    },
    {
      name: 'deterministic-subset-stable',
      description: DESCRIPTIONS['deterministic-subset-stable'],
      steps: pooled(steps, size, calls, 'stable'),
    },
  ];
  for (const name of ['sre-book', 'random-subset', 'no-subsetting'] as const) {
    const choose = CHOOSERS[name];
    const subsetsPerStep = steps.map((s) => {
      const sorted = [...s.backends].sort();
      return Array.from({ length: s.clients }, (_, i) => choose(sorted, i, size));
    });
    strategies.push({
      name,
      description: DESCRIPTIONS[name],
      steps: steps.map((s, k) =>
        figures(
          s,
          subsetsPerStep[k]!,
          roundRobinCalls(subsetsPerStep[k]!, calls),
          subsetsPerStep[k - 1],
        ),
      ),
    });
  }
  return { clients, backends, size, callsPerClient: calls, seed, strategies };
}

function churnSteps(clients: number, backends: number, seed: number, deployShare: number): Step[] {
  const random = sfc32(seed, 0x9e3779b9, 0x85ebca6b, 0xc2b2ae35);
  const name = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`;
  let next = backends;
  const start = Array.from({ length: backends }, (_, i) => name(i));
  const steps: Step[] = [{ label: 'start', clients, backends: start }];
  const last = (): Step => steps.at(-1)!;
  const leaving = Math.floor(random() * backends);
  steps.push({
    label: 'a backend leaves',
    clients,
    backends: last().backends.filter((_, i) => i !== leaving),
  });
  steps.push({ label: 'a backend joins', clients, backends: [...last().backends, name(next++)] });
  steps.push({ label: 'a client joins', clients: clients + 1, backends: last().backends });
  const replaced = Math.max(1, Math.round(backends * deployShare));
  const current = [...last().backends];
  for (let i = 0; i < replaced; i++) {
    const j = Math.floor(random() * current.length);
    current.splice(j, 1);
    current.push(name(next++));
  }
  steps.push({ label: `${replaced} backends replaced`, clients: clients + 1, backends: current });
  steps.push({ label: 'a client leaves', clients, backends: current });
  return steps;
}

/** DeterministicSubset in one real pool per client, churn applied through pool.add/remove. */
function pooled(
  steps: readonly Step[],
  size: number,
  calls: number,
  placement: SubsetPlacement,
): FleetStepResult[] {
  const fleet = { count: steps[0]!.clients };
  const pools: { pool: BackendPool; subset: DeterministicSubset }[] = [];
  const makeClient = (index: number, backends: readonly string[]): void => {
    const subset = new DeterministicSubset({
      algorithm: new RoundRobin({ startIndex: 0 }),
      fleet: () => ({ index, count: fleet.count }),
      size,
      placement,
    });
    const pool = new BackendPool({
      backends: backends.map((id) => ({ url: `http://${id}`, id })),
      algorithm: subset,
      skew: false,
    });
    pools.push({ pool, subset });
  };
  const results: FleetStepResult[] = [];
  let previous: Set<string>[] | undefined;
  let current = new Set<string>();
  try {
    for (const step of steps) {
      const wanted = new Set(step.backends);
      while (pools.length > step.clients) {
        const gone = pools.pop()!;
        void gone.pool.close();
      }
      fleet.count = step.clients;
      for (const { pool, subset } of pools) {
        for (const id of current) if (!wanted.has(id)) void pool.remove(id, { drain: false });
        for (const id of step.backends) if (!current.has(id)) pool.add({ url: `http://${id}`, id });
        subset.refresh();
      }
      while (pools.length < step.clients) makeClient(pools.length, step.backends);
      current = wanted;
      // Every client makes its calls, counted per backend.
      const perBackend = new Map<string, number>();
      for (const { pool } of pools) {
        for (let c = 0; c < calls; c++) {
          const lease = pool.acquire();
          perBackend.set(lease.backend.id, (perBackend.get(lease.backend.id) ?? 0) + 1);
          lease.release({ ok: true, latencyMs: 1 });
        }
      }
      const subsets = pools.map(({ subset }) => new Set(subset.subset()));
      results.push(figures(step, subsets, perBackend, previous));
      previous = subsets;
    }
  } finally {
    for (const { pool } of pools) void pool.close();
  }
  return results;
}

type Chooser = (sorted: readonly string[], index: number, size: number) => Set<string>;

const CHOOSERS: Record<
  Exclude<FleetStrategy, 'deterministic-subset' | 'deterministic-subset-stable'>,
  Chooser
> = {
  /**
   * SRE book, "A Subset Selection Algorithm: Deterministic Subsetting": subset_count =
   * backends / subset_size; client i is in round i / subset_count, whose seeded shuffle of the
   * backends is cut into subset_count subsets; it takes subset i % subset_count. When the
   * division is not exact, some subsets are one larger (as the book allows).
   */
  'sre-book': (sorted, index, size) => {
    const m = sorted.length;
    const subsets = Math.max(1, Math.floor(m / size));
    const round = Math.floor(index / subsets);
    const shuffled = [...sorted];
    const random = sfc32(round, 0x2545f491, 0x9e3779b9, 0x6a09e667);
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const s = index % subsets;
    return new Set(
      shuffled.slice(Math.floor((s * m) / subsets), Math.floor(((s + 1) * m) / subsets)),
    );
  },
  /** The k backends with the highest hash of (client, backend): rendezvous hashing. */
  'random-subset': (sorted, index, size) => {
    const scored = sorted.map((id) => ({ id, h: murmur3(`${index}/${id}`) }));
    scored.sort((a, b) => b.h - a.h || (a.id < b.id ? -1 : 1));
    return new Set(scored.slice(0, size).map((x) => x.id));
  },
  'no-subsetting': (sorted) => new Set(sorted),
};

/**
 * Round robin inside each subset, each client from its own starting point (as `RoundRobin` starts
 * at a random one), so clients that call only part of a large subset do not all call the same
 * backends first.
 */
function roundRobinCalls(subsets: readonly Set<string>[], calls: number): Map<string, number> {
  const perBackend = new Map<string, number>();
  for (const [client, subset] of subsets.entries()) {
    const list = [...subset].sort();
    const start = murmur3(`start/${client}`) % list.length;
    for (let c = 0; c < calls; c++) {
      const id = list[(start + c) % list.length]!;
      perBackend.set(id, (perBackend.get(id) ?? 0) + 1);
    }
  }
  return perBackend;
}

function figures(
  step: Step,
  subsets: readonly Set<string>[],
  perBackend: ReadonlyMap<string, number>,
  previous: readonly Set<string>[] | undefined,
): FleetStepResult {
  const conns = new Map(step.backends.map((id) => [id, 0]));
  let total = 0;
  let minSize = Number.POSITIVE_INFINITY;
  let maxSize = 0;
  for (const s of subsets) {
    total += s.size;
    minSize = Math.min(minSize, s.size);
    maxSize = Math.max(maxSize, s.size);
    for (const id of s) conns.set(id, (conns.get(id) ?? 0) + 1);
  }
  // Loops rather than Math.max(...values): spreading 100k+ values overflows the call stack.
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  for (const n of conns.values()) {
    if (n > max) max = n;
    if (n < min) min = n;
  }
  const callValues = step.backends.map((id) => perBackend.get(id) ?? 0);
  let moved = 0;
  let before = 0;
  if (previous !== undefined) {
    for (let i = 0; i < Math.min(previous.length, subsets.length); i++) {
      before += previous[i]!.size;
      for (const id of subsets[i]!) if (!previous[i]!.has(id)) moved++;
    }
  }
  return {
    step: step.label,
    clients: step.clients,
    backends: step.backends.length,
    connections: { max, mean: total / step.backends.length, min },
    connectionSkew: maxOverMean([...conns.values()]),
    callSkew: maxOverMean(callValues),
    totalConnections: total,
    subsetSize: { min: minSize, max: maxSize },
    moved,
    movedShare: before === 0 ? 0 : moved / before,
  };
}

/** Renders a fleet report as Markdown tables: balance at the start, then moves per step. */
export function formatFleetReport(report: FleetReport): string {
  const start = report.strategies.map((s) => {
    const r = s.steps[0]!;
    return [
      s.name,
      r.subsetSize.min === r.subsetSize.max
        ? `${r.subsetSize.min}`
        : `${r.subsetSize.min}–${r.subsetSize.max}`,
      r.totalConnections.toLocaleString('en-US'),
      `${r.connections.min}–${r.connections.max}`,
      r.connectionSkew.toFixed(3),
      r.callSkew.toFixed(3),
    ];
  });
  const labels = report.strategies[0]!.steps.slice(1).map((s) => s.step);
  const moves = report.strategies.map((s) => [
    s.name,
    ...s.steps
      .slice(1)
      .map((r) => `${r.moved.toLocaleString('en-US')} (${(r.movedShare * 100).toFixed(1)}%)`),
  ]);
  const worst = report.strategies.map((s) => [
    s.name,
    ...s.steps.slice(1).map((r) => r.connectionSkew.toFixed(3)),
  ]);
  return [
    `Fleet: ${report.clients} clients × ${report.backends} backends, subsets of ${report.size}, ${report.callsPerClient} calls per client per step (seed ${report.seed})`,
    '',
    table(
      ['strategy', 'subset size', 'connections', 'per backend', 'max/mean conn.', 'max/mean calls'],
      start,
    ),
    '',
    'Assignments moved by each step (share of the connections before it):',
    '',
    table(['strategy', ...labels], moves),
    '',
    'max/mean connections per backend after each step:',
    '',
    table(['strategy', ...labels], worst),
  ].join('\n');
}

/** Two charts: connection balance at the start, and assignments moved per churn step. */
export function fleetCharts(report: FleetReport): Chart[] {
  const names = report.strategies.map((s) => s.name);
  const balance = barChart({
    title: `Connections per backend: ${report.clients} clients × ${report.backends} backends, subsets of ${report.size}`,
    subtitle: 'max / mean over backends (1.0 is perfect balance); lower is better',
    categories: names,
    series: [
      { name: 'connections', values: report.strategies.map((s) => s.steps[0]!.connectionSkew) },
      { name: 'calls', values: report.strategies.map((s) => s.steps[0]!.callSkew) },
    ],
    yLabel: 'max / mean',
    format: (v) => v.toFixed(2),
    refLines: [{ value: 1.1, label: 'target 1.1' }],
  });
  const steps = report.strategies[0]!.steps.slice(1).map((s) => s.step);
  const churn = barChart({
    title: 'Assignments moved by one change (share of all client–backend pairs)',
    subtitle: `${report.clients} clients × ${report.backends} backends, subsets of ${report.size}; lower is better`,
    categories: steps,
    series: report.strategies
      .filter((s) => s.name !== 'no-subsetting')
      .map((s) => ({ name: s.name, values: s.steps.slice(1).map((r) => r.movedShare * 100) })),
    yLabel: '% moved',
    format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)),
    width: 860,
  });
  return [
    { name: 'subsetting-balance', title: 'Connections per backend', svg: balance },
    { name: 'subsetting-churn', title: 'Assignments moved by one change', svg: churn },
  ];
}
