/**
 * Memory: heap per backend (pools of 10,000 backends), heap per sticky session (100,000 sessions
 * through the session manager), and allocation per pick (1,000,000 picks).
 *
 * How it is measured: `npm run bench` runs plain `tsx bench/index.ts`, which cannot reach the
 * garbage collector, so this section runs itself again in a child process,
 * `node --expose-gc --single-threaded-gc --min-semi-space-size=128 --max-semi-space-size=128
 * --import tsx bench/memory.ts` (with LOADWISE_BENCH_MEMORY_CHILD=1), which measures and prints
 * JSON. A single-threaded GC has swept everything once `gc()` returns, so `heapUsed` is exact.
 * - Retained heap: `heapUsed` after full GCs, before and after building the structure, the
 *   median of several builds after one uncounted build; each figure sits next to a plain `Map`
 *   of minimal records built from the same inputs in the same process.
 * - Allocation: with a 128 MB young generation nothing is collected during a loop of a million
 *   operations, so the growth of `heapUsed` over the loop (no GC in between) is what the loop
 *   allocated. A `PerformanceObserver` counts GCs during each loop to prove it; a loop that
 *   allocates one small object per iteration is the baseline that shows the method sees
 *   allocations. `heapUsed` also steps by a 256 KB page now and then whatever runs, so the
 *   lowest of several loops is reported, with the median beside it.
 */
import { spawn } from 'node:child_process';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  type Algorithm,
  BackendPool,
  ConsistentHash,
  LeastConnections,
  Maglev,
  MemorySessionStore,
  PeakEwma,
  type PickContext,
  PowerOfTwoChoices,
  RandomPick,
  RoundRobin,
  SessionPersistenceManager,
  WeightedRoundRobin,
} from '../src/index.js';
import { ManualClock, seededRandom } from '../src/testing/index.js';
import { consume, fmt, median, type Section, table } from './harness.js';

const CHILD_ENV = 'LOADWISE_BENCH_MEMORY_CHILD';
const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const BACKENDS = 10_000;
const SESSIONS = 100_000;
const PICKS = 1_000_000;
const RUNS = 3;
const ALLOC_RUNS = 5;

// ------------------------------------------------------------------ child: measurements

interface Retained {
  name: string;
  bytes: number;
}

interface Allocation {
  name: string;
  /** Lowest over the loops: a one-off (compiled code) lands in one loop, a per-call cost in all. */
  bytesPerOp: number;
  /** Median over the loops. */
  medianBytesPerOp: number;
  /** GCs seen during the measured loops (all runs); 0 means the figure is exact. */
  gcs: number;
}

interface Results {
  node: string;
  perBackend: Retained[];
  perSession: Retained[];
  perPick: Allocation[];
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with --expose-gc');
  collect();
  collect();
}

/**
 * Median heap retained by what `build` returns, over RUNS builds, after one build that is not
 * counted (it pays one-time costs: compiled code, inline caches, interned strings).
 */
async function retained(build: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let r = -1; r < RUNS; r++) {
    gc();
    const before = process.memoryUsage().heapUsed;
    let kept = build();
    if (kept instanceof Promise) kept = await kept;
    gc();
    if (r >= 0) samples.push(process.memoryUsage().heapUsed - before);
    consume(kept);
    kept = undefined;
    consume(undefined);
  }
  return median(samples);
}

/** Start times (performance.now) of every GC seen. */
const gcTimes: number[] = [];
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcTimes.push(e.startTime);
});

/** Bytes allocated per call of `op` over PICKS calls in each of ALLOC_RUNS loops, and GCs seen. */
async function allocation(
  op: (i: number) => unknown,
): Promise<{ bytes: number; median: number; gcs: number }> {
  for (let i = 0; i < 500_000; i++) consume(op(i));
  const samples: number[] = [];
  let gcs = 0;
  for (let r = 0; r < ALLOC_RUNS; r++) {
    gc();
    const start = performance.now();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < PICKS; i++) consume(op(i));
    const after = process.memoryUsage().heapUsed;
    const end = performance.now();
    // GC entries arrive asynchronously: wait for them, then count those inside the loop.
    await new Promise((resolve) => setTimeout(resolve, 20));
    gcs += gcTimes.filter((t) => t >= start && t <= end).length;
    samples.push((after - before) / PICKS);
  }
  return { bytes: Math.min(...samples), median: median(samples), gcs };
}

function urls(n: number): string[] {
  return Array.from(
    { length: n },
    (_, i) => `http://10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`,
  );
}

async function measure(): Promise<Results> {
  observer.observe({ entryTypes: ['gc'] });
  const clock = new ManualClock();

  // ---- per backend
  const specs = urls(BACKENDS);
  const poolOf = (algorithm: () => Algorithm) => () =>
    new BackendPool({
      backends: specs,
      algorithm: algorithm(),
      clock,
      random: seededRandom(1),
      skew: false,
    });
  const perBackend: Retained[] = [];
  const baselineBackends = await retained(
    () => new Map(specs.map((url) => [url, { url, weight: 1, inFlight: 0, requests: 0 }])),
  );
  perBackend.push({
    name: 'Map<url, { url, weight, inFlight, requests }> (baseline)',
    bytes: baselineBackends / BACKENDS,
  });
  const pools: [string, () => Algorithm][] = [
    ['BackendPool, PowerOfTwoChoices (default)', () => new PowerOfTwoChoices()],
    ['BackendPool, RoundRobin', () => new RoundRobin()],
    ['BackendPool, WeightedRoundRobin', () => new WeightedRoundRobin()],
    ['BackendPool, LeastConnections', () => new LeastConnections()],
    ['BackendPool, PeakEwma', () => new PeakEwma()],
    ['BackendPool, ConsistentHash (ring)', () => new ConsistentHash()],
    ['BackendPool, Maglev (65,537-slot table)', () => new Maglev()],
  ];
  for (const [name, algorithm] of pools) {
    perBackend.push({ name, bytes: (await retained(poolOf(algorithm))) / BACKENDS });
  }

  // ---- per sticky session
  const keys = Array.from({ length: SESSIONS }, (_, i) => `user-${i}`);
  // Records name one of 8 backend ids, shared strings, as the manager's records do.
  const ids = urls(8).map((u) => u.slice('http://'.length));
  const perSession: Retained[] = [];
  perSession.push({
    name: 'Map<key, { backend, createdAt }> (baseline)',
    bytes:
      (await retained(() => {
        const map = new Map<string, { backend: string; createdAt: number }>();
        for (const key of keys)
          map.set(key, { backend: ids[key.length & 7]!, createdAt: clock.now() });
        return map;
      })) / SESSIONS,
  });
  perSession.push({
    name: 'MemorySessionStore.set',
    bytes:
      (await retained(() => {
        const store = new MemorySessionStore({ maxEntries: SESSIONS, cleanupIntervalMs: 0, clock });
        for (const key of keys)
          store.set(key, { backend: ids[key.length & 7]!, createdAt: clock.now() }, 60_000);
        return store;
      })) / SESSIONS,
  });
  const sessionPool = new BackendPool({
    backends: urls(8),
    algorithm: new RoundRobin(),
    clock,
    random: seededRandom(2),
    skew: false,
  });
  perSession.push({
    name: 'SessionPersistenceManager.acquire(key) (store and manager)',
    bytes:
      (await retained(async () => {
        const sessions = new SessionPersistenceManager(sessionPool, {
          maxEntries: SESSIONS,
          cleanupIntervalMs: 0,
        });
        for (const key of keys) (await sessions.acquire(key)).lease.release();
        return sessions;
      })) / SESSIONS,
  });

  // ---- per pick
  const perPick: Allocation[] = [];
  const emptyLoop = await allocation((i) => i);
  perPick.push({
    name: 'empty loop (baseline)',
    bytesPerOp: emptyLoop.bytes,
    medianBytesPerOp: emptyLoop.median,
    gcs: emptyLoop.gcs,
  });
  const objectLoop = await allocation((i) => ({ i }));
  perPick.push({
    name: 'one `{ i }` per iteration (baseline)',
    bytesPerOp: objectLoop.bytes,
    medianBytesPerOp: objectLoop.median,
    gcs: objectLoop.gcs,
  });
  const pickKeys = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
  const algorithms: [string, () => Algorithm, boolean][] = [
    ['RoundRobin', () => new RoundRobin(), false],
    ['PowerOfTwoChoices', () => new PowerOfTwoChoices(), false],
    ['WeightedRoundRobin', () => new WeightedRoundRobin(), false],
    ['LeastConnections', () => new LeastConnections(), false],
    ['PeakEwma', () => new PeakEwma(), false],
    ['RandomPick', () => new RandomPick(), false],
    ['ConsistentHash (keyed)', () => new ConsistentHash(), true],
    ['Maglev (keyed)', () => new Maglev(), true],
  ];
  for (const [name, make, keyed] of algorithms) {
    const pool = new BackendPool({
      backends: urls(10),
      algorithm: make(),
      clock,
      random: seededRandom(3),
      skew: false,
    });
    const candidates = pool.eligible();
    const algorithm = pool.algorithm;
    const ctxs: PickContext[] = pickKeys.map((key) => (keyed ? { key } : {}));
    const a = await allocation((i) => algorithm.pick(candidates, ctxs[i & 1023]!));
    perPick.push({
      name: `${name}.pick()`,
      bytesPerOp: a.bytes,
      medianBytesPerOp: a.median,
      gcs: a.gcs,
    });
  }
  const acquirePool = new BackendPool({
    backends: urls(10),
    algorithm: new PowerOfTwoChoices(),
    clock,
    random: seededRandom(4),
    skew: false,
  });
  const acquire = await allocation(() => acquirePool.acquire().release());
  perPick.push({
    name: 'pool.acquire().release(), PowerOfTwoChoices (the lease is an object)',
    bytesPerOp: acquire.bytes,
    medianBytesPerOp: acquire.median,
    gcs: acquire.gcs,
  });
  // Two priority tiers sharing the calls (tier 0 at 2 of 4 healthy takes 70%): each pick draws
  // its tier. The same figure as one tier means the draw allocates nothing.
  const tieredPools: [string, () => Algorithm][] = [
    ['PowerOfTwoChoices', () => new PowerOfTwoChoices()],
    ['LeastConnections', () => new LeastConnections()],
  ];
  for (const [name, make] of tieredPools) {
    for (const tiers of [1, 2]) {
      const pool = new BackendPool({
        backends: [
          ...urls(4),
          ...urls(8)
            .slice(4)
            .map((url) => ({ url, priority: tiers - 1 })),
        ],
        algorithm: make(),
        clock,
        random: seededRandom(5),
        skew: false,
      });
      if (tiers === 2) {
        const [a, b] = pool.backends();
        pool.setHealthy(a!.id, false);
        pool.setHealthy(b!.id, false);
      }
      const m = await allocation(() => pool.acquire().release());
      perPick.push({
        name: `pool.acquire().release(), ${name}, ${tiers === 1 ? 'one tier' : 'two tiers sharing 70/30'}`,
        bytesPerOp: m.bytes,
        medianBytesPerOp: m.median,
        gcs: m.gcs,
      });
    }
  }
  // Zone-aware routing (12 backends in zones a, b, c; the pool in a): direct keeps one array,
  // residual (a at 2 of 4 healthy: 60/20/20) draws a zone per pick. The same figure as without
  // zones means the zone draw allocates nothing.
  for (const mode of ['direct', 'residual'] as const) {
    for (const [name, make] of tieredPools) {
      const pool = new BackendPool({
        backends: urls(12).map((url, i) => ({ url, zone: 'abc'[i % 3]! })),
        algorithm: make(),
        clock,
        random: seededRandom(6),
        skew: false,
        zoneAware: { localZone: 'a' },
      });
      if (mode === 'residual') {
        const local = pool.backends().filter((b) => b.zone === 'a');
        pool.setHealthy(local[0]!.id, false);
        pool.setHealthy(local[1]!.id, false);
      }
      const m = await allocation(() => pool.acquire().release());
      perPick.push({
        name: `pool.acquire().release(), ${name}, zone-aware ${mode === 'direct' ? 'direct' : 'residual 60/20/20'}`,
        bytesPerOp: m.bytes,
        medianBytesPerOp: m.median,
        gcs: m.gcs,
      });
    }
  }
  observer.disconnect();
  return { node: process.version, perBackend, perSession, perPick };
}

if (process.env[CHILD_ENV] === '1') {
  console.log(JSON.stringify(await measure()));
}

// ------------------------------------------------------------------ parent: the section

function runChild(): Promise<Results> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: '1' };
  delete env['NODE_OPTIONS'];
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--single-threaded-gc',
      '--min-semi-space-size=128',
      '--max-semi-space-size=128',
      '--import',
      'tsx',
      SELF,
    ],
    { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`memory child exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as Results);
    });
  });
}

export default async function memory(): Promise<Section> {
  const r = await runChild();
  const backendBase = r.perBackend[0]!.bytes;
  const sessionBase = r.perSession[0]!.bytes;
  const body = [
    `Measured in a child process: \`node --expose-gc --single-threaded-gc --min-semi-space-size=128 --max-semi-space-size=128 --import tsx bench/memory.ts\` (retained heap after full GCs, median of ${RUNS} builds after one uncounted warm-up build; allocation as \`heapUsed\` growth over ${PICKS.toLocaleString('en-US')} operations with no GC in between, in each of ${ALLOC_RUNS} loops).`,
    '',
    `**Heap per backend**, pools of ${BACKENDS.toLocaleString('en-US')} backends built from URL strings (the strings themselves not counted):`,
    '',
    table(
      ['structure', 'bytes per backend', 'vs Map'],
      r.perBackend.map((x) => [x.name, fmt(x.bytes), `${fmt(x.bytes / backendBase, 2)}x`]),
    ),
    '',
    `**Heap per sticky session**, ${SESSIONS.toLocaleString('en-US')} sessions (keys not counted; 8 backends):`,
    '',
    table(
      ['structure', 'bytes per session', 'vs Map'],
      r.perSession.map((x) => [x.name, fmt(x.bytes), `${fmt(x.bytes / sessionBase, 2)}x`]),
    ),
    '',
    `**Allocation per pick**, ${PICKS.toLocaleString('en-US')} calls over 10 backends. With no GC during a loop (last column), \`heapUsed\` growth is what the loop allocated; it also moves now and then by a 256 KB page whatever runs (compiled code, the runtime), about 0.26 B per call over a loop, so the lowest loop is the figure and the median shows that noise. An allocation of even one byte per call would add 1 MB to every loop.`,
    '',
    table(
      [
        'operation',
        'bytes per call (lowest loop)',
        'bytes per call (median loop)',
        'GCs during the loops',
      ],
      r.perPick.map((x) => [
        x.name,
        x.bytesPerOp.toFixed(3),
        x.medianBytesPerOp.toFixed(3),
        String(x.gcs),
      ]),
    ),
  ].join('\n');
  return { title: 'Memory', body };
}
