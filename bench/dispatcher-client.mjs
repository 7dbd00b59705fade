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
 */
import { BalancedPool } from 'undici';
import { BackendPool, PowerOfTwoChoices, RoundRobin } from '../dist/index.js';
import { BalancedDispatcher } from '../dist/undici/index.js';

const [kind, connections, ...urls] = process.argv.slice(2);
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
