/**
 * A small live scenario: three local HTTP backends and a stream of calls through the pool,
 * printing where each went.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BackendPool, LeastConnections } from '../src/index.js';

const delays = [5, 20, 60];
const servers: Server[] = await Promise.all(
  delays.map(
    (ms) =>
      new Promise<Server>((resolve) => {
        const s = createServer((_req, res) => {
          setTimeout(() => res.end(`slept ${ms} ms`), ms);
        });
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
  ),
);
const urls = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
const pool = new BackendPool({ backends: urls, algorithm: new LeastConnections() });
const counts = new Map<string, number>();

async function call(i: number): Promise<void> {
  const lease = pool.acquire();
  try {
    const res = await fetch(`${lease.backend.url}/work/${i}`);
    const body = await res.text();
    lease.release({ ok: res.ok, status: res.status });
    counts.set(lease.backend.id, (counts.get(lease.backend.id) ?? 0) + 1);
    console.log(`call ${String(i).padStart(2)} -> ${lease.backend.id} (${body})`);
  } catch (error) {
    lease.release({ ok: false, error });
    throw error;
  }
}

const calls = Array.from({ length: 30 }, (_, i) => call(i));
await Promise.all(calls);
console.log('\nCalls per backend (least connections favours the fast ones):');
for (const [id, n] of counts) console.log(`  ${id}: ${n}`);
await pool.close();
await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
