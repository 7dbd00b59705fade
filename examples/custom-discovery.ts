/**
 * A custom discovery source in a few lines: a registry (a Consul-like catalog, simulated by a
 * local HTTP server) is polled for the instances of a service, and the pool follows it while
 * calls keep flowing. An instance that registers starts taking traffic; one that deregisters
 * finishes its calls and leaves.
 *
 * Run: npx tsx examples/custom-discovery.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachDiscovery, BackendPool, PollingDiscovery, RoundRobin } from '../src/index.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

// Three instances of the "api" service, each answering with its name.
const instances = await Promise.all(
  ['api-1', 'api-2', 'api-3'].map(async (name) => {
    const server = createServer((_req, res) => res.end(name));
    return { name, server, port: await listen(server) };
  }),
);

// The registry: GET /v1/catalog/service/api lists the registered instances.
const registered = new Set(['api-1', 'api-2']);
const registry = createServer((_req, res) => {
  const nodes = instances
    .filter((i) => registered.has(i.name))
    .map((i) => ({ ServiceAddress: '127.0.0.1', ServicePort: i.port, Node: i.name }));
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=0' });
  res.end(JSON.stringify(nodes));
});
const registryUrl = `http://127.0.0.1:${await listen(registry)}/v1/catalog/service/api`;

// The custom source: one poll function. Everything else (schedule, timeouts, back-off after
// failures, keeping the last good set) comes from PollingDiscovery and the binding.
const source = new PollingDiscovery({
  name: 'catalog:api',
  intervalMs: 200,
  minRefreshMs: 100,
  poll: async (signal) => {
    const res = await fetch(registryUrl, { signal });
    if (!res.ok) throw new Error(`registry answered ${res.status}`);
    const nodes = (await res.json()) as { ServiceAddress: string; ServicePort: number }[];
    return nodes.map((n) => `http://${n.ServiceAddress}:${n.ServicePort}`);
  },
});

const pool = new BackendPool({ algorithm: new RoundRobin() });
const binding = attachDiscovery(pool, source);
binding.on('applied', (e) => {
  if (e.added.length > 0 || e.removing.length > 0)
    console.log(`discovery: +[${e.added.join(', ')}] -[${e.removing.join(', ')}]`);
});
binding.on('refresh-failed', (e) => console.log(`discovery failed: ${String(e.error)}`));
if (!(await binding.ready({ timeoutMs: 5000 }))) throw new Error('discovery gave no answer in 5 s');

async function calls(n: number): Promise<string> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const lease = pool.acquire();
    try {
      const body = await (await fetch(lease.backend.url)).text();
      counts.set(body, (counts.get(body) ?? 0) + 1);
      lease.release({ ok: true });
    } catch (error) {
      lease.release({ ok: false, error });
    }
  }
  return [...counts].map(([k, v]) => `${k}=${v}`).join(' ');
}

const nextAnswer = (): Promise<void> =>
  new Promise((resolve) => binding.once('applied', () => resolve()));

console.log(`before: ${await calls(12)}`);

// Scale out and in: api-3 registers, api-1 deregisters.
registered.add('api-3');
registered.delete('api-1');
await nextAnswer();
await binding.settled(); // api-1 has drained and left
console.log(
  `pool now: ${pool
    .backends()
    .map((b) => `${b.id} (${b.state})`)
    .join(', ')}`,
);
console.log(`after:  ${await calls(12)}`);

await pool.close(); // closes the binding and stops the source's timer too
await Promise.all(
  [registry, ...instances.map((i) => i.server)].map(
    (s) =>
      new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      }),
  ),
);
