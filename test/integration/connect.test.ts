import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Algorithm,
  AllAttemptsFailedError,
  BackendPool,
  LeastConnections,
  LoadBalancerConfigError,
  RoundRobin,
} from '../../src/index.js';
import { type BalancedSocket, connect } from '../../src/node/index.js';
import { unusedPort } from '../support/servers.js';

interface EchoServer {
  url: string;
  server: Server;
  sockets: Set<Socket>;
  close(): Promise<void>;
}

async function echoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `tcp://127.0.0.1:${port}`,
    server,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const servers: EchoServer[] = [];
const pools: BackendPool[] = [];
const clients: BalancedSocket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function echoServers(n: number): Promise<EchoServer[]> {
  const started = await Promise.all(Array.from({ length: n }, echoServer));
  servers.push(...started);
  return started;
}

function pool(backends: string[], algorithm: Algorithm = new LeastConnections()): BackendPool {
  const p = new BackendPool({ backends, algorithm, skew: false });
  pools.push(p);
  return p;
}

async function open(p: BackendPool, options = {}): Promise<BalancedSocket> {
  const s = await connect(p, { connectTimeoutMs: 1000, ...options });
  clients.push(s);
  return s;
}

function closed(s: BalancedSocket): Promise<void> {
  return new Promise((r) => {
    if (s.destroyed) r();
    else s.once('close', () => r());
  });
}

function counts(p: BackendPool): number[] {
  return p.backends().map((b) => b.inFlight);
}

describe('connect()', () => {
  it('returns a connected socket to a picked backend that echoes', async () => {
    const [a] = await echoServers(1);
    const p = pool([a!.url]);
    const s = await open(p);
    expect(s.backend.url).toBe(a!.url);
    const echoed = new Promise<string>((r) => s.once('data', (d) => r(String(d))));
    s.write('ping');
    expect(await echoed).toBe('ping');
    expect(p.get(s.backend.id)!.inFlight).toBe(1);
  });

  it('holds the lease until the socket closes, then releases it as a success', async () => {
    const [a] = await echoServers(1);
    const p = pool([a!.url]);
    const s = await open(p);
    const done = closed(s);
    s.end();
    await done;
    const b = p.get(s.backend.id)!;
    expect(b.inFlight).toBe(0);
    expect(b.requests).toBe(1);
    expect(b.failures).toBe(0);
  });

  it('skips a refused backend and names it when every backend refuses', async () => {
    const [a] = await echoServers(1);
    const dead = `tcp://127.0.0.1:${await unusedPort()}`;
    const p = pool([dead, a!.url], new RoundRobin({ startIndex: 0 }));
    const s = await open(p);
    expect(s.backend.url).toBe(a!.url);
    const deadView = p.backends().find((b) => b.url === dead)!;
    expect(deadView.failures).toBe(1);
    expect(deadView.inFlight).toBe(0);

    const dead2 = `tcp://127.0.0.1:${await unusedPort()}`;
    const allDead = pool([dead, dead2]);
    const error = await connect(allDead, { connectTimeoutMs: 1000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    const attempts = (error as AllAttemptsFailedError).attempts;
    expect(attempts.map((x) => x.backend).sort()).toEqual(
      allDead
        .backends()
        .map((b) => b.id)
        .sort(),
    );
    expect(attempts.every((x) => x.outcome === 'connect')).toBe(true);
    expect((error as Error).message).toContain('ECONNREFUSED');
    expect(counts(allDead)).toEqual([0, 0]);
  });

  it('a backend URL without a port is the caller’s mistake: not blamed, no other backend tried', async () => {
    const [a] = await echoServers(1);
    const p = pool(['tcp://127.0.0.1', a!.url], new RoundRobin({ startIndex: 0 }));
    const error = await connect(p).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as Error).message).toContain('a URL with a port');
    expect(p.backends().map((b) => [b.requests, b.failures, b.inFlight])).toEqual([
      [1, 0, 0],
      [0, 0, 0],
    ]);
  });

  it('an http: backend without an explicit port connects to port 80 of its host', async () => {
    // Whether something listens on port 80 or not, the URL is accepted: the attempt either
    // connects or is refused by the host (a backend's failure), never refused as a bad URL.
    const p = pool(['http://127.0.0.1']);
    const result = await connect(p, { connectTimeoutMs: 1000 }).then(
      (s) => {
        s.destroy();
        return 'connected';
      },
      (e: unknown) => e,
    );
    if (result !== 'connected') {
      expect(result).toBeInstanceOf(AllAttemptsFailedError);
      expect((result as AllAttemptsFailedError).attempts[0]).toMatchObject({ outcome: 'connect' });
      expect((result as Error).message).toContain('ECONNREFUSED');
    }
  });

  it('spreads long-lived connections evenly with least connections, where round robin does not', async () => {
    const started = await echoServers(3);
    const urls = started.map((s) => s.url);
    const scenario = async (p: BackendPool): Promise<number[]> => {
      const first = [];
      for (let i = 0; i < 6; i++) first.push(await open(p));
      // Both connections on the first backend end; two new ones arrive.
      const onFirst = first.filter((s) => s.backend.url === urls[0]);
      expect(onFirst).toHaveLength(2);
      await Promise.all(
        onFirst.map((s) => {
          const done = closed(s);
          s.destroy();
          return done;
        }),
      );
      for (let i = 0; i < 2; i++) await open(p);
      return counts(p);
    };
    expect(await scenario(pool(urls, new LeastConnections()))).toEqual([2, 2, 2]);
    const rr = await scenario(pool(urls, new RoundRobin({ startIndex: 0 })));
    expect(rr.reduce((x, y) => x + y)).toBe(6);
    expect(Math.max(...rr) - Math.min(...rr)).toBeGreaterThanOrEqual(2);
  });

  it('reports a reset connection as a failure and releases its lease', async () => {
    const [a] = await echoServers(1);
    const p = pool([a!.url]);
    const s = await open(p);
    s.on('error', () => {});
    const done = closed(s);
    for (const peer of a!.sockets) peer.resetAndDestroy();
    await done;
    const b = p.get(s.backend.id)!;
    expect(b.inFlight).toBe(0);
    expect(b.failures).toBe(1);
  });

  it('refuses bad options with a typed error', async () => {
    const [a] = await echoServers(1);
    const p = pool([a!.url]);
    await expect(connect(p, { connectTimeoutMs: 0 })).rejects.toThrow(/connectTimeoutMs/);
    await expect(connect(p, { maxAttempts: 1.5 })).rejects.toThrow(/maxAttempts/);
    await expect(connect(p, { bogus: 1 } as never)).rejects.toThrow(/bogus/);
    await expect(connect({} as never)).rejects.toThrow(/BackendPool/);
    expect(counts(p)).toEqual([0]);
  });

  it('does not retry an aborted connect', async () => {
    const [a] = await echoServers(1);
    const p = pool([a!.url]);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(connect(p, { signal: controller.signal })).rejects.toThrow('stop');
    expect(p.backends()[0]!.requests).toBe(0);
  });
});

describe('connect() over TLS', () => {
  const tlsDir = new URL('../fixtures/tls/', import.meta.url);
  const cert = readFileSync(new URL('cert.pem', tlsDir));
  const key = readFileSync(new URL('key.pem', tlsDir));

  it('opens a verified TLS connection when asked, and refuses an untrusted certificate', async () => {
    const server = createTlsServer({ cert, key }, (s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const p = pool([`tcp://127.0.0.1:${port}`]);
      const s = await open(p, { tls: { ca: cert, servername: 'localhost' } });
      const echoed = new Promise<string>((r) => s.once('data', (d) => r(String(d))));
      s.write('secure');
      expect(await echoed).toBe('secure');
      expect((s as import('node:tls').TLSSocket).encrypted).toBe(true);
      const done = closed(s);
      s.end();
      await done;
      expect(p.backends()[0]!.inFlight).toBe(0);

      // Without the CA the handshake fails: a connect failure, not a socket handed out.
      const error = await connect(p, { tls: true, connectTimeoutMs: 1000 }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AllAttemptsFailedError);
      expect(p.backends()[0]!.failures).toBe(1);
      expect(p.backends()[0]!.inFlight).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('sends no SNI to a backend addressed by IP (RFC 6066 §3), and still verifies its certificate', async () => {
    const seen: (string | false | null)[] = [];
    const server = createTlsServer({ cert, key }, (s) => {
      seen.push(s.servername);
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      const p = pool(
        [`tcp://127.0.0.1:${port}`, `tcp://localhost:${port}`],
        new RoundRobin({ startIndex: 0 }),
      );
      for (let i = 0; i < 2; i++) {
        const s = await open(p, { tls: { ca: cert } });
        const echoed = new Promise<string>((r) => s.once('data', (d) => r(String(d))));
        s.write('sni');
        expect(await echoed).toBe('sni');
        const done = closed(s);
        s.end();
        await done;
      }
      // The IP backend gets no server name; the named one gets its name.
      expect(seen).toEqual([false, 'localhost']);
      // A servername given by the caller is sent as it is.
      const s = await open(p, { tls: { ca: cert, servername: 'localhost' } });
      const done = closed(s);
      s.end();
      await done;
      expect(seen[2]).toBe('localhost');
      expect(warnings.filter((w) => String(w.message).includes('RFC 6066'))).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
