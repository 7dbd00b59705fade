/**
 * A plain balanced fetch: three local backends (one fast, one slow, one that answers 503 to
 * every other call) behind a fetch-compatible function. Each call picks a backend; a 503 is
 * retried on another backend, so the caller sees only 200s.
 *
 * Run: npx tsx examples/basic-fetch.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackendPool, createBalancedFetch, PowerOfTwoChoices } from '../src/index.js';

/** Starts an HTTP server on 127.0.0.1 that answers with `reply()` after `delayMs`. */
async function startBackend(
  delayMs: number,
  reply: () => { status: number; body: string },
): Promise<{ url: string; server: Server }> {
  const server = createServer((_req, res) => {
    setTimeout(() => {
      const { status, body } = reply();
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(body);
    }, delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

let flakyCalls = 0;
const fast = await startBackend(5, () => ({ status: 200, body: 'fast' }));
const slow = await startBackend(80, () => ({ status: 200, body: 'slow' }));
const flaky = await startBackend(5, () =>
  ++flakyCalls % 2 === 0 ? { status: 503, body: 'overloaded' } : { status: 200, body: 'flaky' },
);

// Ids are optional (they default to host:port); names make the output easier to read.
const pool = new BackendPool({
  backends: [
    { url: fast.url, id: 'fast' },
    { url: slow.url, id: 'slow' },
    { url: flaky.url, id: 'flaky' },
  ],
  algorithm: new PowerOfTwoChoices(), // the default; shown here to name it
});

const fetch = createBalancedFetch(pool, { retries: 2, timeoutMs: 2000 });
fetch.events.on('retry', (e) => {
  console.log(`  retry: ${e.backend.id} answered ${e.reason}, trying another backend`);
});

// 30 calls, 5 at a time: power of two choices sends fewer of them to the slow backend, which
// keeps its calls in flight longer.
let ok = 0;
const served = new Map<string, number>();
for (let batch = 0; batch < 6; batch++) {
  await Promise.all(
    Array.from({ length: 5 }, async (_, i) => {
      const n = batch * 5 + i + 1;
      const res = await fetch(`/orders/${n}`);
      const body = await res.text();
      if (res.status === 200) ok++;
      served.set(body, (served.get(body) ?? 0) + 1);
      console.log(`call ${String(n).padStart(2)}: ${res.status} from ${body}`);
    }),
  );
}

console.log(`\n${ok} of 30 calls answered 200`);
console.log('served by:', Object.fromEntries(served));
console.log('\nper backend (failures are the 503s the retries hid):');
for (const b of pool.stats().backends) {
  console.log(
    `  ${b.id.padEnd(5)} ${b.state}, ${b.requests} requests, ${b.failures} failures, ` +
      `latency ${b.latencyEwmaMs.toFixed(0)} ms, in flight ${b.inFlight}`,
  );
}

await pool.close();
for (const { server } of [fast, slow, flaky]) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
