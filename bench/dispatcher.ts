/**
 * The balanced undici dispatcher against undici's own `BalancedPool`, on the same three loopback
 * backends, at 1, 16 and 64 calls in flight: `dispatcher.request()` through each.
 *
 * The backends run in a child process, so `process.cpuUsage()` here measures the client alone
 * (the cost of a call through each dispatcher, not the servers'). Every configuration runs once
 * per round, in a rotating order; figures are medians over the rounds, and the CPU ratio is the
 * median of per-round ratios to `BalancedPool` (on a shared machine wall time swings with the
 * other processes' load; CPU time spent on the work itself much less).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { BalancedPool, type Dispatcher } from 'undici';
import { BackendPool, PowerOfTwoChoices, RoundRobin } from '../src/index.js';
import { BalancedDispatcher } from '../src/undici/index.js';
import { fmt, median, type Section, table } from './harness.js';

const ROUNDS = 9;
const CALLS: Record<number, number> = { 1: 400, 16: 3000, 64: 4000 };
const CONNECTIONS = 64;

/** Three HTTP servers in a child process; resolves with their URLs. */
async function startBackends(): Promise<{ urls: string[]; child: ChildProcess }> {
  const script = `
    const http = require('node:http');
    const body = 'x'.repeat(64);
    const ports = [];
    let n = 0;
    for (let i = 0; i < 3; i++) {
      const s = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
      });
      s.keepAliveTimeout = 60000;
      s.listen(0, '127.0.0.1', () => {
        ports[i] = s.address().port;
        if (++n === 3) console.log(JSON.stringify(ports));
      });
    }
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ports = await new Promise<number[]>((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as number[]));
  });
  return { urls: ports.map((p) => `http://127.0.0.1:${p}`), child };
}

interface Sample {
  rps: number;
  cpuUs: number;
}

async function measure(
  dispatcher: Dispatcher,
  total: number,
  concurrency: number,
): Promise<Sample> {
  let started = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        const { body } = await dispatcher.request({ path: '/x', method: 'GET' });
        await body.text();
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { rps: total / seconds, cpuUs: (cpu.user + cpu.system) / total };
}

export default async function dispatcherBench(): Promise<Section> {
  const { urls, child } = await startBackends();
  const pools: BackendPool[] = [];
  const pool = (algorithm: PowerOfTwoChoices | RoundRobin): BackendPool => {
    const p = new BackendPool({ backends: urls, algorithm, skew: false });
    pools.push(p);
    return p;
  };
  const baseline = new BalancedPool(urls, { connections: CONNECTIONS });
  const configs: { name: string; dispatcher: Dispatcher }[] = [
    { name: 'undici BalancedPool', dispatcher: baseline },
    {
      name: 'BalancedDispatcher (default: power of two choices)',
      dispatcher: new BalancedDispatcher(pool(new PowerOfTwoChoices()), {
        poolOptions: { connections: CONNECTIONS },
      }),
    },
    {
      name: 'BalancedDispatcher, round robin',
      dispatcher: new BalancedDispatcher(pool(new RoundRobin()), {
        poolOptions: { connections: CONNECTIONS },
      }),
    },
  ];
  const rows: (string | number)[][] = [];
  try {
    for (const concurrency of [1, 16, 64]) {
      const total = CALLS[concurrency]!;
      for (const c of configs) await measure(c.dispatcher, Math.ceil(total / 2), concurrency);
      const samples = new Map<string, Sample[]>(configs.map((c) => [c.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < configs.length; k++) {
          const c = configs[(k + round) % configs.length]!;
          samples.get(c.name)!.push(await measure(c.dispatcher, total, concurrency));
        }
      }
      const base = samples.get(configs[0]!.name)!;
      for (const c of configs) {
        const xs = samples.get(c.name)!;
        const isBase = c.dispatcher === baseline;
        rows.push([
          concurrency,
          c.name,
          fmt(median(xs.map((x) => x.rps)), 0),
          isBase ? 'baseline' : fmt(median(xs.map((x, i) => x.rps / base[i]!.rps)), 3),
          fmt(median(xs.map((x) => x.cpuUs)), 1),
          isBase ? 'baseline' : fmt(median(xs.map((x, i) => x.cpuUs / base[i]!.cpuUs)), 3),
        ]);
      }
    }
  } finally {
    await Promise.all(configs.map((c) => c.dispatcher.close()));
    await Promise.all(pools.map((p) => p.close()));
    child.stdin!.end();
  }
  return {
    title: 'HTTP: BalancedDispatcher vs undici BalancedPool',
    body: [
      `Three HTTP servers on 127.0.0.1 in a child process (a 64-byte body, keep-alive), ` +
        `\`dispatcher.request({ path, method: 'GET' })\` and the body read, ${CONNECTIONS} ` +
        `connections per backend for both; medians of ${ROUNDS} rounds of ` +
        `${CALLS[1]} / ${CALLS[16]} / ${CALLS[64]} calls at 1 / 16 / 64 in flight. "CPU µs/call" ` +
        'is the CPU time of the client process alone; the ratios are medians of per-round ratios ' +
        "to BalancedPool. loadwise's defaults: retries 2, retry budget, 15 s deadline and 5 s " +
        'attempt timeouts on.',
      '',
      table(
        [
          'in flight',
          'dispatcher',
          'req/s',
          'req/s vs BalancedPool',
          'CPU µs/call',
          'CPU vs BalancedPool',
        ],
        rows,
      ),
    ].join('\n'),
  };
}
