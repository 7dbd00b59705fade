import type { IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { HealthCheckTimeoutError } from '../../src/errors/health-check-timeout-error.js';
import { HealthChecker, type HealthCheckerOptions } from '../../src/health/health-checker.js';
import { httpProbe } from '../../src/health/probes.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock } from '../../src/testing/index.js';
import {
  closeAll,
  type Handler,
  respond,
  startServer,
  type TestServer,
  unusedPort,
} from '../support/servers.js';

const servers: TestServer[] = [];
const rawServers: { server: NetServer; sockets: Set<Socket> }[] = [];
const pools: BackendPool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await closeAll(servers.splice(0));
  await Promise.all(
    rawServers.splice(0).map(
      ({ server, sockets }) =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    ),
  );
});

async function serve(handler: Handler): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}

/** A raw TCP server that answers every request with `onData(socket)`. */
async function rawServe(onData: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {
      // The client side may see the reset first; the server side has nothing to report.
    });
    socket.once('data', () => onData(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  rawServers.push({ server, sockets });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

function poolFor(
  urls: string[],
  clock = new ManualClock(),
): { pool: BackendPool; clock: ManualClock } {
  const pool = new BackendPool({
    backends: urls,
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    skew: false,
  });
  pools.push(pool);
  return { pool, clock };
}

function checker(pool: BackendPool, options: HealthCheckerOptions = {}): HealthChecker {
  return new HealthChecker(pool, { intervalMs: 1000, timeoutMs: 500, jitter: 0, ...options });
}

/** Waits in real time (bounded) for socket I/O to happen. */
async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('HTTP probes against real servers', () => {
  it('passes on 200', async () => {
    const s = await serve(respond(200, 'ready'));
    const { pool } = poolFor([s.url]);
    const [r] = await checker(pool, { path: '/health/ready' }).checkNow();
    expect(r).toMatchObject({ ok: true, status: 200, reason: 'status 200' });
    expect(s.hits).toBe(1);
  });

  it('fails on 500 and reports the status', async () => {
    const s = await serve(respond(500, 'db down'));
    const { pool } = poolFor([s.url]);
    const [r] = await checker(pool).checkNow();
    expect(r).toMatchObject({ ok: false, status: 500, reason: 'status 500, expected 200-299' });
  });

  it.each([
    ['404', respond(404), 'status 404, expected 200-299'],
    ['a redirect (not followed)', respond(302, '', { location: '/login' }), 'status 302'],
  ])('fails on a wrong status: %s', async (_name, handler, reason) => {
    const s = await serve(handler);
    const { pool } = poolFor([s.url]);
    const [r] = await checker(pool).checkNow();
    expect(r?.ok).toBe(false);
    expect(r?.reason).toContain(reason);
    expect(s.hits).toBe(1);
  });

  it('takes a list of expected statuses', async () => {
    const s = await serve(respond(204, ''));
    const { pool } = poolFor([s.url]);
    const [strict] = await checker(pool, { expectedStatuses: [200] }).checkNow();
    const [lenient] = await checker(pool, { expectedStatuses: [200, 204] }).checkNow();
    expect(strict?.reason).toBe('status 204, expected 200');
    expect(lenient?.ok).toBe(true);
  });

  it('sends the method and headers, and resolves the path against the backend URL', async () => {
    const seen: { method: unknown; url: unknown; token: unknown }[] = [];
    const s = await serve((req: IncomingMessage, res) => {
      seen.push({ method: req.method, url: req.url, token: req.headers['x-health-token'] });
      res.end();
    });
    const { pool } = poolFor([`${s.url}/v1`]);
    await checker(pool, {
      method: 'HEAD',
      path: '/healthz',
      headers: { 'x-health-token': 't' },
    }).checkNow();
    await checker(pool, { path: 'healthz' }).checkNow();
    expect(seen).toEqual([
      { method: 'HEAD', url: '/healthz', token: 't' },
      { method: 'GET', url: '/v1/healthz', token: undefined },
    ]);
  });

  it('times out a hanging backend on the checker clock and aborts the request', async () => {
    let aborted = 0;
    const s = await serve((_req, res) => {
      res.on('close', () => aborted++);
    });
    const { pool, clock } = poolFor([s.url]);
    const pending = checker(pool, { timeoutMs: 400 }).checkNow();
    await until(() => s.hits === 1);
    await clock.advanceAsync(400);
    const [r] = await pending;
    expect(r?.ok).toBe(false);
    expect(r?.error).toBeInstanceOf(HealthCheckTimeoutError);
    expect(r?.durationMs).toBe(400);
    await until(() => aborted === 1);
  });

  it('times out a hanging backend on the system clock', async () => {
    const s = await serve(() => {});
    const pool = new BackendPool({ backends: [s.url], skew: false });
    pools.push(pool);
    const c = new HealthChecker(pool, { intervalMs: 1000, timeoutMs: 150 });
    const [r] = await c.checkNow();
    expect(r?.ok).toBe(false);
    expect(r?.reason).toBe('timed out after 150 ms');
    expect(r?.durationMs).toBeGreaterThanOrEqual(140);
    expect(r?.durationMs).toBeLessThan(1000);
    await c.close();
  });

  it('fails on connection refused', async () => {
    const port = await unusedPort();
    const { pool } = poolFor([`http://127.0.0.1:${port}`]);
    const [r] = await checker(pool).checkNow();
    expect(r?.ok).toBe(false);
    expect(r?.reason).toMatch(/ECONNREFUSED/);
    expect(r?.error).toBeInstanceOf(Error);
  });

  it('fails when the connection is reset in the middle of the response body', async () => {
    const url = await rawServe((socket) => {
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\npartial',
      );
      setTimeout(() => socket.resetAndDestroy(), 20);
    });
    const { pool } = poolFor([url]);
    const [r] = await checker(pool).checkNow();
    expect(r?.ok).toBe(false);
    expect(r?.status).toBe(200);
    expect(r?.reason).toMatch(/^response broke off after status 200/);
  });

  it('fails when the connection is reset before any response', async () => {
    const url = await rawServe((socket) => socket.resetAndDestroy());
    const { pool } = poolFor([url]);
    const [r] = await checker(pool).checkNow();
    expect(r?.ok).toBe(false);
    expect(r?.status).toBeUndefined();
    expect(r?.reason).toMatch(/fetch failed/);
  });

  it('accepts a prepared httpProbe and names the check after it', async () => {
    const s = await serve(respond(200));
    const { pool } = poolFor([s.url]);
    const c = checker(pool, { probe: httpProbe({ path: '/ready' }) });
    expect(c.type).toBe('http');
    const [r] = await c.checkNow();
    expect(r?.ok).toBe(true);
  });

  it('drives real probes from the ManualClock schedule', async () => {
    const s = await serve(respond(200));
    const { pool, clock } = poolFor([s.url]);
    const id = pool.backends()[0]!.id;
    const c = checker(pool, { unhealthyThreshold: 2, fastIntervalMs: 200 }).start();
    await clock.advanceAsync(0);
    await c.whenIdle();
    expect(s.hits).toBe(1);
    s.setHandler(respond(503));
    await clock.advanceAsync(1000);
    await c.whenIdle();
    expect(pool.get(id)?.state).toBe('healthy'); // one failure of two
    await clock.advanceAsync(200); // the fast interval while changing
    await c.whenIdle();
    expect(s.hits).toBe(3);
    expect(pool.get(id)?.state).toBe('unhealthy');
    await c.close();
    expect(clock.pendingTimers()).toBe(0);
  });
});
