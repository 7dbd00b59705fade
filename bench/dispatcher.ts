/**
 * The balanced undici dispatcher against undici's own `BalancedPool`, on the same three loopback
 * backends, at 1, 16 and 64 calls in flight: `dispatcher.request()` through each.
 *
 * The backends run in a child process, and each dispatcher in a client process of its own
 * (bench/dispatcher-client.mjs, plain `node` on the compiled package, as applications run it), so
 * `process.cpuUsage()` there measures the cost of a call through that dispatcher alone. Only one
 * client runs at a time. Every configuration runs once per round, in a rotating order; figures are medians over the rounds, and the CPU ratio is the
 * median of per-round ratios to `BalancedPool` (on a shared machine wall time swings with the
 * other processes' load; CPU time spent on the work itself much less).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/support/build.js';
import { fmt, median, pinning, pinningNote, type Section, table } from './harness.js';

const ROUNDS = 9;
const CALLS: Record<number, number> = { 1: 1000, 16: 5000, 64: 6000 };
const WARM_UP_CALLS = 5000;
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
  const pin = pinning('server');
  const child = spawn(pin?.command ?? process.execPath, [...(pin?.prefix ?? []), '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
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

/** A client process with its dispatcher, waiting for batches. */
interface Client {
  readonly name: string;
  run(calls: number, concurrency: number): Promise<Sample>;
  stop(): Promise<void>;
}

const CLIENT = fileURLToPath(new URL('./dispatcher-client.mjs', import.meta.url));

/** How a client process starts: plain `node`, pinned to the clients' CPU when possible. */
function clientProcess(): { execPath?: string; execArgv: string[] } {
  const pin = pinning('client');
  return pin === undefined
    ? { execArgv: [] }
    : { execPath: pin.command, execArgv: [...pin.prefix] };
}

async function startClient(name: string, kind: string, urls: string[]): Promise<Client> {
  const child = fork(CLIENT, [kind, String(CONNECTIONS), ...urls], clientProcess());
  const next = (): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void =>
        reject(new Error(`${name}: client exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as Record<string, unknown>);
      });
    });
  await next();
  return {
    name,
    async run(calls, concurrency) {
      const answer = next();
      child.send({ calls, concurrency });
      const m = await answer;
      if (typeof m['error'] === 'string') throw new Error(`${name}: ${m['error']}`);
      return m as unknown as Sample;
    },
    async stop() {
      const gone = new Promise((resolve) => child.once('exit', resolve));
      child.send({ stop: true });
      await gone;
    },
  };
}

/** CPU per call without sockets, through a forwarder and through the dispatcher. */
async function measureOverhead(): Promise<{ forwarderUs: number; balancedUs: number }> {
  const child = fork(CLIENT, ['overhead'], clientProcess());
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m) => resolve(m as { forwarderUs: number; balancedUs: number }));
  });
}

export default async function dispatcherBench(): Promise<Section> {
  ensureBuilt();
  const { urls, child } = await startBackends();
  const clients: Client[] = [];
  const rows: (string | number)[][] = [];
  try {
    clients.push(await startClient('undici BalancedPool', 'balanced-pool', urls));
    clients.push(
      await startClient('BalancedDispatcher (default: power of two choices)', 'p2c', urls),
    );
    clients.push(await startClient('BalancedDispatcher, round robin', 'round-robin', urls));
    const [baseline] = clients;
    for (const concurrency of [1, 16, 64]) {
      const total = CALLS[concurrency]!;
      // Warm-up: connections opened and code compiled before anything is counted.
      for (const c of clients) await c.run(WARM_UP_CALLS, concurrency);
      const samples = new Map<Client, Sample[]>(clients.map((c) => [c, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < clients.length; k++) {
          const c = clients[(k + round) % clients.length]!;
          samples.get(c)!.push(await c.run(total, concurrency));
        }
      }
      const base = samples.get(baseline!)!;
      for (const c of clients) {
        const xs = samples.get(c)!;
        const isBase = c === baseline;
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
    await Promise.all(clients.map((c) => c.stop()));
    child.stdin!.end();
  }
  const added = await measureOverhead();
  return {
    title: 'HTTP: BalancedDispatcher vs undici BalancedPool',
    body: [
      `Three HTTP servers on 127.0.0.1 in a child process (a 64-byte body, keep-alive), ` +
        `\`dispatcher.request({ path, method: 'GET' })\` and the body read, ${CONNECTIONS} ` +
        `connections per backend for both. Each dispatcher runs in a client process of its own ` +
        '(plain `node` on the compiled package, one client at a time), warmed up with ' +
        `${WARM_UP_CALLS} calls; medians of ${ROUNDS} rounds of ` +
        `${CALLS[1]} / ${CALLS[16]} / ${CALLS[64]} calls at 1 / 16 / 64 in flight. "CPU µs/call" ` +
        'is the CPU time of that client process; the ratios are medians of per-round ratios ' +
        "to BalancedPool. loadwise's defaults: retries 2, retry budget, 15 s deadline and 5 s " +
        'attempt timeouts on. ' +
        pinningNote(),
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
      '',
      "Without sockets (each request answered in a microtask by a stand-in for the backend's " +
        'undici Pool; 100,000 calls, 16 in flight, medians of 7 rounds, CPU µs per call): a ' +
        `forwarder to the stand-in ${fmt(added.forwarderUs, 2)}, BalancedDispatcher ` +
        `${fmt(added.balancedUs, 2)}, so the dispatcher adds ` +
        `${fmt(added.balancedUs - added.forwarderUs, 2)} µs per call.`,
    ].join('\n'),
  };
}
