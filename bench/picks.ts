/**
 * Picks: nanoseconds per pick of every algorithm at 10, 100 and 1000 backends, the full
 * `pool.acquire()` + `lease.release()` path, heap allocation per pick, and the balls-into-bins
 * gap of power of two choices.
 *
 * Each algorithm is timed in a child process of its own (`node --expose-gc --import tsx`), as in a
 * service that uses one algorithm: call sites stay monomorphic and one algorithm's warm-up does
 * not slow another's. Every figure sits next to a plain array-index round robin timed in the same
 * child at the same size (the ratio column). Figures are medians of 7 runs.
 */
import { existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { P2cBalancer, RandomBalancer } from 'load-balancers';
import {
  type Algorithm,
  BackendPool,
  type BackendView,
  DeterministicSubset,
  type Lease,
  LeastConnections,
  PeakEwma,
  type PickContext,
  PowerOfTwoChoices,
  RandomPick,
  RoundRobin,
  WeightedRoundRobin,
} from '../src/index.js';
import { ManualClock, seededRandom } from '../src/testing/index.js';
import {
  calibrate,
  cpuTime,
  fmt,
  type Loop,
  median,
  inChild as runInChild,
  type Section,
  table,
  workerJob,
} from './harness.js';

const SIZES = [10, 100, 1000] as const;
const RUNS = 11;
/** Each timed run lasts about this long once calibrated. */
const RUN_MS = 15;
const ALLOC_PICKS = 1_000_000;

/** Targets from the issue, in ns per pick at 100 backends. */
const TARGETS: Record<string, number> = {
  RoundRobin: 50,
  WeightedRoundRobin: 50,
  LeastConnections: 50,
  PowerOfTwoChoices: 50,
  PeakEwma: 100,
};

const CORE: Record<string, () => Algorithm> = {
  RoundRobin: () => new RoundRobin(),
  WeightedRoundRobin: () => new WeightedRoundRobin(),
  LeastConnections: () => new LeastConnections(),
  PowerOfTwoChoices: () => new PowerOfTwoChoices(),
  PeakEwma: () => new PeakEwma(),
  RandomPick: () => new RandomPick(),
  // Power of two choices inside a deterministic subset of about 20 (client 3 of 10).
  DeterministicSubset: () => new DeterministicSubset({ clientIndex: 3, clientCount: 10, size: 20 }),
};

/** Hash-based algorithms, measured when their files exist. */
const OPTIONAL = [
  { name: 'ConsistentHash', file: 'consistent-hash.ts' },
  { name: 'Maglev', file: 'maglev.ts' },
  { name: 'IpHash', file: 'ip-hash.ts' },
] as const;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

// ------------------------------------------------------------------------------ jobs (child)

type Job =
  | { kind: 'pick'; algorithm: string }
  | { kind: 'lb'; balancer: 'P2cBalancer' | 'RandomBalancer' }
  | { kind: 'acquire'; algorithm: string }
  | { kind: 'zones'; algorithm: string; variant: ZoneVariant };

/**
 * Zone-aware routing on the acquire path: backends spread over three zones, the pool in zone a.
 * `none`: no `zoneAware` option (the baseline); `direct`: every call stays in a; `residual`: a
 * lost a third of its backends, so a pick draws its zone (about 73% a).
 */
type ZoneVariant = 'none' | 'direct' | 'residual';
const ZONE_VARIANTS: readonly ZoneVariant[] = ['none', 'direct', 'residual'];

interface Timed {
  n: number;
  base: number;
  ns: number;
}

interface JobResult {
  timings: Timed[];
  /** Heap bytes per operation at 100 backends, and how many gcs ran while measuring. */
  alloc?: { bytes: number; gcs: number };
  /** The same for acquire + release on a ManualClock. */
  manualAlloc?: { bytes: number; gcs: number };
  /** Acquire + release on a ManualClock (no system clock reads), per size. */
  manual?: Timed[];
  error?: string;
}

const sink: { value: unknown } = { value: undefined };

async function loadAlgorithm(name: string): Promise<Algorithm> {
  const core = CORE[name];
  if (core !== undefined) return core();
  const opt = OPTIONAL.find((o) => o.name === name);
  if (opt === undefined) throw new Error(`unknown algorithm ${name}`);
  const mod = (await import(pathToFileURL(`${ROOT}src/algorithms/${opt.file}`).href)) as Record<
    string,
    unknown
  >;
  const Ctor = mod[name] as new () => Algorithm;
  return new Ctor();
}

/** Backends with weights 1 to 4, each with one finished call and 0 to 2 calls in flight. */
function makePool(
  algorithm: Algorithm,
  n: number,
  clock?: ManualClock,
): { pool: BackendPool; leases: Lease[] } {
  const backends = Array.from({ length: n }, (_, i) => ({
    url: `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
    weight: (i % 4) + 1,
  }));
  const pool = new BackendPool({
    backends,
    algorithm,
    skew: false,
    ...(clock === undefined ? {} : { clock, random: seededRandom(n) }),
  });
  const leases: Lease[] = [];
  pool.backends().forEach((b, i) => {
    pool.acquire({ affinity: { id: b.id } }).release({ ok: true, latencyMs: 5 + ((i * 7) % 20) });
    clock?.advance(1);
    for (let k = 0; k < i % 3; k++) leases.push(pool.acquire({ affinity: { id: b.id } }));
  });
  return { pool, leases };
}

/** `makePool` with the backends spread over zones a, b, c and the pool in zone a. */
function makeZonePool(
  algorithm: Algorithm,
  n: number,
  variant: ZoneVariant,
  clock: ManualClock,
): BackendPool {
  const backends = Array.from({ length: n }, (_, i) => ({
    url: `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
    weight: (i % 4) + 1,
    zone: 'abc'[i % 3]!,
  }));
  const pool = new BackendPool({
    backends,
    algorithm,
    skew: false,
    clock,
    random: seededRandom(n),
    ...(variant === 'none' ? {} : { zoneAware: { localZone: 'a' } }),
  });
  if (variant === 'residual') {
    const local = pool.backends().filter((b) => b.zone === 'a');
    for (let k = 0; k < local.length; k += 3) pool.setHealthy(local[k]!.id, false);
  }
  return pool;
}

/** Contexts with a key and a client address, for the hash-based algorithms. */
const CONTEXTS: PickContext[] = Array.from({ length: 1024 }, (_, i) => ({
  key: `user-${i}`,
  clientAddress: `192.168.${i >> 8}.${i & 255}`,
}));

/**
 * CPU ns per iteration of the baseline and of `loop`, runs interleaved (so both see the same
 * machine state), each the median of RUNS runs. CPU time, because the machines we measure on are
 * shared: wall time includes the slices other processes take, CPU time does not.
 */
function timeLoops(base: Loop, loop: Loop): { base: number; ns: number } {
  const nb = calibrate(base, RUN_MS, cpuTime);
  const nl = calibrate(loop, RUN_MS, cpuTime);
  const b: number[] = [];
  const l: number[] = [];
  const once = (f: Loop, iterations: number, into: number[]): void => {
    into.push(cpuTime(f, iterations) / iterations);
  };
  for (let r = 0; r < RUNS; r++) {
    once(base, nb, b);
    once(loop, nl, l);
  }
  return { base: median(b), ns: median(l) };
}

function baselineLoop(arr: readonly BackendView[]): (iterations: number) => void {
  return (iterations) => {
    const n = arr.length;
    let k = 0;
    let last: BackendView | undefined;
    for (let i = 0; i < iterations; i++) {
      last = arr[k];
      k = k + 1 === n ? 0 : k + 1;
    }
    sink.value = last;
  };
}

/** Heap growth per call of `loop(1)`-worth of work, after a forced gc (needs --expose-gc). */
async function bytesPer(loop: (iterations: number) => void): Promise<JobResult['alloc']> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return undefined;
  loop(200_000);
  let gcs = 0;
  let start = Number.POSITIVE_INFINITY;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.startTime >= start) gcs++;
  });
  observer.observe({ entryTypes: ['gc'] });
  gc();
  gc();
  start = performance.now();
  const before = process.memoryUsage().heapUsed;
  loop(ALLOC_PICKS);
  const after = process.memoryUsage().heapUsed;
  await new Promise((r) => setTimeout(r, 10));
  observer.disconnect();
  return { bytes: Math.max(after - before, 0) / ALLOC_PICKS, gcs };
}

async function runJob(job: Job): Promise<JobResult> {
  const timings: Timed[] = [];
  let alloc: JobResult['alloc'];
  if (job.kind === 'pick') {
    for (const n of SIZES) {
      const algorithm = await loadAlgorithm(job.algorithm);
      const { pool } = makePool(algorithm, n);
      const loop = (iterations: number): void => {
        let last: BackendView | undefined;
        for (let i = 0; i < iterations; i++) {
          last = algorithm.pick(pool.eligible(), CONTEXTS[i & 1023]!);
        }
        sink.value = last;
      };
      timings.push({ n, ...timeLoops(baselineLoop(pool.eligible()), loop) });
      if (n === 100) alloc = await bytesPer(loop);
      await pool.close();
    }
    return { timings, ...(alloc === undefined ? {} : { alloc }) };
  }
  if (job.kind === 'lb') {
    const Ctor = job.balancer === 'P2cBalancer' ? P2cBalancer : RandomBalancer;
    for (const n of SIZES) {
      const { pool } = makePool(new RoundRobin(), n);
      const arr = pool.eligible();
      const balancer = new Ctor(n);
      const loop = (iterations: number): void => {
        let last: BackendView | undefined;
        for (let i = 0; i < iterations; i++) last = arr[balancer.pick()];
        sink.value = last;
      };
      timings.push({ n, ...timeLoops(baselineLoop(arr), loop) });
      if (n === 100) alloc = await bytesPer(loop);
      await pool.close();
    }
    return { timings, ...(alloc === undefined ? {} : { alloc }) };
  }
  if (job.kind === 'zones') {
    for (const n of SIZES) {
      const algorithm = await loadAlgorithm(job.algorithm);
      const pool = makeZonePool(algorithm, n, job.variant, new ManualClock());
      const loop = (iterations: number): void => {
        for (let i = 0; i < iterations; i++) pool.acquire().release();
      };
      timings.push({ n, ...timeLoops(baselineLoop(pool.eligible()), loop) });
      if (n === 100) alloc = await bytesPer(loop);
      await pool.close();
    }
    return { timings, ...(alloc === undefined ? {} : { alloc }) };
  }
  const manual: Timed[] = [];
  let manualAlloc: JobResult['alloc'];
  for (const n of SIZES) {
    for (const clock of [undefined, new ManualClock()]) {
      const algorithm = await loadAlgorithm(job.algorithm);
      const { pool } = makePool(algorithm, n, clock);
      const loop = (iterations: number): void => {
        for (let i = 0; i < iterations; i++) pool.acquire().release();
      };
      (clock === undefined ? timings : manual).push({
        n,
        ...timeLoops(baselineLoop(pool.eligible()), loop),
      });
      if (n === 100 && clock === undefined) alloc = await bytesPer(loop);
      if (n === 100 && clock !== undefined) manualAlloc = await bytesPer(loop);
      await pool.close();
    }
  }
  return {
    timings,
    manual,
    ...(alloc === undefined ? {} : { alloc }),
    ...(manualAlloc === undefined ? {} : { manualAlloc }),
  };
}

// ------------------------------------------------------------------------------ report (parent)

function inChild(job: Job): Promise<JobResult> {
  return runInChild<JobResult>(SELF, job, (error) => ({ timings: [], error }), [
    '--expose-gc',
    // A new space large enough that 1e6 picks allocating a few dozen bytes each run without a
    // scavenge, so heap growth measures allocation (the gc column confirms it).
    '--max-semi-space-size=512',
    '--min-semi-space-size=512',
  ]);
}

/** Max load minus mean after 100·n picks without release, for one balancer. */
function ballsIntoBins(make: (() => Algorithm) | 'lb-p2c', n: number, seed: number): number {
  const m = 100 * n;
  let max = 0;
  if (make === 'lb-p2c') {
    // load-balancers counts picks per bin itself (and uses Math.random, so it is not seeded).
    const bins = new Uint32Array(n);
    const b = new P2cBalancer(n);
    for (let i = 0; i < m; i++) bins[b.pick()]!++;
    for (const c of bins) max = Math.max(max, c);
  } else {
    const pool = new BackendPool({
      backends: Array.from({ length: n }, (_, i) => `http://10.0.${i >> 8}.${i & 255}:80`),
      algorithm: make(),
      random: seededRandom(seed),
      clock: new ManualClock(),
      skew: false,
    });
    for (let i = 0; i < m; i++) pool.acquire();
    for (const b of pool.backends()) max = Math.max(max, b.inFlight);
    void pool.close();
  }
  return max - m / n;
}

function cell(t: Timed | undefined): string {
  if (t === undefined) return 'n/a';
  return `${fmt(t.ns)} ns (${fmt(t.ns / t.base)}×)`;
}

export default async function picks(): Promise<Section[]> {
  const names: string[] = Object.keys(CORE);
  for (const o of OPTIONAL) if (existsSync(`${ROOT}src/algorithms/${o.file}`)) names.push(o.name);

  const results = new Map<string, JobResult>();
  for (const name of names) results.set(name, await inChild({ kind: 'pick', algorithm: name }));
  const lb = new Map<string, JobResult>();
  for (const balancer of ['P2cBalancer', 'RandomBalancer'] as const) {
    lb.set(balancer, await inChild({ kind: 'lb', balancer }));
  }
  const acquire = new Map<string, JobResult>();
  for (const name of ['PowerOfTwoChoices', 'LeastConnections']) {
    acquire.set(name, await inChild({ kind: 'acquire', algorithm: name }));
  }

  const zoned = new Map<ZoneVariant, JobResult>();
  for (const variant of ZONE_VARIANTS) {
    zoned.set(variant, await inChild({ kind: 'zones', algorithm: 'PowerOfTwoChoices', variant }));
  }

  const all = [...results.values(), ...lb.values(), ...acquire.values()];
  const baseAt = (n: number): string =>
    fmt(median(all.flatMap((r) => r.timings.filter((t) => t.n === n).map((t) => t.base))));
  const errors = [...results, ...lb, ...acquire, ...zoned]
    .filter(([, r]) => r.error !== undefined)
    .map(([name, r]) => `- ${name}: ${r.error}`);

  const pickRows = [
    ['plain array-index round robin (baseline)', ...SIZES.map(baseAt), '', ''],
    ...names.map((name) => {
      const r = results.get(name)!;
      const at = (n: number) => r.timings.find((t) => t.n === n);
      const target = TARGETS[name];
      const at100 = at(100);
      return [
        name,
        ...SIZES.map((n) => cell(at(n))),
        target === undefined ? '-' : `≤ ${target} ns`,
        target === undefined || at100 === undefined ? '-' : at100.ns <= target ? 'yes' : 'NO',
      ];
    }),
    ...[...lb].map(([name, r]) => [
      `load-balancers ${name}`,
      ...SIZES.map((n) => cell(r.timings.find((t) => t.n === n))),
      '-',
      '-',
    ]),
  ];

  const acquireRows = [...acquire].flatMap(([name, r]) => [
    [`${name}, systemClock`, ...SIZES.map((n) => cell(r.timings.find((t) => t.n === n)))],
    [
      `${name}, ManualClock (no clock reads)`,
      ...SIZES.map((n) => cell(r.manual?.find((t) => t.n === n))),
    ],
  ]);

  const zoneLabel: Record<ZoneVariant, string> = {
    none: 'no zoneAware (baseline)',
    direct: 'zoneAware, direct (every call local)',
    residual: 'zoneAware, residual (a zone drawn per pick)',
  };
  const noZones = zoned.get('none');
  const zoneRows = [...zoned].map(([variant, r]) => [
    zoneLabel[variant],
    ...SIZES.map((n) => {
      const t = r.timings.find((x) => x.n === n);
      const base = noZones?.timings.find((x) => x.n === n);
      if (t === undefined) return 'n/a';
      return `${fmt(t.ns)} ns${variant === 'none' || base === undefined ? '' : ` (${fmt(t.ns / base.ns, 2)}×)`}`;
    }),
    r.alloc === undefined ? 'n/a' : fmt(r.alloc.bytes, 2),
  ]);

  const allocRows = [
    ...[...results].map(([name, r]) => [`${name}.pick`, r.alloc]),
    ...[...lb].map(([name, r]) => [`load-balancers ${name}.pick`, r.alloc]),
    ...[...acquire].flatMap(([name, r]) => [
      [`acquire + release (${name}, systemClock)`, r.alloc],
      [`acquire + release (${name}, ManualClock)`, r.manualAlloc],
    ]),
  ].map(([label, a]) => {
    const alloc = a as JobResult['alloc'];
    return [
      label as string,
      alloc === undefined ? 'n/a' : fmt(alloc.bytes, 2),
      alloc === undefined ? 'n/a' : String(alloc.gcs),
    ];
  });

  const n = 1000;
  const seeds = [1, 2, 3, 4, 5];
  const bins = [
    ['PowerOfTwoChoices', seeds.map((s) => ballsIntoBins(() => new PowerOfTwoChoices(), n, s))],
    [
      'RandomPick (one random choice)',
      seeds.map((s) => ballsIntoBins(() => new RandomPick(), n, s)),
    ],
    ['load-balancers P2cBalancer', seeds.map((s) => ballsIntoBins('lb-p2c', n, s))],
  ] as const;
  const bound = Math.log(Math.log(n)) / Math.LN2 + 2;
  const oneChoice = Math.sqrt(2 * 100 * Math.log(n));

  const cpu = cpus();
  const machine = `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`;

  return [
    {
      title: 'Picks',
      body: [
        `Machine: ${machine}. Command: \`npx tsx bench/index.ts picks\`.`,
        '',
        'ns per `algorithm.pick(pool.eligible(), ctx)`, called directly in a loop; backends have weights 1 to 4 and 0 to 2 calls in flight. In brackets: the ratio to a plain array-index round robin timed in the same process at the same size. Each algorithm runs in a child process of its own; medians of 11 runs of about 15 ms of CPU time, interleaved with the baseline runs. Runs are timed with `process.cpuUsage()` rather than the wall clock, because the machine is shared: CPU time leaves out the slices other processes take.',
        '',
        table(
          ['algorithm', '10 backends', '100 backends', '1000 backends', 'target at 100', 'met'],
          pickRows,
        ),
        '',
        '`load-balancers` returns an index and counts picks, not calls in flight (its P2C may draw the same backend twice); it is shown for scale.',
        ...(errors.length > 0 ? ['', 'Not measured:', ...errors] : []),
      ].join('\n'),
    },
    {
      title: 'Picks: acquire + release',
      body: [
        'ns per `pool.acquire()` + `lease.release()` (the whole path: pick, in-flight counting, the algorithm hooks, the lease object, the latency EWMA). With `systemClock` the path reads the clock twice; the ManualClock rows show the cost without those reads.',
        '',
        table(['path', '10 backends', '100 backends', '1000 backends'], acquireRows),
      ].join('\n'),
    },
    {
      title: 'Picks: zone-aware routing',
      body: [
        'ns per `pool.acquire()` + `lease.release()` with PowerOfTwoChoices on a ManualClock, the backends spread over three zones and the pool in zone a; in brackets the ratio to the same pool without `zoneAware`, timed in its own child process. Residual: a lost a third of its backends, so each pick draws its zone from batches of 64 draws. Last column: heap bytes per acquire + release at 100 backends (the lease object is 56 B).',
        '',
        table(['path', ...SIZES.map((n) => `${n} backends`), 'bytes per operation'], zoneRows),
      ].join('\n'),
    },
    {
      title: 'Picks: allocation',
      body: [
        `Heap growth per operation over ${ALLOC_PICKS.toLocaleString('en-US')} operations at 100 backends: \`process.memoryUsage().heapUsed\` after minus before, after two forced collections (\`node --expose-gc\`), in a child started with \`--min-semi-space-size=512 --max-semi-space-size=512\` so that no scavenge runs during the loop (the gc column counts collections observed during the run; 0 means the figure is exact). Less than 1 byte per operation means no allocation per operation: the residue is the measurement itself and code compiled meanwhile.`,
        '',
        table(['operation', 'bytes per operation', 'gc during run'], allocRows),
      ].join('\n'),
    },
    {
      title: 'Picks: balls into bins',
      body: [
        `n = ${n} backends, ${100 * n} acquires never released; max in-flight minus the mean (100). Five runs (seeds 1 to 5 for loadwise; \`load-balancers\` uses Math.random).`,
        '',
        table(
          ['balancer', 'median', 'worst', 'reference'],
          bins.map(([name, gaps]) => [
            name,
            fmt(median(gaps)),
            fmt(Math.max(...gaps)),
            name === 'RandomPick (one random choice)'
              ? `√(2·(m/n)·ln n) ≈ ${fmt(oneChoice)}`
              : `ln ln n / ln 2 + 2 ≈ ${fmt(bound, 2)}`,
          ]),
        ),
        '',
        'Azar, Broder, Karlin and Upfal (1994) bound the two-choice maximum by ln ln n / ln 2 + O(1) for n balls; Berenbrink, Czumaj, Steger and Vöcking (2000) show the gap above the mean stays there however many balls are thrown, while one random choice drifts by about √(2·(m/n)·ln n).',
      ].join('\n'),
    },
  ];
}

// ------------------------------------------------------------------------------ child entry

const job = workerJob<Job>(SELF);
if (job !== undefined) console.log(JSON.stringify(await runJob(job)));
