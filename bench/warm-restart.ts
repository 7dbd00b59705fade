/**
 * Warm restarts: what a client's restart does to a backend still in its slow-start ramp, with
 * and without the previous process's snapshot. The simulator runs one process for 10 s (b0, a
 * cold instance with a quarter of the others' capacity, joins at 5 s and ramps over 30 s), takes
 * `pool.snapshot()` at its end, then runs the restarted process for 20 s twice: cold (no
 * snapshot: b0 at full weight at once) and warm (`restore`, as if the restart took 2 s).
 *
 * `npx tsx bench/index.ts restart --write-svg` also writes docs/images/warm-restart-share.svg and
 * docs/images/warm-restart-success.svg.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type AlgorithmResult,
  lineChart,
  type PoolSnapshot,
  type Scenario,
  simulate,
  simulationCandidates,
} from '../src/index.js';
import { fmt, type Section, table } from './harness.js';

const IMAGES = new URL('../docs/images/', import.meta.url);
const BEFORE_MS = 10_000;
const JOIN_AT = 5000;
const GAP_MS = 2000;
const AFTER_MS = 20_000;
const SLOW_START_MS = 30_000;
const ALGORITHMS = ['weighted-round-robin', 'power-of-two-choices', 'peak-ewma'];

/** Eight backends; b0 (joining at `joinAt`, or there from the start) serves 2 calls at a time. */
function scenario(durationMs: number, joinAt: number): Scenario {
  return {
    name: 'restart',
    description: 'b0 of 8 backends ramps up (slow start 30 s) with a quarter of the capacity',
    backends: Array.from({ length: 8 }, (_, i) => ({
      id: `b${i}`,
      latency: { kind: 'lognormal', median: 20, sigma: 0.3 },
      concurrency: i === 0 ? 2 : 8,
      ...(i === 0 && joinAt > 0 ? { joinAt } : {}),
    })),
    rate: 800,
    durationMs,
    deadlineMs: 250,
    pool: { slowStartMs: SLOW_START_MS },
    seed: 1,
  };
}

interface Runs {
  before: AlgorithmResult;
  cold: AlgorithmResult;
  warm: AlgorithmResult;
  snapshot: PoolSnapshot;
}

async function runs(algorithm: string): Promise<Runs> {
  const [candidate] = simulationCandidates([algorithm]);
  let snapshot: PoolSnapshot | undefined;
  const first = await simulate(scenario(BEFORE_MS, JOIN_AT), {
    timelineBucketMs: 1000,
    algorithms: [
      {
        ...candidate!,
        setup: (pool) => () => {
          snapshot = pool.snapshot();
        },
      },
    ],
  });
  // The restarted process's ManualClock starts at 0, and the restart took GAP_MS: its wall clock
  // reads 0 when the snapshot is GAP_MS old.
  const restore: PoolSnapshot = { ...snapshot!, takenAt: -GAP_MS };
  const second = await simulate(scenario(AFTER_MS, 0), {
    timelineBucketMs: 1000,
    algorithms: [
      { ...candidate!, name: 'cold' },
      { ...candidate!, name: 'warm', pool: { restore } },
    ],
  });
  return {
    before: first.results[0]!,
    cold: second.results[0]!,
    warm: second.results[1]!,
    snapshot: snapshot!,
  };
}

/** b0's share of the calls of each 1 s bucket, at x = the bucket's start (s) + `offset`. */
function share(r: AlgorithmResult, offset: number): [number, number][] {
  return r.timeline.map((t) => [
    t.from / 1000 + offset,
    t.requests === 0 ? 0 : (100 * t.byBackend[0]!) / t.requests,
  ]);
}

function success(r: AlgorithmResult): [number, number][] {
  return r.timeline.map((t) => [
    t.from / 1000,
    t.requests === 0 ? 100 : (100 * t.succeeded) / t.requests,
  ]);
}

/** b0's share of the calls in the first `ms` of a run. */
function earlyShare(r: AlgorithmResult, ms: number): number {
  let b0 = 0;
  let all = 0;
  for (const t of r.timeline) {
    if (t.from >= ms) break;
    b0 += t.byBackend[0]!;
    all += t.requests;
  }
  return all === 0 ? 0 : b0 / all;
}

export default async function restart(): Promise<Section> {
  const results = new Map<string, Runs>();
  for (const a of ALGORITHMS) results.set(a, await runs(a));

  const rows = [...results].flatMap(([name, r]) =>
    (['cold', 'warm'] as const).map((kind) => {
      const x = r[kind];
      return [
        `${name}, ${kind}`,
        `${fmt(100 * earlyShare(x, 5000), 1)}%`,
        `${fmt(100 * x.backends[0]!.share, 1)}%`,
        `${fmt(100 * x.successRate, 2)}%`,
        fmt(x.latency.p99, 1),
        String(x.backends[0]!.peakInFlight),
      ];
    }),
  );
  const wrr = results.get('weighted-round-robin')!;
  const b0 = wrr.snapshot.backends.find((b) => b.id === 'b0')!;

  if (process.argv.includes('--write-svg')) {
    const restartBand = { from: -GAP_MS / 1000, to: 0, label: 'restart' };
    writeFileSync(
      fileURLToPath(new URL('warm-restart-share.svg', IMAGES)),
      lineChart({
        title: 'A client restarts while b0 ramps up: b0’s share of the calls',
        subtitle:
          'Weighted round robin, 8 backends, slow start 30 s; b0 joins 7 s before the restart, which takes 2 s',
        series: [
          { name: 'before the restart', points: share(wrr.before, -(BEFORE_MS + GAP_MS) / 1000) },
          { name: 'cold restart (no snapshot)', points: share(wrr.cold, 0) },
          { name: 'warm restart (restore)', points: share(wrr.warm, 0) },
        ],
        bands: [restartBand],
        refLines: [{ value: 12.5, label: 'full weight (1/8)' }],
        xLabel: 'seconds from the restarted process’s start',
        yLabel: 'b0 share of calls (%)',
        formatY: (v) => `${fmt(v, 1)}`,
      }),
    );
    writeFileSync(
      fileURLToPath(new URL('warm-restart-success.svg', IMAGES)),
      lineChart({
        title: 'Calls answered within 250 ms after a client restart',
        subtitle:
          'Weighted round robin; b0 serves 2 calls at a time, a quarter of the others, while it warms up',
        series: [
          { name: 'cold restart (no snapshot)', points: success(wrr.cold) },
          { name: 'warm restart (restore)', points: success(wrr.warm) },
        ],
        xLabel: 'seconds from the restarted process’s start',
        yLabel: 'success within the deadline (%)',
        yMin: 80,
        yMax: 100,
        formatY: (v) => String(Math.round(v)),
      }),
    );
  }

  const body = [
    `\`npx tsx bench/index.ts restart --write-svg\` (bench/warm-restart.ts). The simulator (virtual clock, seed 1): 8 backends at a lognormal 20 ms median and 800 calls/s, 250 ms deadline; b0 has 2 workers where the others have 8 (a cold instance) and joins ${JOIN_AT / 1000} s into the first process, which ramps it up over ${SLOW_START_MS / 1000} s (\`slowStartMs\`). After ${BEFORE_MS / 1000} s the process takes \`pool.snapshot()\` and stops; the restarted process runs ${AFTER_MS / 1000} s, cold or warm (\`restore\`, ${GAP_MS / 1000} s after the snapshot). In the snapshot b0 had ramped ${fmt((b0.slowStart?.elapsedMs ?? 0) / 1000, 1)} s.`,
    '',
    table(
      [
        'algorithm, restart',
        'b0 share, first 5 s',
        'b0 share, 20 s',
        'success',
        'p99 ms',
        'b0 peak in flight',
      ],
      rows,
    ),
  ].join('\n');
  return { title: 'Warm restarts', body };
}
