/**
 * Discovery from DNS SRV records. A small DNS server from this repository's test kit answers for
 * `_http._tcp.api.internal` on 127.0.0.1 (in production, leave `servers` out to use the
 * system's resolvers, or name your DNS servers). Three local HTTP backends stand behind it.
 *
 * The pool follows the records: a new record joins the pool, a removed one drains and leaves,
 * and a DNS outage (SERVFAIL) changes nothing: the pool keeps its last good set.
 *
 * Run: npx tsx examples/dns-discovery.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { attachDiscovery, BackendPool, createBalancedFetch, RoundRobin } from '../src/index.js';
import { DnsSrvDiscovery } from '../src/node/index.js';
import { type SrvRecord, startDnsServer } from '../test/support/dns-server.js';

async function startBackend(name: string): Promise<{ name: string; port: number; server: Server }> {
  const server = createServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { name, port: (server.address() as AddressInfo).port, server };
}

const backends = await Promise.all(['app-1', 'app-2', 'app-3'].map(startBackend));
const portOf = new Map(backends.map((b) => [`127.0.0.1:${b.port}`, b.name]));
const nameOf = (id: string) => portOf.get(id) ?? id;

// The zone: every target resolves to 127.0.0.1; the SRV records give each one its port.
const SERVICE = '_http._tcp.api.internal';
const dns = await startDnsServer({ defaultTtl: 30 });
for (const b of backends) dns.setAddresses(`${b.name}.internal`, ['127.0.0.1']);
const srv = (names: string[]): SrvRecord[] =>
  backends
    .filter((b) => names.includes(b.name))
    .map((b) => ({ priority: 10, weight: 1, port: b.port, target: `${b.name}.internal` }));
dns.setSrv(SERVICE, srv(['app-1', 'app-2']));

const pool = new BackendPool({ algorithm: new RoundRobin({ startIndex: 0 }) });
const source = new DnsSrvDiscovery({
  service: SERVICE,
  servers: [dns.address],
  family: 4,
  resolverOptions: { timeout: 2000, tries: 1 },
});
const binding = attachDiscovery(pool, source);
binding.on('applied', (e) => {
  if (e.added.length > 0) console.log(`  discovery: joined ${e.added.map(nameOf).join(', ')}`);
  if (e.removing.length > 0)
    console.log(`  discovery: draining ${e.removing.map(nameOf).join(', ')}`);
});
binding.on('removed', (e) => console.log(`  discovery: ${nameOf(e.id)} left the pool`));
binding.on('refresh-failed', (e) => {
  const code = (e.error as { code?: string }).code ?? String(e.error);
  console.log(`  discovery: lookup failed (${code}); keeping ${e.kept} backends`);
});

const fetch = createBalancedFetch(pool);
async function calls(n: number): Promise<string> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const body = await (await fetch('/')).text();
    seen[body] = (seen[body] ?? 0) + 1;
  }
  return JSON.stringify(seen);
}

console.log(`1. ${SERVICE} lists app-1 and app-2`);
if (!(await binding.ready({ timeoutMs: 5000 }))) throw new Error('discovery gave no answer in 5 s');
console.log(`   6 calls -> ${await calls(6)}`);

// The source refreshes on its own (record TTL, at least every intervalMs); refresh() asks now.
console.log('2. app-3 is added to the SRV records');
dns.setSrv(SERVICE, srv(['app-1', 'app-2', 'app-3']));
await binding.refresh();
console.log(`   6 calls -> ${await calls(6)}`);

console.log('3. app-1 is removed from the SRV records');
dns.setSrv(SERVICE, srv(['app-2', 'app-3']));
await binding.refresh();
await binding.settled(); // app-1 finished its calls and left
console.log(`   6 calls -> ${await calls(6)}`);

console.log('4. The DNS server answers SERVFAIL');
dns.setMode(SERVICE, 'servfail');
await binding.refresh();
console.log(`   6 calls -> ${await calls(6)} (nothing removed)`);

await pool.close(); // closes the binding and the DNS source with it
await dns.close();
for (const { server } of backends) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
