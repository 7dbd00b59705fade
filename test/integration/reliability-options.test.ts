/**
 * The property-based bad-input suite (see test/unit/reliability-options.test.ts) for the rows
 * that need real parts: `connect()` and `tcpProbe()` against a TCP server on 127.0.0.1, and the
 * Redis session store against a real redis-server. DNS sources answer through a stub resolver,
 * so no query leaves the machine. Every socket, client and server is closed after the file.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { checkRow } from '../support/option-harness.js';
import { NODE, NODE_SERVICES } from '../support/option-table-node.js';
import { hasRedis, type RedisServer, startRedis } from '../support/redis.js';

const needsRedis = (name: string) => name.includes('Redis');

describe('every option of loadwise/node and loadwise/redis, under arbitrary values', () => {
  let server: Server;
  const sockets = new Set<Socket>();
  let redis: RedisServer | undefined;
  let client: Redis | undefined;

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    NODE_SERVICES.tcpPort = (server.address() as { port: number }).port;
    if (hasRedis()) {
      redis = await startRedis();
      NODE_SERVICES.redisUrl = redis.url;
      client = new Redis(redis.port, '127.0.0.1', { lazyConnect: true });
      await client.connect();
      NODE_SERVICES.redisClient = client;
    }
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await client?.quit();
    await redis?.stop();
  });

  for (const target of NODE) {
    it.runIf(!needsRedis(target.name) || hasRedis())(target.name, () =>
      checkRow(target).then(() => undefined),
    );
  }
});
