/**
 * Liveness and readiness checks on three local backends.
 *
 * - The readiness checker probes `GET /health/ready` and its results decide routing: a backend
 *   that is not ready stops getting calls after 2 failed probes and gets them again after 2
 *   passes.
 * - The liveness checker probes `GET /health/live` and only reports (restart a process, page
 *   someone); it never changes routing.
 *
 * Then the incident this library is built to survive: every backend's readiness endpoint also
 * checks a database they all share. The database goes down, every backend fails readiness at
 * once although each could still serve, and the pool's panic rule keeps calls flowing while the
 * checker says what most likely happened.
 *
 * Run: npx tsx examples/health-checks.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackendPool, createBalancedFetch, HealthChecker, RoundRobin } from '../src/index.js';

const database = { up: true };
const notReady = new Set<string>();

async function startBackend(name: string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === '/health/live') {
      res.end('alive'); // the process runs: nothing else is checked here
    } else if (req.url === '/health/ready') {
      // The mistake the incident below replays: readiness also checks a shared database.
      const ready = !notReady.has(name) && database.up;
      res.writeHead(ready ? 200 : 503);
      res.end(ready ? 'ready' : 'not ready');
    } else {
      res.end(name); // ordinary calls need no database in this service
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const names = ['a', 'b', 'c'];
const backends = await Promise.all(names.map(startBackend));
const pool = new BackendPool({
  backends: backends.map((b, i) => ({ url: b.url, id: names[i]! })),
  algorithm: new RoundRobin({ startIndex: 0 }),
});
pool.on('state', (e) => console.log(`  pool: ${e.backend.id} ${e.from} -> ${e.to} (${e.reason})`));
pool.on('panic', (e) =>
  console.log(`  pool: panic ${e.active ? 'ON' : 'off'} (${e.healthy} of ${e.total} healthy)`),
);

// Short intervals so the example runs in a few seconds; production values are seconds.
const readiness = new HealthChecker(pool, {
  path: '/health/ready',
  intervalMs: 250,
  timeoutMs: 150,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
}).start();
const liveness = new HealthChecker(pool, {
  role: 'liveness',
  path: '/health/live',
  intervalMs: 250,
  timeoutMs: 150,
}).start();
liveness.on('change', (e) =>
  console.log(`  liveness: ${e.backend.id} ${e.healthy ? 'alive' : 'NOT alive'} (restart it?)`),
);
readiness.on('all-unhealthy', (e) => console.log(`  readiness says: ${e.message}`));
readiness.on('recovered', (e) =>
  console.log(`  readiness: recovered, ${e.healthy} of ${e.total} passing`),
);

const fetch = createBalancedFetch(pool, { retries: 0 });
async function sendCalls(n: number): Promise<string> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const body = await (await fetch('/work')).text();
    counts[body] = (counts[body] ?? 0) + 1;
  }
  return JSON.stringify(counts);
}

/** Resolves once `done()` holds, checking every 20 ms; fails after 5 s. */
async function until(what: string, done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 20) {
    if (waited > 5000) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
const state = (id: string) => pool.get(id)?.state;

console.log('1. All backends ready');
console.log(`   6 calls -> ${await sendCalls(6)}`);

console.log('2. Backend b stops being ready (say, it is reloading a large cache)');
notReady.add('b');
await until('b unhealthy', () => state('b') === 'unhealthy');
console.log(`   6 calls -> ${await sendCalls(6)} (b gets none; liveness stayed quiet)`);
notReady.delete('b');
await until('b healthy', () => state('b') === 'healthy');
console.log(`   b is back: 6 calls -> ${await sendCalls(6)}`);

console.log('3. Incident: the shared database goes down');
database.up = false;
await until('panic', () => pool.panic && pool.stats().healthy === 0);
console.log(`   6 calls -> ${await sendCalls(6)} (panic mode: still served by every backend)`);
database.up = true;
await until('all healthy', () => pool.stats().healthy === 3);
console.log(`   database back: 6 calls -> ${await sendCalls(6)}`);

console.log(
  '\nLesson: readiness should check the instance itself, not what every instance shares.',
);
await pool.close(); // the checkers stop with the pool
for (const { server } of backends) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
