/**
 * Sticky sessions in a small HTTP gateway. Three app servers keep each visitor's cart in their
 * own memory (the reason stickiness is wanted here); a gateway in front balances calls over
 * them with a balanced fetch and pins each browser to one app server with a signed cookie.
 *
 * The run shows: each visitor stays on one server; a draining server keeps its existing
 * sessions but takes no new ones; when it is removed, its visitors move, and lose their
 * in-memory carts, which is the price of keeping state in the backends.
 *
 * Run: npx tsx examples/sticky-gateway.ts
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  BackendPool,
  createBalancedFetch,
  getCookie,
  LeastConnections,
  SessionPersistenceManager,
} from '../src/index.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An app server that keeps carts in memory, keyed by the visitor's `sid` cookie. */
async function startApp(name: string): Promise<{ name: string; url: string; server: Server }> {
  const carts = new Map<string, number>();
  const server = createServer((req, res) => {
    const sid = getCookie(req.headers.cookie, 'sid') ?? 'anonymous';
    const items = (carts.get(sid) ?? 0) + 1;
    carts.set(sid, items);
    res.end(`${name}: ${items} item${items === 1 ? '' : 's'} in ${sid}'s cart`);
  });
  return { name, server, url: await listen(server) };
}

const apps = await Promise.all(['app-1', 'app-2', 'app-3'].map(startApp));
const pool = new BackendPool({
  backends: apps.map((a) => ({ url: a.url, id: a.name })),
  algorithm: new LeastConnections(),
});

// Cookie mode: the `lb` cookie names the backend with an opaque token, signed with the secret
// (at least 32 bytes; in production, load it from your secret store).
const sessions = new SessionPersistenceManager(pool, {
  cookie: { name: 'lb', sameSite: 'Lax' },
  secret: 'example-secret-of-at-least-32-bytes!',
});
sessions.on('bound', (e) => console.log(`  gateway: new session on ${e.backend.id}`));
sessions.on('rebound', (e) => console.log(`  gateway: session moved ${e.from} -> ${e.to.id}`));
sessions.on('cookieRejected', (e) => console.log(`  gateway: cookie not honoured (${e.reason})`));

const balancedFetch = createBalancedFetch(pool, { ...sessions.forFetch(), retries: 1 });

/** The gateway: forwards the path and the Cookie header, returns status, body and cookies. */
const gateway = createServer(async (req: IncomingMessage, res) => {
  try {
    const headers: Record<string, string> = {};
    if (req.headers.cookie !== undefined) headers['cookie'] = req.headers.cookie;
    const upstream = await balancedFetch(req.url ?? '/', { headers });
    const body = await upstream.text();
    res.writeHead(upstream.status, { 'set-cookie': upstream.headers.getSetCookie() });
    res.end(body);
  } catch (error) {
    res.writeHead(502);
    res.end(`gateway error: ${String(error)}`);
  }
});
const gatewayUrl = await listen(gateway);

/** A browser with a cookie jar. */
function browser(sid: string) {
  const jar = new Map<string, string>([['sid', sid]]);
  const visit = async (path: string): Promise<string> => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(`${gatewayUrl}${path}`, { headers: { cookie } });
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return res.text();
  };
  return Object.assign(visit, { jar });
}

const alice = browser('alice');
const bob = browser('bob');

console.log('1. Each visitor sticks to one app server');
let lastForAlice = '';
for (let i = 0; i < 3; i++) {
  lastForAlice = await alice('/cart/add');
  console.log(`   alice: ${lastForAlice}`);
  console.log(`   bob:   ${await bob('/cart/add')}`);
}
console.log(`   alice's cookie: lb=${alice.jar.get('lb')} (an opaque signed token, no address)`);

const alicesApp = lastForAlice.split(':')[0]!;
console.log(
  `2. ${alicesApp} drains (a deployment): alice keeps her session, new visitors go elsewhere`,
);
void pool.drain(alicesApp, { graceMs: 60_000 });
console.log(`   alice: ${await alice('/cart/add')}`);
const carol = browser('carol');
console.log(`   carol: ${await carol('/cart/add')}`);

console.log(`3. ${alicesApp} is removed: alice moves, and her in-memory cart is gone`);
await pool.remove(alicesApp, { drain: false });
console.log(`   alice: ${await alice('/cart/add')}`);
console.log(`   alice: ${await alice('/cart/add')}`);

await sessions.close();
await pool.close();
for (const server of [gateway, ...apps.map((a) => a.server)]) {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}
