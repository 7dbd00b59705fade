/**
 * One client of the dispatcher benchmark (bench/dispatcher.ts), in a process of its own: it
 * makes one dispatcher, then runs the batches of calls its parent asks for and answers with the
 * throughput and the CPU time per call of each batch.
 *
 * Plain JavaScript run by plain `node`, importing the compiled package (`dist/`), as an
 * application runs it: a TypeScript loader would add its own helpers to every closure, and one
 * process for each dispatcher keeps undici's shared code paths from seeing the other
 * dispatcher's objects (a process runs one of them in practice).
 *
 * Usage (by the parent, over IPC): `node bench/dispatcher-client.mjs <kind> <connections>
 * <url>...`, kind `balanced-pool`, `p2c` or `round-robin`; then messages `{ calls, concurrency }`.
 * `node bench/dispatcher-client.mjs overhead` measures what the dispatcher adds without sockets
 * (see `overhead()`) and sends `{ forwarderUs, balancedUs }`.
 */
import { Buffer } from 'node:buffer';
import { BalancedPool, Dispatcher } from 'undici';
import { BackendPool, PowerOfTwoChoices, RoundRobin } from '../dist/index.js';
import { BalancedDispatcher } from '../dist/undici/index.js';

const [kind, connections, ...urls] = process.argv.slice(2);
if (kind === 'overhead') {
  const result = await overhead();
  process.send(result, () => process.exit(0));
}
const poolOptions = { connections: Number(connections) };

function makeDispatcher() {
  if (kind === 'balanced-pool') return new BalancedPool(urls, poolOptions);
  const algorithm = kind === 'round-robin' ? new RoundRobin() : new PowerOfTwoChoices();
  return new BalancedDispatcher(new BackendPool({ backends: urls, algorithm, skew: false }), {
    poolOptions,
  });
}

const dispatcher = makeDispatcher();

async function batch(calls, concurrency) {
  let started = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < calls) {
        started++;
        const { statusCode, body } = await dispatcher.request({ path: '/x', method: 'GET' });
        const text = await body.text();
        if (statusCode !== 200 || text.length !== 64) throw new Error(`bad answer ${statusCode}`);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { rps: calls / seconds, cpuUs: (cpu.user + cpu.system) / calls };
}

process.on('message', (job) => {
  if (job.stop) {
    dispatcher.close().then(() => process.disconnect());
    return;
  }
  batch(job.calls, job.concurrency).then(
    (sample) => process.send(sample),
    (error) => process.send({ error: String(error?.stack ?? error) }),
  );
});
process.send({ ready: true });

/**
 * What the dispatcher adds to a call, without sockets: every request goes to a stand-in for a
 * backend's undici Pool that answers in a microtask (a 200 with a 64-byte body), through
 * BalancedDispatcher (default options and algorithm) and through a forwarder that hands each
 * request to the same stand-in (what BalancedPool adds, at least). 100,000 calls per measure,
 * 16 in flight, CPU time per call; 7 rounds, medians.
 */
async function overhead() {
  const raw = [Buffer.from('content-length'), Buffer.from('64')];
  const chunk = Buffer.from('x'.repeat(64));
  const backend = {
    closed: false,
    dispatch(_options, handler) {
      queueMicrotask(() => {
        handler.onConnect(() => {});
        handler.onHeaders(200, raw, () => {}, 'OK');
        handler.onData(chunk);
        handler.onComplete([]);
      });
      return true;
    },
  };
  class Forwarder extends Dispatcher {
    dispatch(options, handler) {
      return backend.dispatch(options, handler);
    }
  }
  const balanced = new BalancedDispatcher(
    new BackendPool({
      backends: ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80'],
    }),
  );
  // The stand-in replaces each backend's undici Pool (an internal hook, for this measure only).
  balanced.upstreamFor = () => ({ pool: backend, origin: 'http://10.0.0.1', basePath: '' });
  const one = (d) =>
    new Promise((resolve, reject) => {
      d.dispatch(
        { path: '/x', method: 'GET' },
        {
          onConnect() {},
          onHeaders: () => true,
          onData: () => true,
          onComplete: resolve,
          onError: reject,
        },
      );
    });
  const measure = async (d, calls) => {
    let started = 0;
    const cpu0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (started < calls) {
          started++;
          await one(d);
        }
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / calls;
  };
  const forwarder = new Forwarder();
  await measure(forwarder, 20000);
  await measure(balanced, 20000);
  const f = [];
  const b = [];
  for (let round = 0; round < 7; round++) {
    f.push(await measure(forwarder, 100000));
    b.push(await measure(balanced, 100000));
  }
  const median = (xs) => xs.slice().sort((x, y) => x - y)[xs.length >> 1];
  return { forwarderUs: median(f), balancedUs: median(b) };
}
