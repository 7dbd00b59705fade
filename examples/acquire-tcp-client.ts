/**
 * A non-HTTP client balanced by loadwise. Three tiny line-protocol servers (send `GET <key>\n`,
 * read one line back) listen on 127.0.0.1; a fourth backend is listed but nothing listens on its
 * port.
 *
 * Part 1 drives `pool.acquire()` by hand, one short connection per request: the outcome of every
 * call goes back through `lease.release()`, so the outlier detector sees the refused connections
 * and ejects the dead backend, and a retry avoids backends already tried.
 *
 * Part 2 uses `connect()` from loadwise/node for long-lived connections: each socket holds its
 * lease until it closes, so least connections spreads open connections evenly.
 *
 * Run: npx tsx examples/acquire-tcp-client.ts
 */
import { type AddressInfo, createServer, connect as netConnect, type Server } from 'node:net';
import {
  BackendPool,
  type FailureKind,
  LeastConnections,
  NoBackendAvailableError,
  OutlierDetector,
} from '../src/index.js';
import { connect } from '../src/node/index.js';

/** A line-protocol server: `GET <key>` is answered with `<name> <key>=<value>`. */
async function startLineServer(name: string): Promise<{ port: number; server: Server }> {
  const server = createServer((socket) => {
    socket.setEncoding('utf8');
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        const [verb, key] = line.split(' ');
        socket.write(verb === 'GET' && key ? `${name} ${key}=${key.length}\n` : `${name} ERR\n`);
        nl = buffered.indexOf('\n');
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

/** A port nothing listens on: bind one, then let it go. */
async function deadPort(): Promise<number> {
  const { port, server } = await startLineServer('gone');
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Sends one line over a new connection and resolves with the first line of the reply. */
function roundTrip(url: string, line: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: hostname, port: Number(port) });
    socket.setEncoding('utf8');
    socket.setTimeout(1000, () => socket.destroy(new Error('timed out')));
    let reply = '';
    socket.on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\n')) {
        socket.end();
        resolve(reply.trim());
      }
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.write(`${line}\n`));
  });
}

/** Which kind of failure an error is, for the pool's statistics and the outlier detector. */
function failureKind(error: unknown): FailureKind {
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED') return 'connect';
  if (code === 'ECONNRESET') return 'reset';
  return 'other';
}

const servers = await Promise.all(['kv-a', 'kv-b', 'kv-c'].map(startLineServer));
const pool = new BackendPool({
  backends: [
    ...servers.map((s, i) => ({ url: `tcp://127.0.0.1:${s.port}`, id: `kv-${'abc'[i]}` })),
    { url: `tcp://127.0.0.1:${await deadPort()}`, id: 'kv-dead' },
  ],
  algorithm: new LeastConnections(),
});
// Passive health: eject a backend after 2 consecutive failures (Envoy's default is 5).
const detector = new OutlierDetector(pool, { consecutiveFailures: 2, maxEjectionPercent: 50 });
detector.on('eject', (e) =>
  console.log(`  outlier detector: ${e.backend.id} ejected (${e.detail})`),
);

/** One request with up to 3 attempts, each on a backend not tried yet. */
async function get(key: string): Promise<string> {
  const tried: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    let lease: ReturnType<typeof pool.acquire>;
    try {
      lease = pool.acquire({ exclude: tried });
    } catch (error) {
      if (error instanceof NoBackendAvailableError) return `no backend: ${error.reason}`;
      throw error;
    }
    tried.push(lease.backend.id);
    try {
      const reply = await roundTrip(lease.backend.url, `GET ${key}`);
      lease.release({ ok: true });
      return reply;
    } catch (error) {
      const failure = failureKind(error);
      console.log(`  attempt ${attempt} on ${lease.backend.id} failed: ${failure}`);
      lease.release({ ok: false, failure, error });
    }
  }
  return 'all attempts failed';
}

console.log('Part 1: pool.acquire() around a hand-written client');
for (const key of ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta']) {
  console.log(`GET ${key} -> ${await get(key)}`);
}
const dead = pool.get('kv-dead');
console.log(`kv-dead is now ${dead?.state}; calls skip it until the ejection ends\n`);

console.log('Part 2: connect() holds a lease per open connection');
const sockets = await Promise.all(
  Array.from({ length: 6 }, () => connect(pool, { connectTimeoutMs: 1000 })),
);
for (const b of pool.stats().backends) {
  console.log(`  ${b.id}: ${b.inFlight} open connections (${b.state})`);
}
const replies = await Promise.all(
  sockets.map(
    (socket, i) =>
      new Promise<string>((resolve) => {
        socket.setEncoding('utf8');
        socket.once('data', (line: string) => resolve(line.trim()));
        socket.write(`GET conn${i}\n`);
      }),
  ),
);
console.log(`  replies: ${replies.join(', ')}`);
await Promise.all(
  sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.end();
      }),
  ),
);
console.log(`after closing: ${pool.stats().inFlight} connections in flight`);

detector.close();
await pool.close();
await Promise.all(servers.map(({ server }) => new Promise((resolve) => server.close(resolve))));
