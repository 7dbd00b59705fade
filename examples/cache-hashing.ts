/**
 * Consistent hashing for a cache. Three local cache nodes (a few lines of HTTP each) sit behind
 * a balanced fetch whose pool routes by key with `ConsistentHash`: every key always reaches the
 * same node, so a value cached once is found again. When a fourth node joins, only about a
 * quarter of the keys move (all of them to the new node) and the rest keep hitting.
 *
 * First, the same property without any server, on a `ConsistentHashRing`, next to what
 * `hash(key) % n` would do.
 *
 * Run: npx tsx examples/cache-hashing.ts
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BackendPool,
  ConsistentHash,
  ConsistentHashRing,
  createBalancedFetch,
  murmur3,
} from '../src/index.js';

// ---------------------------------------------------------------- 1. the ring on its own

const keys = Array.from({ length: 10_000 }, (_, i) => `user:${i}`);
const ring = new ConsistentHashRing(['cache-a', 'cache-b', 'cache-c']);
const before = new Map(keys.map((k) => [k, ring.get(k)]));
ring.add('cache-d');
let moved = 0;
let movedElsewhere = 0;
for (const k of keys) {
  const owner = ring.get(k);
  if (owner !== before.get(k)) {
    moved++;
    if (owner !== 'cache-d') movedElsewhere++;
  }
}
const modMoved = keys.filter((k) => murmur3(k) % 3 !== murmur3(k) % 4).length;
const pct = (n: number) => `${((100 * n) / keys.length).toFixed(1)}%`;
console.log('1. Adding a 4th node to 3, over 10,000 keys');
console.log(
  `   consistent hash ring: ${pct(moved)} of keys move (${movedElsewhere} not to the new node)`,
);
console.log(`   hash % n:             ${pct(modMoved)} of keys move`);

// ---------------------------------------------------------------- 2. a real cache fleet

/** A cache node: GET /cache/<key> answers 200 with the value or 404; PUT stores the body. */
async function startCacheNode(name: string): Promise<{ url: string; server: Server }> {
  const data = new Map<string, string>();
  const server = createServer(async (req, res) => {
    const key = decodeURIComponent(req.url?.slice('/cache/'.length) ?? '');
    res.setHeader('x-cache-node', name);
    if (req.method === 'PUT') {
      let body = '';
      for await (const chunk of req) body += chunk;
      data.set(key, body);
      res.writeHead(204).end();
    } else if (data.has(key)) {
      res.end(data.get(key));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const names = ['cache-a', 'cache-b', 'cache-c', 'cache-d'];
const nodes = await Promise.all(names.map(startCacheNode));
const pool = new BackendPool({
  backends: nodes.slice(0, 3).map((n, i) => ({ url: n.url, id: names[i]! })),
  // balanceFactor 1.25 would cap any node at 125% of the mean load (hot keys spill over to the
  // next node on the ring); left out here so every key stays strictly on its owner.
  algorithm: new ConsistentHash(),
});
// The pick key is the cache key; a cache miss is not worth a retry on a node that owns nothing.
const cacheFetch = createBalancedFetch(pool, {
  key: (request) => new URL(request.url).pathname.slice('/cache/'.length),
  retries: 0,
});

/** Read-through: the owner node answers, or the value is "loaded" and stored on that node. */
async function read(key: string): Promise<{ hit: boolean; node: string }> {
  const res = await cacheFetch(`/cache/${key}`);
  await res.arrayBuffer();
  const node = res.headers.get('x-cache-node') ?? '?';
  if (res.status === 200) return { hit: true, node };
  const put = await cacheFetch(`/cache/${key}`, { method: 'PUT', body: `value of ${key}` });
  await put.arrayBuffer();
  return { hit: false, node };
}

/** Reads user:0 .. user:99, 20 at a time; prints hits and where the misses were. */
async function readAll(label: string): Promise<void> {
  let hits = 0;
  const missesOn = new Map<string, number>();
  for (let start = 0; start < 100; start += 20) {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => read(`user:${start + i}`)),
    );
    for (const r of results) {
      if (r.hit) hits++;
      else missesOn.set(r.node, (missesOn.get(r.node) ?? 0) + 1);
    }
  }
  const misses = [...missesOn].map(([node, n]) => `${node}=${n}`).join(' ') || 'none';
  console.log(`   ${label.padEnd(20)} ${hits} of 100 hits; misses on: ${misses}`);
}

console.log('2. A read-through cache on three nodes');
await readAll('first pass (cold):');
await readAll('second pass:');
pool.add({ url: nodes[3]!.url, id: 'cache-d' });
await readAll('after cache-d joins:');
await readAll('once more:');

await pool.close();
for (const { server } of nodes) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
