/**
 * `npm run demo`: local backends with different characters, a stream of calls through the
 * balanced fetch, and a live view of what the balancer does about them.
 *
 *   npm run demo -- --help
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseArgs } from 'node:util';
import {
  type Algorithm,
  BackendPool,
  createBalancedFetch,
  HealthChecker,
  LeastConnections,
  OutlierDetector,
  PeakEwma,
  PowerOfTwoChoices,
  RandomPick,
  RoundRobin,
  WeightedRoundRobin,
} from '../src/index.js';

const ALGORITHMS: Record<string, () => Algorithm> = {
  'peak-ewma': () => new PeakEwma(),
  p2c: () => new PowerOfTwoChoices(),
  'least-connections': () => new LeastConnections(),
  'round-robin': () => new RoundRobin(),
  'weighted-round-robin': () => new WeightedRoundRobin(),
  random: () => new RandomPick(),
};

const SCENARIOS: Record<string, string> = {
  mixed: 'fast, slow, flaky and one backend that dies and comes back',
  outage:
    'every readiness probe fails at once (a shared database is down): panic mode keeps traffic flowing',
  slowdown: 'five equal backends; one turns 10x slower for the middle half of the run',
  deploy:
    'a rolling deployment: each backend is drained, replaced, and the new one ramps up in slow start',
};

const HELP = `loadwise demo: watch a client-side load balancer at work.

Usage: npm run demo -- [options]

Options:
  -s, --scenario NAME    ${Object.keys(SCENARIOS).join(' | ')} (default: mixed)
  -a, --algorithm NAME   ${Object.keys(ALGORITHMS).join(' | ')} (default: peak-ewma)
  -n, --calls N          number of calls to send (default: 3000)
  -r, --rate N           calls started per second (default: 200)
      --plain            print snapshots instead of redrawing the screen
  -h, --help             show this help

Scenarios:
${Object.entries(SCENARIOS)
  .map(([k, v]) => `  ${k.padEnd(10)} ${v}`)
  .join('\n')}

Try: npm run demo -- -s slowdown -a round-robin, then -a peak-ewma, and compare the p99.`;

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', short: 's', default: 'mixed' },
    algorithm: { type: 'string', short: 'a', default: 'peak-ewma' },
    calls: { type: 'string', short: 'n', default: '3000' },
    rate: { type: 'string', short: 'r', default: '200' },
    plain: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const fail = (message: string): never => {
  console.error(`${message}\n\n${HELP}`);
  process.exit(2);
};
const scenario = values.scenario;
const makeAlgorithm =
  ALGORITHMS[values.algorithm] ?? fail(`Unknown algorithm "${values.algorithm}".`);
if (!(scenario in SCENARIOS)) fail(`Unknown scenario "${scenario}".`);
const totalCalls = Number(values.calls);
const rate = Number(values.rate);
if (!Number.isInteger(totalCalls) || totalCalls < 1 || totalCalls > 100_000)
  fail('--calls must be an integer from 1 to 100000.');
if (!Number.isFinite(rate) || rate < 1 || rate > 5000)
  fail('--rate must be a number from 1 to 5000.');
const runMs = (totalCalls / rate) * 1000;
const live = process.stdout.isTTY === true && !values.plain;

// ------------------------------------------------------------------ backends

type Behaviour = (req: IncomingMessage, res: ServerResponse) => void;

class DemoBackend {
  server: Server | undefined;
  port = 0;
  alive = false;
  ready = true;
  readonly sockets = new Set<Socket>();
  constructor(
    readonly name: string,
    readonly character: string,
    public behaviour: Behaviour,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      if (req.url === '/health/ready') {
        res.writeHead(this.ready ? 200 : 503).end(this.ready ? 'ready' : 'database unreachable');
        return;
      }
      this.behaviour(req, res);
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.alive = true;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.alive = false;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}

const after = (ms: number, res: ServerResponse, body = 'ok') => {
  const t = setTimeout(() => res.writeHead(200).end(body), ms);
  res.on('close', () => clearTimeout(t));
};
const jittered = (ms: number) => ms * (0.7 + Math.random() * 0.6);

function backendsFor(name: string): DemoBackend[] {
  switch (name) {
    case 'mixed':
      return [
        new DemoBackend('fast', '~5 ms', (_q, r) => after(jittered(5), r)),
        new DemoBackend('slow', '~80 ms', (_q, r) => after(jittered(80), r)),
        new DemoBackend('flaky', '25% 503s, some resets', (req, res) => {
          const x = Math.random();
          if (x < 0.25) res.writeHead(503).end('overloaded');
          else if (x < 0.3) req.socket.destroy();
          else after(jittered(10), res);
        }),
        new DemoBackend('phoenix', '~8 ms; dies, comes back', (_q, r) => after(jittered(8), r)),
      ];
    case 'outage':
      return ['a', 'b', 'c'].map(
        (n) => new DemoBackend(n, '~10 ms, db-backed readiness', (_q, r) => after(jittered(10), r)),
      );
    case 'slowdown':
      return ['a', 'b', 'c', 'd', 'e'].map(
        (n) => new DemoBackend(n, '~10 ms', (_q, r) => after(jittered(10), r)),
      );
    default:
      return ['a', 'b', 'c'].map(
        (n) => new DemoBackend(n, '~10 ms', (_q, r) => after(jittered(10), r)),
      );
  }
}

// ------------------------------------------------------------------ the balancer

const backends = backendsFor(scenario);
await Promise.all(backends.map((b) => b.start()));
const nameOf = new Map<string, DemoBackend>();
const idOf = (b: DemoBackend) => `127.0.0.1:${b.port}`;
for (const b of backends) nameOf.set(idOf(b), b);

const pool = new BackendPool({
  name: 'demo',
  backends: backends.map((b) => b.url),
  algorithm: makeAlgorithm(),
  slowStartMs: 3000,
  skew: { factor: 2, windowMs: 2000, minRequests: 100 },
});
const checker = new HealthChecker(pool, {
  type: 'http',
  path: '/health/ready',
  intervalMs: 500,
  timeoutMs: 250,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
}).start();
const detector = new OutlierDetector(pool, {
  consecutiveFailures: 5,
  baseEjectionMs: 3000,
  maxEjectionPercent: 50,
});
const fetch = createBalancedFetch(pool, {
  retries: 2,
  timeoutMs: 1000,
  backoffBaseMs: 10,
  backoffMaxMs: 50,
});

// ------------------------------------------------------------------ what we record

interface PerBackend {
  calls: number;
  errors: number;
  latencies: number[];
}
const per = new Map<string, PerBackend>();
const stat = (id: string): PerBackend => {
  let s = per.get(id);
  if (!s) {
    s = { calls: 0, errors: 0, latencies: [] };
    per.set(id, s);
  }
  return s;
};
const started = performance.now();
const since = () => `${((performance.now() - started) / 1000).toFixed(1).padStart(5)}s`;
const label = (id: string) => nameOf.get(id)?.name ?? id;
const events: string[] = [];
const log = (line: string) => {
  events.push(`${since()}  ${line}`);
  if (!live) console.log(`${since()}  ${line}`);
};

pool.on('release', ({ backend, outcome, latencyMs }) => {
  const s = stat(backend.id);
  s.calls++;
  if (!outcome.ok) s.errors++;
  s.latencies.push(latencyMs);
});
pool.on('state', ({ backend, from, to, reason }) =>
  log(`${label(backend.id)}: ${from} → ${to} (${reason})`),
);
pool.on('panic', ({ active, healthy, total }) =>
  log(
    active
      ? `PANIC: only ${healthy}/${total} healthy — routing across all backends rather than to nothing`
      : `panic over: ${healthy}/${total} healthy`,
  ),
);
pool.on('skew', ({ backend, share, expectedShare }) =>
  log(
    `skew: ${label(backend.id)} took ${(share * 100).toFixed(0)}% of recent calls (fair share ${(expectedShare * 100).toFixed(0)}%)`,
  ),
);
pool.on('drained', ({ backend, completed, remaining }) =>
  log(
    `${label(backend.id)} drained${completed ? ': every call finished' : `: ${remaining} still running at the deadline`}`,
  ),
);
checker.on('all-unhealthy', ({ message }) => log(`ALL UNHEALTHY: ${message}`));
detector.on('eject', ({ backend, durationMs, detail }) =>
  log(`${label(backend.id)} ejected for ${durationMs} ms: ${detail}`),
);
let retries = 0;
fetch.events.on('retry', () => {
  retries++;
});

// ------------------------------------------------------------------ the scenario's timeline

const timers: NodeJS.Timeout[] = [];
const at = (fraction: number, fn: () => unknown) => {
  timers.push(
    setTimeout(() => {
      Promise.resolve(fn()).catch((e: unknown) => log(`scenario step failed: ${String(e)}`));
    }, runMs * fraction),
  );
};
let generation = 0;
if (scenario === 'mixed') {
  const phoenix = backends[3]!;
  at(0.3, async () => {
    log('phoenix crashes (its port now refuses connections)');
    await phoenix.stop();
  });
  at(0.6, async () => {
    await phoenix.start();
    log('phoenix is back up');
  });
} else if (scenario === 'outage') {
  at(0.25, () => {
    log('the shared database goes down: every readiness probe now fails');
    for (const b of backends) b.ready = false;
  });
  at(0.7, () => {
    log('the database is back');
    for (const b of backends) b.ready = true;
  });
} else if (scenario === 'slowdown') {
  const victim = backends[2]!;
  at(0.25, () => {
    log(`${victim.name} turns 10x slower`);
    victim.behaviour = (_q, r) => after(jittered(100), r);
  });
  at(0.75, () => {
    log(`${victim.name} is fast again`);
    victim.behaviour = (_q, r) => after(jittered(10), r);
  });
} else if (scenario === 'deploy') {
  backends.forEach((old, i) => {
    at(0.15 + i * 0.25, async () => {
      log(`deploying ${old.name}: draining it`);
      await pool.remove(idOf(old), { graceMs: 2000 });
      await old.stop();
      const fresh = new DemoBackend(
        `${old.name}.v${++generation + 1}`,
        '~10 ms, new version',
        old.behaviour,
      );
      await fresh.start();
      backends.push(fresh);
      nameOf.set(idOf(fresh), fresh);
      pool.add(fresh.url);
      log(`${fresh.name} joined; slow start ramps its weight over 3 s`);
    });
  });
}

// ------------------------------------------------------------------ the view

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const ms = (x: number) => (Number.isNaN(x) ? '-' : `${x.toFixed(0)} ms`);
let sent = 0;
let ok = 0;
let failed = 0;
let bad = 0;

function table(): string {
  const total = [...per.values()].reduce((a, s) => a + s.calls, 0) || 1;
  const rows = pool.backends().map((b) => {
    const s = stat(b.id);
    const name = label(b.id);
    return [
      name.padEnd(12),
      (nameOf.get(b.id)?.character ?? '').padEnd(24),
      b.state.padEnd(9),
      String(b.inFlight).padStart(4),
      `${((s.calls / total) * 100).toFixed(1)}%`.padStart(6),
      String(s.errors).padStart(6),
      ms(pct(s.latencies, 50)).padStart(7),
      ms(pct(s.latencies, 99)).padStart(7),
      b.effectiveWeight < b.weight ? ` w=${b.effectiveWeight.toFixed(2)}` : '',
    ].join('  ');
  });
  const header = [
    'backend'.padEnd(12),
    'character'.padEnd(24),
    'state'.padEnd(9),
    'infl',
    ' share',
    'errors',
    '    p50',
    '    p99',
  ].join('  ');
  return [header, ...rows].join('\n');
}

function frame(): string {
  return [
    `loadwise demo — scenario ${scenario}, algorithm ${values.algorithm}, ${since()} of ~${(runMs / 1000).toFixed(0)}s${pool.panic ? '   [PANIC MODE]' : ''}`,
    `calls: ${sent}/${totalCalls} sent, ${ok} ok, ${bad} with 5xx, ${failed} failed, ${retries} retries`,
    '',
    table(),
    '',
    'events:',
    ...events.slice(-10).map((e) => `  ${e}`),
  ].join('\n');
}

const render = live
  ? setInterval(() => process.stdout.write(`\x1b[H\x1b[J${frame()}\n`), 200)
  : setInterval(() => console.log(`\n${table()}\n`), Math.max(1000, runMs / 4));
if (live) process.stdout.write('\x1b[2J');

// ------------------------------------------------------------------ the load

const calls: Promise<void>[] = [];
const latencies: number[] = [];
await new Promise<void>((resolve) => {
  const tick = 10;
  const perTick = (rate * tick) / 1000;
  let budget = 0;
  const loop = setInterval(() => {
    budget += perTick;
    while (budget >= 1 && sent < totalCalls) {
      budget--;
      const i = sent++;
      const t0 = performance.now();
      calls.push(
        fetch(`/api/items/${i}`)
          .then(async (res) => {
            await res.arrayBuffer();
            if (res.ok) ok++;
            else bad++;
            latencies.push(performance.now() - t0);
          })
          .catch(() => {
            failed++;
          }),
      );
    }
    if (sent >= totalCalls) {
      clearInterval(loop);
      resolve();
    }
  }, tick);
});
await Promise.all(calls);

// ------------------------------------------------------------------ wrap up

for (const t of timers) clearTimeout(t);
clearInterval(render);
if (live) process.stdout.write(`\x1b[H\x1b[J${frame()}\n`);
await checker.close();
detector.close();
await pool.close();
await Promise.all(backends.map((b) => b.stop()));

const success = (ok / totalCalls) * 100;
console.log(`
Summary — ${totalCalls} calls with ${values.algorithm} in ${since().trim()}
  succeeded: ${ok} (${success.toFixed(2)}%), answered 5xx: ${bad}, failed: ${failed}, retries: ${retries}
  latency seen by callers: p50 ${ms(pct(latencies, 50))}, p99 ${ms(pct(latencies, 99))}
  in flight after the run: ${pool.backends().reduce((a, b) => a + b.inFlight, 0)}

${table()}

What happened: ${
  scenario === 'mixed'
    ? 'the balancer sent fewer calls to the slow backend, ejected the flaky one whenever it failed in a row, retried what failed on another backend, took the crashed backend out and ramped it back in slowly when it returned.'
    : scenario === 'outage'
      ? 'every readiness probe failed at once; rather than route to nothing, the pool entered panic mode and kept sending calls to backends that could still serve them, then left panic when the probes passed again.'
      : scenario === 'slowdown'
        ? 'one backend turned slow; a latency-aware algorithm (peak-ewma) moves traffic away at once, round robin keeps sending it a fair share. Compare the p99 with -a round-robin.'
        : 'each backend was drained (no new calls, running calls finished) before it was replaced; new backends ramped up in slow start.'
}`);
