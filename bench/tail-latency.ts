/**
 * Tail latency on real sockets, against backends that behave like servers. Three scenarios, each
 * running every contender of {@link CONTENDERS} in one process run:
 *
 * - **Slow backend**: 3 loopback backends answer in 4 ms whatever their load (no queue); backend
 *   0 answers in 40 ms for the middle third of the calls. Slowness that is not queueing: a GC
 *   pause, a noisy neighbour, a slow dependency.
 * - **Lost capacity**: the same 3 backends serve at most 4 requests at once in 4 ms each, the
 *   rest waiting in a FIFO queue (a CPU-bound server with 4 workers); backend 0 drops to 1 worker
 *   for the middle third. Slowness that is queueing.
 * - **Random stalls**: the backends answer in 4 ms, but 2% of the requests, on any backend and
 *   at random, take 40 ms for the whole measured run. Slowness no pick can steer away from, the
 *   case hedged requests are for.
 *
 * Each contender starts a fresh client and makes WARMUP calls with every backend fast (not
 * measured), then CALLS calls in a closed loop, IN_FLIGHT at a time (each of IN_FLIGHT workers
 * sends its next call when its previous one has answered), no retries. Latency is measured
 * around each call on the client; the calls the fast backends answered give the client's own
 * noise ("fast p99"). The backends run in a child process (plain Node, started
 * here), so their timers do not share the client's event loop; they count the requests they
 * receive, so the share sent to the slow backend and the extra load (requests per call above 1,
 * as hedged requests add) are measured where the load lands, whatever the contender does.
 *
 * ROUNDS rounds, each running every contender once in a rotating order; p50, p99 and p99.9 are
 * the medians of the per-round figures, shown with the range of the per-round p99s.
 *
 * To add a contender (a hedging client, say), append a {@link Contender} to CONTENDERS: a name
 * and a `start(urls)` returning `call()`, which makes one call and resolves, once the answer's
 * body has been read, with the index of the backend that answered (each backend's body is its
 * index), or rejects on failure, and `close()`. Nothing else changes: the share to the slow
 * backend and the extra load come from the backends' own counts.
 *
 * Flags: `--write-svg` redraws the charts in docs/images/; `--rounds=N` (default 5);
 * `--scenario=WORD` runs only the scenarios whose chart file name contains WORD.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Agent, BalancedPool, Pool, fetch as undiciFetch } from 'undici';
import type {
  Algorithm,
  BackendPoolOptions,
  BackendPool as BackendPoolType,
  FetchFunction,
} from '../src/index.js';
import type { BalancedDispatcherOptions } from '../src/undici/index.js';
import { loadCompiled } from './compiled.js';
import { fmt, median, percentile, type Section, table } from './harness.js';

// loadwise's rows run the compiled package, as an application does (see bench/compiled.ts).
const {
  loadwise: {
    BackendPool,
    barChart,
    createBalancedFetch,
    LeastConnections,
    PeakEwma,
    PowerOfTwoChoices,
    RoundRobin,
  },
  undici: { BalancedDispatcher },
} = await loadCompiled();

const BACKENDS = 3;
const SERVICE_MS = 4;
const CALLS = 3000;
/** Calls each client makes before it is measured, in the same run (see `warmUp`). */
const WARMUP = 600;
const IN_FLIGHT = 16;
/** The slow phase: calls SLOW_FROM to SLOW_TO - 1 (by the order they are sent). */
const SLOW_FROM = CALLS / 3;
const SLOW_TO = (2 * CALLS) / 3;
const ROUNDS = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 5);
/** `--scenario=stalls` runs only the scenarios whose chart file names contain `stalls`. */
const ONLY = process.argv.find((a) => a.startsWith('--scenario='))?.slice(11);
const wanted = (sc: ScenarioSpec): boolean => ONLY === undefined || sc.file.includes(ONLY);
const IMAGES = fileURLToPath(new URL('../docs/images/', import.meta.url));

/** What the slow backend does during the slow phase, per scenario. */
export interface ScenarioSpec {
  name: string;
  file: string;
  /** One sentence for the report. */
  what: string;
  /** Requests a backend works on at once (0: no limit, no queue). */
  capacity: number;
  /** Backend 0 during the slow phase. */
  slow: { serviceMs: number; capacity: number };
  /**
   * Random stalls on every backend for the whole measured run: each request, on any backend,
   * takes `ms` instead of the service time with probability `share`. @default none
   */
  stall?: { share: number; ms: number };
  /** Whether the rows' bars are checked in this scenario. @default true */
  bars?: boolean;
}

export const SCENARIOS: readonly ScenarioSpec[] = [
  {
    name: 'Slow backend (not queueing)',
    file: 'tail-latency-slow-backend.svg',
    what: `${BACKENDS} backends answer in ${SERVICE_MS} ms whatever their load; backend 0 answers in ${10 * SERVICE_MS} ms during the slow phase`,
    capacity: 0,
    slow: { serviceMs: 10 * SERVICE_MS, capacity: 0 },
  },
  {
    name: 'Lost capacity (queueing)',
    file: 'tail-latency-lost-capacity.svg',
    what: `${BACKENDS} backends serve 4 requests at once in ${SERVICE_MS} ms each and queue the rest; backend 0 keeps 1 worker of 4 during the slow phase`,
    capacity: 4,
    slow: { serviceMs: SERVICE_MS, capacity: 1 },
  },
  {
    name: 'Random stalls (any backend)',
    file: 'tail-latency-random-stalls.svg',
    what: `${BACKENDS} backends answer in ${SERVICE_MS} ms, but 2% of the requests, on any backend and at random, take ${10 * SERVICE_MS} ms (a pause, a slow disk, one expensive query): nothing a pick can steer away from, the case hedging is for. The bars do not apply, and the column "to the slow backend" means nothing here (every backend stalls alike)`,
    capacity: 0,
    slow: { serviceMs: SERVICE_MS, capacity: 0 },
    stall: { share: 0.02, ms: 10 * SERVICE_MS },
    bars: false,
  },
];

/**
 * The backends, as plain Node: per backend a service time and a number of workers (0: every
 * request served at once) with a FIFO queue in front. Commands on stdin: `set i ms capacity`,
 * `slow 0|1` (whether the slow phase is on, for the counts), `stall share ms` (every backend
 * serves that share of requests, drawn at random, in `ms`; `stall 0 0` ends it), `counts`
 * (prints the counts as a line of JSON and resets them), `exit`.
 */
const BACKEND_SCRIPT = `
import { createServer } from 'node:http';
const [n, serviceMs, capacity] = process.argv.slice(1).map(Number);
const service = new Array(n).fill(serviceMs);
// Random stalls: a seeded generator (mulberry32), so every run draws the same sequence.
let stallShare = 0;
let stallMs = 0;
let seed = 1;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const workers = new Array(n).fill(capacity);
let slowPhase = false;
let total = new Array(n).fill(0);
let duringSlow = new Array(n).fill(0);
const servers = [];
const nexts = [];
for (let i = 0; i < n; i++) {
  let active = 0;
  const queue = [];
  const answer = (res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1 });
    res.end(String(i));
  };
  const next = () => {
    while (queue.length > 0 && (workers[i] === 0 || active < workers[i])) {
      const res = queue.shift();
      if (res.destroyed) continue;
      active++;
      const ms = stallShare > 0 && random() < stallShare ? stallMs : service[i];
      setTimeout(() => {
        active--;
        answer(res);
        next();
      }, ms);
    }
  };
  nexts.push(next);
  const server = createServer((req, res) => {
    req.resume();
    total[i]++;
    if (slowPhase) duringSlow[i]++;
    queue.push(res);
    next();
  });
  server.keepAliveTimeout = 60_000;
  servers.push(server);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
}
console.log(JSON.stringify(servers.map((s) => s.address().port)));
let input = '';
process.stdin.on('data', (d) => {
  input += d;
  let k;
  while ((k = input.indexOf('\\n')) >= 0) {
    const [cmd, a, b, c] = input.slice(0, k).split(' ');
    input = input.slice(k + 1);
    if (cmd === 'set') {
      service[Number(a)] = Number(b);
      workers[Number(a)] = Number(c);
      nexts[Number(a)]();
    }
    if (cmd === 'slow') slowPhase = a === '1';
    if (cmd === 'stall') {
      stallShare = Number(a);
      stallMs = Number(b);
      seed = 1;
    }
    if (cmd === 'counts') {
      console.log(JSON.stringify({ total, duringSlow }));
      total = new Array(n).fill(0);
      duringSlow = new Array(n).fill(0);
    }
    if (cmd === 'exit') {
      for (const s of servers) { s.close(); s.closeAllConnections(); }
      process.stdin.destroy();
    }
  }
});
`;

interface Counts {
  total: number[];
  duringSlow: number[];
}

interface Backends {
  urls: string[];
  send(command: string): void;
  counts(): Promise<Counts>;
  close(): Promise<void>;
}

export async function startBackends(capacity: number): Promise<Backends> {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      BACKEND_SCRIPT,
      '--',
      String(BACKENDS),
      String(SERVICE_MS),
      String(capacity),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
  // Lines the child prints, handed to whoever waits for the next one.
  const waiting: ((line: string) => void)[] = [];
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (let k = out.indexOf('\n'); k >= 0; k = out.indexOf('\n')) {
      const line = out.slice(0, k);
      out = out.slice(k + 1);
      waiting.shift()?.(line);
    }
  });
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ports = JSON.parse(
    await Promise.race([
      nextLine(),
      exited.then(() => {
        throw new Error('backends exited early');
      }),
    ]),
  ) as number[];
  const send = (command: string) => child.stdin.write(`${command}\n`);
  return {
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    send,
    counts() {
      const line = nextLine();
      send('counts');
      return line.then((l) => JSON.parse(l) as Counts);
    },
    async close() {
      send('exit');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A client under test: one call at a time through `call`, `close` at the end. */
export interface Client {
  /**
   * Makes one call; resolves once the answer's body is read, with the index of the backend that
   * answered (each backend answers with its index), and rejects on failure.
   */
  call(): Promise<number>;
  close(): Promise<void>;
  /** What the client knows when the slow phase starts, for the report (e.g. its estimates). */
  note?(): string;
}

/** A row of the tables: a name and how to start a client over the backends' URLs. */
export interface Contender {
  name: string;
  /**
   * The bars this row is held to: `'half'` (p99 at most half of round robin's and of
   * BalancedPool's: the latency-aware algorithm alone), `'third'` (at most a third, with hedges
   * adding at most 5% requests: the recommended setting). @default none
   */
  bars?: readonly Bar[];
  start(urls: readonly string[]): Client;
}

type Bar = 'half' | 'third';

/** How a loadwise row is set up. */
interface LoadwiseSetup {
  algorithm: () => Algorithm;
  /** Pool options besides the backends and the algorithm. @default {} */
  pool?: Omit<BackendPoolOptions, 'backends' | 'algorithm'>;
  bars?: readonly Bar[];
}

function loadwisePool(urls: readonly string[], setup: LoadwiseSetup): BackendPoolType {
  return new BackendPool({
    skew: false,
    ...setup.pool,
    backends: [...urls],
    algorithm: setup.algorithm(),
  });
}

/** The pool's latency estimates, slowest-phase backend first, for `note()`. */
function estimates(pool: BackendPoolType): string {
  return pool
    .stats()
    .backends.map((b) => fmt(b.latencyEwmaMs, 0))
    .join(' / ');
}

/**
 * A loadwise pool over one undici `Pool` per backend, the transport of the undici rows:
 * `pool.acquire()` picks, `request()` calls, `lease.release()` reports the outcome (the pool
 * measures the latency from acquire to release).
 */
export function loadwise(name: string, setup: LoadwiseSetup): Contender {
  return {
    name,
    ...(setup.bars === undefined ? {} : { bars: setup.bars }),
    start(urls) {
      const transports = new Map(urls.map((u) => [u, new Pool(u)]));
      const pool = loadwisePool(urls, setup);
      return {
        async call() {
          const lease = pool.acquire();
          let status: number;
          let answered: number;
          try {
            const res = await transports
              .get(lease.backend.url)!
              .request({ path: '/work', method: 'GET' });
            answered = Number(await res.body.text());
            status = res.statusCode;
          } catch (error) {
            lease.release({ ok: false, failure: 'other', error });
            throw error;
          }
          lease.release({ ok: status === 200, status });
          if (status !== 200) throw new Error(`status ${status}`);
          return answered;
        },
        async close() {
          await pool.close();
          await Promise.all([...transports.values()].map((t) => t.close()));
        },
        note: () => estimates(pool),
      };
    },
  };
}

/** The same through `createBalancedFetch` over undici's `fetch` (its own `Agent`), no retries. */
export function loadwiseFetch(name: string, setup: LoadwiseSetup): Contender {
  return {
    name,
    ...(setup.bars === undefined ? {} : { bars: setup.bars }),
    start(urls) {
      const agent = new Agent();
      const viaAgent: FetchFunction = (url, init) =>
        undiciFetch(url, {
          ...(init as object),
          dispatcher: agent,
        }) as unknown as Promise<Response>;
      const pool = loadwisePool(urls, setup);
      const fetch = createBalancedFetch(pool, { fetch: viaAgent, retries: 0 });
      return {
        async call() {
          const res = await fetch('/work');
          const answered = Number(await res.text());
          if (res.status !== 200) throw new Error(`status ${res.status}`);
          return answered;
        },
        async close() {
          await pool.close();
          await agent.close();
        },
        note: () => estimates(pool),
      };
    },
  };
}

/**
 * The product path: undici's `request()` through `BalancedDispatcher` (the shared call loop:
 * leases, latency, the deadline, hedges), no retries.
 */
export function loadwiseDispatcher(
  name: string,
  setup: LoadwiseSetup & { hedge?: BalancedDispatcherOptions['hedge'] },
): Contender {
  return {
    name,
    ...(setup.bars === undefined ? {} : { bars: setup.bars }),
    start(urls) {
      const pool = loadwisePool(urls, setup);
      const dispatcher = new BalancedDispatcher(pool, {
        retries: 0,
        ...(setup.hedge === undefined ? {} : { hedge: setup.hedge }),
      });
      return {
        call: async () => readAnswer(await dispatcher.request({ path: '/work', method: 'GET' })),
        async close() {
          await dispatcher.close();
          await pool.close();
        },
        note: () => {
          const how = dispatcher.explainHedging();
          return how === undefined
            ? estimates(pool)
            : `${estimates(pool)} (hedge delay ${how.delayMs === undefined ? 'none yet' : `${fmt(how.delayMs)} ms`})`;
        },
      };
    },
  };
}

/** Reads an undici `request` answer: the index of the backend; rejects on anything but a 200. */
async function readAnswer(res: Awaited<ReturnType<Pool['request']>>): Promise<number> {
  const answered = Number(await res.body.text());
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  return answered;
}

/**
 * The contenders, in table order. Each runs against the same backends in the same process run.
 * A new row is one more entry: a name and a `start(urls)` returning `{ call, close }`.
 */
export const CONTENDERS: Contender[] = [
  {
    name: 'undici BalancedPool',
    start(urls) {
      const pool = new BalancedPool([...urls]);
      return {
        call: async () => readAnswer(await pool.request({ path: '/work', method: 'GET' })),
        close: () => pool.close(),
      };
    },
  },
  {
    name: 'round robin over undici Pools',
    start(urls) {
      const pools = urls.map((u) => new Pool(u));
      let next = 0;
      return {
        async call() {
          const pool = pools[next]!;
          next = (next + 1) % pools.length;
          return readAnswer(await pool.request({ path: '/work', method: 'GET' }));
        },
        close: async () => {
          await Promise.all(pools.map((p) => p.close()));
        },
      };
    },
  },
  loadwise('loadwise RoundRobin', { algorithm: () => new RoundRobin() }),
  loadwise('loadwise LeastConnections', { algorithm: () => new LeastConnections() }),
  loadwise('loadwise PowerOfTwoChoices', { algorithm: () => new PowerOfTwoChoices() }),
  // Finagle's cost and time-only decay: PeakEwma as it was before `cost: 'relative'` and
  // `latencyDecayCalls`.
  loadwise('loadwise PeakEwma, Finagle cost', {
    algorithm: () => new PeakEwma({ cost: 'finagle' }),
    pool: { latencyDecayCalls: Number.POSITIVE_INFINITY },
  }),
  // The recommended setting (docs/choosing-an-algorithm.md): peak EWMA at its defaults. Without
  // hedges it adds no requests, so it is held to the third bar as well as to the half.
  loadwise('loadwise PeakEwma', { algorithm: () => new PeakEwma(), bars: ['half', 'third'] }),
  loadwiseFetch('loadwise PeakEwma, balanced fetch', { algorithm: () => new PeakEwma() }),
  loadwiseDispatcher('loadwise PeakEwma, BalancedDispatcher', {
    algorithm: () => new PeakEwma(),
    bars: ['half', 'third'],
  }),
  loadwiseDispatcher('loadwise RoundRobin + hedging, BalancedDispatcher', {
    algorithm: () => new RoundRobin(),
    hedge: true,
  }),
  // The recommended setting with hedges after the p95, within a 5% budget.
  loadwiseDispatcher('loadwise PeakEwma + hedging, BalancedDispatcher', {
    algorithm: () => new PeakEwma(),
    hedge: true,
    bars: ['third'],
  }),
];

interface Run {
  latencies: number[];
  /** Latencies of the calls a fast backend (not backend 0) answered: the client's own noise. */
  fastLatencies: number[];
  errors: number;
  counts: Counts;
  /** The client's `note()` when the slow phase started. */
  note: string | undefined;
}

/**
 * WARMUP calls, IN_FLIGHT at a time, all backends fast, not measured: connections are open and
 * the client is past its first calls when the measured run starts, as in a service that has been
 * running for a while.
 */
export async function warmUp(client: Client, backends: Backends): Promise<void> {
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued++ < WARMUP) await client.call().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  await backends.counts();
}

/** CALLS calls, IN_FLIGHT at a time; backend 0 is slow for calls SLOW_FROM to SLOW_TO - 1. */
export async function closedLoop(
  client: Client,
  backends: Backends,
  sc: ScenarioSpec,
): Promise<Run> {
  const latencies: number[] = new Array(CALLS);
  const fastLatencies: number[] = [];
  let issued = 0;
  let errors = 0;
  let note: string | undefined;
  const worker = async (): Promise<void> => {
    while (issued < CALLS) {
      const i = issued++;
      if (i === 0 && sc.stall !== undefined) {
        backends.send(`stall ${sc.stall.share} ${sc.stall.ms}`);
      }
      if (i === SLOW_FROM) {
        note = client.note?.();
        backends.send(`set 0 ${sc.slow.serviceMs} ${sc.slow.capacity}`);
        backends.send('slow 1');
      }
      if (i === SLOW_TO) {
        backends.send(`set 0 ${SERVICE_MS} ${sc.capacity}`);
        backends.send('slow 0');
      }
      const start = performance.now();
      let answered = -1;
      try {
        answered = await client.call();
      } catch {
        errors++;
      }
      latencies[i] = performance.now() - start;
      if (answered > 0) fastLatencies.push(latencies[i]!);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  if (sc.stall !== undefined) backends.send('stall 0 0');
  return { latencies, fastLatencies, errors, counts: await backends.counts(), note };
}

interface Figures {
  name: string;
  bars: readonly Bar[];
  /** Medians of the per-round percentiles. */
  p50: number;
  p99: number;
  p999: number;
  /** Per-round p99s, in round order. */
  p99s: number[];
  /** Median of the per-round p99s of the calls the fast backends answered. */
  fastP99: number;
  /** Requests that reached backend 0 during the slow phase, as a share of all that did then. */
  slowShare: number;
  /** Requests the backends received per call, minus 1. */
  extraLoad: number;
  errors: number;
  notes: string[];
}

/** Whether a row meets `bar` on the medians and in how many rounds, as a line of the report. */
function barLine(f: Figures, bar: Bar, rr: Figures, bp: Figures): string {
  const d = bar === 'half' ? 2 : 3;
  const load = bar === 'third' ? f.extraLoad <= 0.05 : true;
  const met = f.p99 <= rr.p99 / d && f.p99 <= bp.p99 / d && load;
  // Each round runs every contender back to back, so a round's figures compare fairly too.
  const rounds = f.p99s.filter((x, k) => x <= rr.p99s[k]! / d && x <= bp.p99s[k]! / d).length;
  const what =
    bar === 'half'
      ? "p99 at most half of round robin's and of BalancedPool's"
      : `p99 at most a third of round robin's and of BalancedPool's, hedges adding at most 5% requests (${pct(f.extraLoad)})`;
  return `Bar (${f.name}: ${what}): ${met ? 'met' : '**not met**'} on the medians (${fmt(f.p99 / rr.p99, 2)}x and ${fmt(f.p99 / bp.p99, 2)}x), in ${rounds} of ${f.p99s.length} rounds.`;
}

async function runScenario(sc: ScenarioSpec): Promise<Figures[]> {
  const backends = await startBackends(sc.capacity);
  const runs = new Map<string, Run[]>(CONTENDERS.map((c) => [c.name, []]));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < CONTENDERS.length; k++) {
        const c = CONTENDERS[(k + round) % CONTENDERS.length]!;
        const client = c.start(backends.urls);
        await warmUp(client, backends);
        runs.get(c.name)!.push(await closedLoop(client, backends, sc));
        await client.close();
        // Let queues drain before the next contender.
        await new Promise((r) => setTimeout(r, 100));
        await backends.counts();
      }
    }
  } finally {
    await backends.close();
  }
  return CONTENDERS.map((c) => {
    const rs = runs.get(c.name)!;
    const sum = (f: (r: Run) => number) => rs.reduce((s, r) => s + f(r), 0);
    return {
      name: c.name,
      bars: c.bars ?? [],
      p50: median(rs.map((r) => percentile(r.latencies, 50))),
      p99: median(rs.map((r) => percentile(r.latencies, 99))),
      p999: median(rs.map((r) => percentile(r.latencies, 99.9))),
      p99s: rs.map((r) => percentile(r.latencies, 99)),
      fastP99: median(rs.map((r) => percentile(r.fastLatencies, 99))),
      slowShare:
        sum((r) => r.counts.duringSlow[0]!) /
        sum((r) => r.counts.duringSlow.reduce((a, b) => a + b, 0)),
      extraLoad: sum((r) => r.counts.total.reduce((a, b) => a + b, 0)) / (rs.length * CALLS) - 1,
      errors: sum((r) => r.errors),
      notes: rs.flatMap((r) => (r.note === undefined ? [] : [r.note])),
    };
  });
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export default async function tailLatency(): Promise<Section> {
  const results: { sc: ScenarioSpec; figures: Figures[] }[] = [];
  for (const sc of SCENARIOS.filter(wanted)) results.push({ sc, figures: await runScenario(sc) });
  const body: string[] = [
    `Closed loop over real loopback sockets: each contender makes ${WARMUP} calls with every backend fast (not measured), then ${CALLS} calls, ${IN_FLIGHT} in flight, no retries; backend 0 is slow for calls ${SLOW_FROM}-${SLOW_TO - 1}. The backends run in a child process and count the requests they receive. ${ROUNDS} rounds, the contenders in a rotating order; p50, p99 and p99.9 are medians of the per-round figures, next to the per-round p99s; "fast p99" is the p99 of the calls the other backends answered (the client's own noise). loadwise rows pick with \`pool.acquire()\` and call with undici's \`Pool.request()\`, the transport of the undici rows, except the balanced-fetch row (\`createBalancedFetch\` over undici's \`fetch\`).`,
  ];
  for (const { sc, figures } of results) {
    const rr = figures.find((f) => f.name === 'round robin over undici Pools')!;
    const bp = figures.find((f) => f.name === 'undici BalancedPool')!;
    body.push(
      '',
      `**${sc.name}**: ${sc.what}.`,
      '',
      table(
        [
          'contender',
          'p50 ms',
          'p99 ms',
          'p99.9 ms',
          'per-round p99 ms',
          'fast p99 ms',
          'p99 vs round robin',
          'p99 vs BalancedPool',
          'to the slow backend while slow',
          'extra load',
          'errors',
        ],
        figures.map((f) => [
          f.name,
          fmt(f.p50),
          fmt(f.p99),
          fmt(f.p999),
          f.p99s.map((x) => fmt(x)).join(', '),
          fmt(f.fastP99),
          `${fmt(f.p99 / rr.p99, 2)}x`,
          `${fmt(f.p99 / bp.p99, 2)}x`,
          pct(f.slowShare),
          pct(f.extraLoad),
          f.errors,
        ]),
      ),
    );
    if (sc.bars !== false) {
      for (const f of figures) {
        for (const bar of f.bars) body.push('', barLine(f, bar, rr, bp));
      }
    }
    const noted = figures.filter((f) => f.notes.length > 0);
    body.push(
      '',
      `Latency estimates of the pool (peak EWMA, ms; backend 0 first) when the slow phase starts, per round: ${noted.map((f) => `${f.name}: ${f.notes.join(', ')}`).join('; ')}.`,
    );
    if (process.argv.includes('--write-svg')) {
      writeFileSync(`${IMAGES}${sc.file}`, chart(sc, figures));
    }
  }
  return { title: 'Tail latency', body: body.join('\n') };
}

function chart(sc: ScenarioSpec, figures: readonly Figures[]): string {
  return barChart({
    title: `${sc.name}: latency per contender`,
    subtitle: `${CALLS} calls, ${IN_FLIGHT} in flight, loopback; medians of ${ROUNDS} rounds`,
    categories: figures.map((f) => chartLabel(f.name)),
    series: [
      { name: 'p50', values: figures.map((f) => f.p50) },
      { name: 'p99', values: figures.map((f) => f.p99) },
      { name: 'p99.9', values: figures.map((f) => f.p999) },
    ],
    yLabel: 'ms',
    width: 1040,
    height: 420,
  });
}

/** A contender's name cut where the chart may wrap it (after '-'), each line short enough. */
function chartLabel(name: string): string {
  if (name === 'round robin over undici Pools') return 'undici Pools-round robin';
  const [head, rest] = name.split(', ');
  const label = head!.replace(/^(loadwise|undici) /, '$1-');
  return rest === undefined ? label : `${label}-(${rest})`;
}
