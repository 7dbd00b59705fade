import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import { tcpProbe } from '../../src/node/tcp-probe.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock } from '../../src/testing/index.js';
import { unusedPort } from '../support/servers.js';

const servers: { server: Server; sockets: Set<Socket> }[] = [];
const pools: BackendPool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await Promise.all(
    servers.splice(0).map(
      ({ server, sockets }) =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          server.close(() => resolve());
        }),
    ),
  );
});

/** A TCP server on 127.0.0.1 that accepts connections and says nothing. */
async function listen(): Promise<{ port: number; accepted: () => number; open: () => number }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ server, sockets });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { port: address.port, accepted: () => accepted, open: () => sockets.size };
}

function poolFor(url: string): BackendPool {
  const pool = new BackendPool({ backends: [url], clock: new ManualClock(), skew: false });
  pools.push(pool);
  return pool;
}

async function until(condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('TCP connect probe (loadwise/node)', () => {
  it('passes when the port accepts a connection, and closes the connection', async () => {
    const server = await listen();
    const pool = poolFor(`http://127.0.0.1:${server.port}`);
    const checker = new HealthChecker(pool, {
      probe: tcpProbe(),
      intervalMs: 1000,
      timeoutMs: 500,
    });
    expect(checker.type).toBe('tcp');
    expect(checker.name).toBe('readiness:tcp');
    const [r] = await checker.checkNow();
    expect(r).toMatchObject({ ok: true, reason: `connected to 127.0.0.1:${server.port}` });
    expect(server.accepted()).toBe(1);
    await until(() => server.open() === 0);
  });

  it('fails on connection refused', async () => {
    const port = await unusedPort();
    const pool = poolFor(`http://127.0.0.1:${port}`);
    const checker = new HealthChecker(pool, {
      type: 'tcp',
      probe: tcpProbe(),
      intervalMs: 1000,
      timeoutMs: 500,
      unhealthyThreshold: 1,
    });
    const [r] = await checker.checkNow();
    expect(r?.ok).toBe(false);
    expect(r?.reason).toBe(`connect to 127.0.0.1:${port} failed: ECONNREFUSED`);
    expect(pool.backends()[0]?.state).toBe('unhealthy');
  });

  it('connects to a separate health port when told', async () => {
    const server = await listen();
    const closed = await unusedPort();
    const pool = poolFor(`http://127.0.0.1:${closed}`);
    const [r] = await new HealthChecker(pool, {
      probe: tcpProbe({ port: server.port, host: '127.0.0.1' }),
      intervalMs: 1000,
      timeoutMs: 500,
    }).checkNow();
    expect(r?.ok).toBe(true);
  });

  it('rejects at once with the reason of an aborted signal', async () => {
    const server = await listen();
    const pool = poolFor(`http://127.0.0.1:${server.port}`);
    const reason = new Error('stop');
    await expect(tcpProbe()(pool.backends()[0]!, AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(server.accepted()).toBe(0);
  });

  it.each([
    ['port 0', { port: 0 }, 'port'],
    ['a fractional port', { port: 80.5 }, 'port'],
    ['an empty host', { host: '' }, 'host'],
    ['an unknown option', { timeout: 5 }, 'TcpProbeOptions.timeout'],
  ])('rejects %s', (_name, options, field) => {
    let thrown: unknown;
    try {
      tcpProbe(options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(LoadBalancerConfigError);
    expect((thrown as LoadBalancerConfigError).field).toBe(field);
  });
});
