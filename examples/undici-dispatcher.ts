/**
 * undici's `request()` balanced by loadwise: three local backends, one of which turns slow for a
 * while. `BalancedDispatcher` is a drop-in for undici's `BalancedPool`; with peak EWMA and
 * hedging, calls move away from the slow backend, and the few that still land there are backed
 * up on another backend.
 *
 * Run: npx tsx examples/undici-dispatcher.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { BackendPool, PeakEwma } from '../src/index.js';
import { BalancedDispatcher } from '../src/undici/index.js';

/** An HTTP server on 127.0.0.1 answering its name after `delay()` ms. */
async function startBackend(
  name: string,
  delay: () => number,
): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    setTimeout(() => res.end(name), delay());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

let slowNow = false;
const backends = await Promise.all([
  startBackend('a', () => 2),
  startBackend('b', () => 2),
  startBackend('c', () => (slowNow ? 150 : 2)),
]);

const pool = new BackendPool({
  backends: backends.map((b, i) => ({ url: b.url, id: 'abc'[i]! })),
  algorithm: new PeakEwma(),
});
const dispatcher = new BalancedDispatcher(pool, {
  // The name callers use for the service; the dispatcher refuses any other host.
  serviceOrigins: ['http://orders.internal'],
  poolOptions: { connections: 8 },
  hedge: { afterMs: 20 },
});
let hedges = 0;
dispatcher.events.on('hedge', () => hedges++);

async function round(label: string): Promise<void> {
  const served = new Map<string, number>();
  let over100 = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 15; i++) {
        const started = performance.now();
        const { statusCode, body } = await request('http://orders.internal/orders', {
          dispatcher,
        });
        const name = await body.text();
        if (performance.now() - started > 100) over100++;
        if (statusCode === 200) served.set(name, (served.get(name) ?? 0) + 1);
      }
    }),
  );
  console.log(
    `${label}: served by ${JSON.stringify(Object.fromEntries([...served].sort()))}, ` +
      `${over100} of 60 calls took over 100 ms`,
  );
}

await round('all fast      ');
slowNow = true;
await round('c turned slow ');
console.log(`hedges sent: ${hedges}; in flight after the calls: ${pool.stats().inFlight}`);

await dispatcher.close();
await pool.close();
for (const { server } of backends) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
