/**
 * The balanced undici dispatcher against undici's own `BalancedPool`, on the same three loopback
 * backends, at 1, 16 and 64 calls in flight: `dispatcher.request()` through each.
 *
 * The backends run in a child process, and each dispatcher in client processes of its own
 * (bench/dispatcher-client.mjs, plain `node` on the compiled package, as applications run it), so
 * `process.cpuUsage()` there measures the cost of a call through that dispatcher alone. Only one
 * client runs at a time. Each configuration runs in several processes (see `PROCESSES`), every
 * process once per round in a rotating order; the ratios are medians over rounds of the
 * configuration's mean to `BalancedPool`'s (on a shared machine wall time swings with the other
 * processes' load; CPU time spent on the work itself much less). A second set of `BalancedPool`
 * processes is measured as if it were another configuration: its ratios are the noise floor.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from '../test/support/build.js';
import { fmt, median, pinning, pinningNote, type Section, table } from './harness.js';

const ROUNDS = 9;
/**
 * Client processes per configuration. Two processes running the same dispatcher differ by a few
 * percent for the whole of their lives (3.5% in CPU per call between two sets of BalancedPool
 * clients, consistently over 41 rounds: code and heap placement, JIT timing), as much as the
 * differences this benchmark looks for; each configuration's figure is the mean over its
 * processes, and a second set of BalancedPool processes shows what is left of that noise.
 */
const PROCESSES = 3;
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

/** A configuration measured in several client processes of its own. */
interface Contender {
  readonly name: string;
  readonly processes: Client[];
}

/** The mean of one round's samples of a contender's processes. */
function roundMean(samples: Sample[][], round: number, pick: (s: Sample) => number): number {
  let sum = 0;
  for (const xs of samples) sum += pick(xs[round]!);
  return sum / samples.length;
}

export default async function dispatcherBench(): Promise<Section> {
  ensureBuilt();
  const { urls, child } = await startBackends();
  const contenders: Contender[] = [];
  const rows: (string | number)[][] = [];
  const configs: [string, string][] = [
    ['undici BalancedPool', 'balanced-pool'],
    ['undici BalancedPool again (other processes: the noise floor)', 'balanced-pool'],
    ['BalancedDispatcher (default: power of two choices)', 'p2c'],
    ['BalancedDispatcher, round robin', 'round-robin'],
  ];
  try {
    for (const [name, kind] of configs) {
      const processes: Client[] = [];
      for (let i = 0; i < PROCESSES; i++) processes.push(await startClient(name, kind, urls));
      contenders.push({ name, processes });
    }
    // Interleaved (the first process of each configuration, then the second...), so that no
    // configuration's processes always follow their own kind in a round.
    const clients = Array.from({ length: PROCESSES }, (_, i) =>
      contenders.map((c) => c.processes[i]!),
    ).flat();
    const baseline = contenders[0]!;
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
      const of = (c: Contender): Sample[][] => c.processes.map((p) => samples.get(p)!);
      const base = of(baseline);
      const rounds = Array.from({ length: ROUNDS }, (_, r) => r);
      for (const c of contenders) {
        const own = of(c);
        const isBase = c === baseline;
        const all = own.flat();
        rows.push([
          concurrency,
          c.name,
          fmt(median(all.map((x) => x.rps)), 0),
          isBase
            ? 'baseline'
            : fmt(
                median(
                  rounds.map(
                    (r) => roundMean(own, r, (x) => x.rps) / roundMean(base, r, (x) => x.rps),
                  ),
                ),
                3,
              ),
          fmt(median(all.map((x) => x.cpuUs)), 1),
          isBase
            ? 'baseline'
            : fmt(
                median(
                  rounds.map(
                    (r) => roundMean(own, r, (x) => x.cpuUs) / roundMean(base, r, (x) => x.cpuUs),
                  ),
                ),
                3,
              ),
        ]);
      }
    }
  } finally {
    await Promise.all(contenders.flatMap((c) => c.processes).map((c) => c.stop()));
    child.stdin!.end();
  }
  const added = await measureOverhead();
  return {
    title: 'HTTP: BalancedDispatcher vs undici BalancedPool',
    body: [
      `Three HTTP servers on 127.0.0.1 in a child process (a 64-byte body, keep-alive), ` +
        `\`dispatcher.request({ path, method: 'GET' })\` and the body read, ${CONNECTIONS} ` +
        `connections per backend for both. Each dispatcher runs in client processes of its own ` +
        '(plain `node` on the compiled package, one client at a time), warmed up with ' +
        `${WARM_UP_CALLS} calls; each configuration runs in ${PROCESSES} client processes, and ` +
        `every process runs once per round (${ROUNDS} rounds, in a rotating order) a batch of ` +
        `${CALLS[1]} / ${CALLS[16]} / ${CALLS[64]} calls at 1 / 16 / 64 in flight. "CPU µs/call" ` +
        'is the CPU time of the client process (medians over all batches); the ratios are ' +
        "medians over rounds of the configuration's mean over its processes to BalancedPool's. " +
        "loadwise's defaults: retries 2, retry budget, 15 s deadline and 5 s " +
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
