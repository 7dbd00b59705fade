/**
 * Tail latency on real sockets: three loopback backends, one of which turns 10× slower for the
 * middle 60% of each run, under an open-loop workload. For round robin, least connections, power
 * of two choices and peak EWMA (through the balanced fetch) and for undici 7's `BalancedPool` on
 * the same workload: p50, p99, the share of calls answered within a deadline, and the share of
 * slow-phase calls that went to the slow backend.
 *
 * - The backends run in a child process (plain Node, started here), so their timers do not share
 *   an event loop with the client. Each serves a request in `SERVICE_MS` (`SLOW_FACTOR` times that
 *   while slow) and works on at most `capacity` requests at once; more wait in its queue, as on a
 *   real server with a worker pool, so a slow backend also serves 10× fewer requests per second.
 *   Two scenarios: the slow backend still keeps up with its third of the load, or it does not.
 * - Open loop: calls are sent on a fixed schedule (Poisson arrivals at RATE per second, seeded,
 *   the same for every candidate) whatever happened to the earlier ones, and a call's latency
 *   counts from its scheduled time (no coordinated omission).
 * - The balanced fetch runs over undici 7's `fetch` with its own `Agent`, the same undici as the
 *   `BalancedPool`, so the transport is the same library and version for every candidate.
 * - ROUNDS rounds, each running every candidate once in a rotating order; p50 and p99 are the
 *   medians of the per-round figures, shown with the range of the per-round p99s.
 *
 * `--write-svg` writes the chart to docs/images/tail-latency.svg.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Agent, BalancedPool, fetch as undiciFetch } from 'undici';
import {
  type Algorithm,
  BackendPool,
  createBalancedFetch,
  type FetchFunction,
  LeastConnections,
  PeakEwma,
  PowerOfTwoChoices,
  RoundRobin,
} from '../src/index.js';
import { seededRandom } from '../src/testing/index.js';
import { fmt, median, percentile, type Section, table } from './harness.js';

const BACKENDS = 3;
const SERVICE_MS = 5;
const SLOW_FACTOR = 10;
/** Calls per second, and calls per run. */
const RATE = 320;
const CALLS = 320;
/**
 * Two settings of the backends' capacity: one where the slow backend still keeps up with a
 * third of the load (only its latency grows), one where it cannot (its queue grows).
 */
const SCENARIOS = [
  { name: 'Slow backend keeps up', capacity: 8 },
  { name: 'Slow backend overloaded', capacity: 3 },
] as const;
/** The slow phase, as shares of the run. */
const SLOW_FROM = 0.2;
const SLOW_TO = 0.8;
/** A call counts as a success when it got a 200 within this, from its scheduled time. */
const DEADLINE_MS = 100;
const ROUNDS = 3;
const SVG_PATH = fileURLToPath(new URL('../docs/images/tail-latency.svg', import.meta.url));

/** The backends, as plain Node: per backend a FIFO queue in front of `capacity` workers. */
const BACKEND_SCRIPT = `
import { createServer } from 'node:http';
const [n, serviceMs, capacity] = process.argv.slice(1).map(Number);
const factor = new Array(n).fill(1);
const servers = [];
for (let i = 0; i < n; i++) {
  let active = 0;
  const queue = [];
  const next = () => {
    while (active < capacity && queue.length > 0) {
      const res = queue.shift();
      if (res.destroyed) continue;
      active++;
      setTimeout(() => {
        active--;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1 });
        res.end(String(i));
        next();
      }, serviceMs * factor[i]);
    }
  };
  const server = createServer((req, res) => {
    req.resume();
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
    const [cmd, a, b] = input.slice(0, k).split(' ');
    input = input.slice(k + 1);
    if (cmd === 'factor') factor[Number(a)] = Number(b);
    if (cmd === 'exit') {
      for (const s of servers) { s.close(); s.closeAllConnections(); }
      process.stdin.destroy();
    }
  }
});
`;

interface Backends {
  urls: string[];
  setFactor(index: number, factor: number): void;
  close(): Promise<void>;
}

async function startBackends(capacity: number): Promise<Backends> {
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
  const ports = await new Promise<number[]>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.indexOf('\n');
      if (line >= 0) resolve(JSON.parse(out.slice(0, line)) as number[]);
    });
    child.once('exit', (code) => reject(new Error(`backends exited early (${code})`)));
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    urls: ports.map((p) => `http://127.0.0.1:${p}`),
    setFactor: (index, factor) => child.stdin.write(`factor ${index} ${factor}\n`),
    async close() {
      child.stdin.write('exit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** One call: resolves with the index of the backend that answered, or -1 on failure. */
type Send = () => Promise<number>;

interface Run {
  latencies: number[];
  /** Calls that got a 200 within DEADLINE_MS. */
  inDeadline: number;
  /** Calls scheduled in the slow phase, and how many of them the slow backend answered. */
  slowPhaseCalls: number;
  slowPhaseToSlow: number;
}

/**
 * Send times of the calls, in ms from the start: a Poisson process at RATE per second (seeded,
 * the same for every candidate), as open-loop load generators model independent clients.
 */
const SCHEDULE: readonly number[] = (() => {
  const random = seededRandom(2024);
  const times: number[] = [];
  let t = 0;
  for (let i = 0; i < CALLS; i++) {
    times.push(t);
    t += (-Math.log(1 - random()) * 1000) / RATE;
  }
  return times;
})();

/** Sends CALLS calls on SCHEDULE; backend 0 is slow for the middle of the run. */
async function openLoop(send: Send, backends: Backends): Promise<Run> {
  const start = performance.now() + 20;
  const slowFrom = Math.floor(CALLS * SLOW_FROM);
  const slowTo = Math.floor(CALLS * SLOW_TO);
  const latencies: number[] = new Array(CALLS);
  let inDeadline = 0;
  let slowPhaseToSlow = 0;
  let issued = 0;
  let done = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (issued < CALLS && start + SCHEDULE[issued]! <= now) {
        const i = issued++;
        if (i === slowFrom) backends.setFactor(0, SLOW_FACTOR);
        if (i === slowTo) backends.setFactor(0, 1);
        const scheduled = start + SCHEDULE[i]!;
        send().then(
          (backend) => {
            const ms = performance.now() - scheduled;
            latencies[i] = ms;
            if (backend >= 0 && ms <= DEADLINE_MS) inDeadline++;
            if (backend === 0 && i >= slowFrom && i < slowTo) slowPhaseToSlow++;
            if (++done === CALLS) resolve();
          },
          () => {
            latencies[i] = performance.now() - scheduled;
            if (++done === CALLS) resolve();
          },
        );
      }
      if (issued < CALLS) {
        setTimeout(tick, Math.max(0, start + SCHEDULE[issued]! - performance.now()));
      }
    };
    tick();
  });
  backends.setFactor(0, 1);
  return { latencies, inDeadline, slowPhaseCalls: slowTo - slowFrom, slowPhaseToSlow };
}

interface Candidate {
  name: string;
  make(urls: string[]): { send: Send; close(): Promise<void> };
}

function balanced(name: string, algorithm: () => Algorithm): Candidate {
  return {
    name,
    make(urls) {
      const agent = new Agent();
      const viaAgent: FetchFunction = (url, init) =>
        undiciFetch(url, {
          ...(init as object),
          dispatcher: agent,
        }) as unknown as Promise<Response>;
      const pool = new BackendPool({ backends: urls, algorithm: algorithm(), skew: false });
      const fetch = createBalancedFetch(pool, { fetch: viaAgent });
      return {
        send: async () => {
          const res = await fetch('/work');
          const body = await res.text();
          return res.status === 200 ? Number(body) : -1;
        },
        async close() {
          await pool.close();
          await agent.close();
        },
      };
    },
  };
}

const CANDIDATES: Candidate[] = [
  balanced('round robin', () => new RoundRobin()),
  balanced('least connections', () => new LeastConnections()),
  balanced('power of two choices', () => new PowerOfTwoChoices()),
  balanced('peak EWMA', () => new PeakEwma()),
  {
    name: 'undici BalancedPool',
    make(urls) {
      const pool = new BalancedPool(urls);
      return {
        send: async () => {
          const res = await pool.request({ path: '/work', method: 'GET' });
          const body = await res.body.text();
          return res.statusCode === 200 ? Number(body) : -1;
        },
        close: () => pool.close(),
      };
    },
  },
];

interface Figures {
  name: string;
  /** Medians of the per-round percentiles. */
  p50: number;
  p99: number;
  /** Lowest and highest per-round p99. */
  p99Low: number;
  p99High: number;
  success: number;
  slowShare: number;
}

interface Scenario {
  name: string;
  /** Requests a backend works on at once. */
  capacity: number;
  figures: Figures[];
}

/** Runs every candidate ROUNDS times against backends of the given capacity. */
async function runScenario(capacity: number): Promise<Figures[]> {
  const backends = await startBackends(capacity);
  const runs = new Map<string, Run[]>(CANDIDATES.map((c) => [c.name, []]));
  try {
    // A short warm-up of every client: connections, JIT.
    for (const c of CANDIDATES) {
      const client = c.make(backends.urls);
      await Promise.all(Array.from({ length: 30 }, () => client.send()));
      await client.close();
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < CANDIDATES.length; k++) {
        const c = CANDIDATES[(k + round) % CANDIDATES.length]!;
        const client = c.make(backends.urls);
        runs.get(c.name)!.push(await openLoop(client.send, backends));
        await client.close();
        // Let the slow backend's queue drain before the next candidate.
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await backends.close();
  }
  return CANDIDATES.map((c) => {
    const rs = runs.get(c.name)!;
    const perRound = rs.map((r) => percentile(r.latencies, 99));
    return {
      name: c.name,
      p50: median(rs.map((r) => percentile(r.latencies, 50))),
      p99: median(perRound),
      p99Low: Math.min(...perRound),
      p99High: Math.max(...perRound),
      success: rs.reduce((s, r) => s + r.inDeadline, 0) / (rs.length * CALLS),
      slowShare:
        rs.reduce((s, r) => s + r.slowPhaseToSlow, 0) /
        rs.reduce((s, r) => s + r.slowPhaseCalls, 0),
    };
  });
}

export default async function tailLatency(): Promise<Section> {
  const scenarios: Scenario[] = [];
  for (const { name, capacity } of SCENARIOS) {
    scenarios.push({ name, capacity, figures: await runScenario(capacity) });
  }
  if (process.argv.includes('--write-svg')) writeFileSync(SVG_PATH, svg(scenarios));

  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const slowCalls = `${Math.floor(CALLS * SLOW_FROM)}-${Math.floor(CALLS * SLOW_TO) - 1}`;
  const body: string[] = [
    `${BACKENDS} loopback backends in a child process, ${SERVICE_MS} ms per request; backend 0 is ${SLOW_FACTOR}x slower (${SERVICE_MS * SLOW_FACTOR} ms) for calls ${slowCalls} of each run. Open loop: ${CALLS} calls per run, Poisson arrivals at ${RATE}/s (seeded, the same schedule for every client), latency from the scheduled send time. ${ROUNDS} rounds in rotating order; p50 and p99 are medians of the per-round figures, next to the range of the per-round p99s; success and the slow share are pooled over the rounds. Balanced fetch over undici 7's \`fetch\` (own \`Agent\`); \`BalancedPool\` with \`pool.request()\`.`,
  ];
  for (const sc of scenarios) {
    const rr = sc.figures.find((f) => f.name === 'round robin')!;
    const bp = sc.figures.find((f) => f.name === 'undici BalancedPool')!;
    const ewma = sc.figures.find((f) => f.name === 'peak EWMA')!;
    const slowRps = (1000 * sc.capacity) / (SERVICE_MS * SLOW_FACTOR);
    const met = ewma.p99 <= rr.p99 / 3 && ewma.p99 <= bp.p99 / 3;
    body.push(
      '',
      `**${sc.name}**: at most ${sc.capacity} requests at once per backend, so the slow one serves up to ${fmt(slowRps, 0)}/s where round robin sends it ${fmt(RATE / BACKENDS, 0)}/s.`,
      '',
      table(
        [
          'client',
          'p50 ms',
          'p99 ms',
          'per-round p99 ms',
          'p99 vs round robin',
          'p99 vs BalancedPool',
          `ok within ${DEADLINE_MS} ms`,
          'slow-phase calls to the slow backend',
        ],
        sc.figures.map((f) => [
          f.name,
          fmt(f.p50),
          fmt(f.p99),
          `${fmt(f.p99Low)}-${fmt(f.p99High)}`,
          `${fmt(f.p99 / rr.p99, 2)}x`,
          `${fmt(f.p99 / bp.p99, 2)}x`,
          pct(f.success),
          pct(f.slowShare),
        ]),
      ),
      '',
      `Target (peak EWMA's p99 at most a third of round robin's and of BalancedPool's): ${met ? 'met' : '**not met**'} (${fmt(ewma.p99 / rr.p99, 2)}x and ${fmt(ewma.p99 / bp.p99, 2)}x).`,
    );
  }
  return { title: 'Tail latency', body: body.join('\n') };
}

/** Grouped bars of p50 and p99 per client, one panel per scenario, as a small hand-made SVG. */
function svg(scenarios: readonly Scenario[]): string {
  const width = 720;
  const panelH = 260;
  const head = 44;
  const height = head + panelH * scenarios.length;
  const left = 56;
  const right = 16;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">Latency with one of ${BACKENDS} backends ${SLOW_FACTOR}x slower for 60% of the run (open loop, ${RATE} calls/s)</text>`,
    `<rect x="${left}" y="26" width="12" height="12" fill="#9ecae1"/><text x="${left + 16}" y="36">p50</text>`,
    `<rect x="${left + 60}" y="26" width="12" height="12" fill="#08519c"/><text x="${left + 76}" y="36">p99</text>`,
    `<text x="${left + 130}" y="36" fill="#555">ok: share of calls answered within ${DEADLINE_MS} ms</text>`,
  ];
  scenarios.forEach((sc, k) => {
    const top = head + k * panelH + 28;
    const plotH = panelH - 28 - 52;
    const plotW = width - left - right;
    const maxValue = Math.max(...sc.figures.map((f) => f.p99));
    const step = niceStep(maxValue / 4);
    const yMax = Math.ceil(maxValue / step) * step;
    const y = (v: number) => top + plotH - (v / yMax) * plotH;
    const group = plotW / sc.figures.length;
    const barW = Math.min(36, group / 3);
    parts.push(
      `<text x="${left}" y="${top - 10}" font-weight="bold">${esc(sc.name)} (at most ${sc.capacity} requests at once per backend)</text>`,
    );
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      parts.push(
        `<line x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e0e0e0"/>`,
        `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${fmt(v, 0)}</text>`,
      );
    }
    parts.push(
      `<text x="14" y="${top + plotH / 2}" transform="rotate(-90 14 ${top + plotH / 2})" text-anchor="middle">ms</text>`,
      `<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#555"/>`,
      `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${top + plotH}" stroke="#555"/>`,
    );
    sc.figures.forEach((f, i) => {
      const cx = left + group * (i + 0.5);
      const bars: [number, string][] = [
        [f.p50, '#9ecae1'],
        [f.p99, '#08519c'],
      ];
      bars.forEach(([v, color], j) => {
        const x = cx - barW + j * barW;
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${color}"/>`,
          `<text x="${(x + (barW - 2) / 2).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" text-anchor="middle" font-size="11">${fmt(v)}</text>`,
        );
      });
      parts.push(
        `<text x="${cx.toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle">${esc(f.name)}</text>`,
        `<text x="${cx.toFixed(1)}" y="${top + plotH + 31}" text-anchor="middle" font-size="11" fill="#555">${(100 * f.success).toFixed(1)}% ok</text>`,
      );
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}
