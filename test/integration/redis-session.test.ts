import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BackendPool,
  LoadBalancerConfigError,
  PoolClosedError,
  RandomPick,
  type SessionEvents,
  SessionPersistenceManager,
  type SessionPersistenceOptions,
  SessionStoreError,
} from '../../src/index.js';
import { RedisSessionStore } from '../../src/redis/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { hasRedis, type RedisServer, startRedis } from '../support/redis.js';

const URLS = Array.from({ length: 5 }, (_, i) => `http://10.1.0.${i + 1}:8080`);

describe.runIf(hasRedis())('RedisSessionStore against a real redis-server', () => {
  let server: RedisServer;
  let admin: Redis;
  const adminErrors: Error[] = [];
  const cleanup: Array<() => Promise<unknown> | unknown> = [];

  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
    // The kill test takes this connection down too; ioredis reconnects it on its own.
    admin.on('error', (error: Error) => adminErrors.push(error));
    await admin.connect();
  });

  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    if (server.running && admin.status === 'ready') await admin.flushall();
  });

  afterAll(async () => {
    await admin?.quit().catch(() => admin.disconnect());
    await server?.stop();
  });

  async function store(prefix?: string, redis = {}): Promise<RedisSessionStore> {
    const s = await RedisSessionStore.connect({
      url: server.url,
      ...(prefix === undefined ? {} : { prefix }),
      redis,
    });
    cleanup.push(() => s.close());
    return s;
  }

  function replica(s: RedisSessionStore, seed: number, options: SessionPersistenceOptions = {}) {
    // Random picks with different seeds: without the shared table, replicas would disagree.
    const pool = new BackendPool({
      backends: URLS,
      algorithm: new RandomPick(),
      random: seededRandom(seed),
      skew: false,
    });
    const sessions = new SessionPersistenceManager(pool, {
      store: s,
      // Generous, so a loaded machine never turns a slow answer into a fallback here.
      storeTimeoutMs: 2000,
      ...options,
    });
    cleanup.push(() => pool.close());
    cleanup.push(() => sessions.close());
    return { pool, sessions };
  }

  async function call(sessions: SessionPersistenceManager, key: string) {
    const r = await sessions.acquire(key);
    r.lease.release({ ok: true, latencyMs: 1 });
    return { id: r.lease.backend.id, status: r.status };
  }

  it('stores under the prefix, expires in Redis itself (PX), and deletes', async () => {
    const s = await store('test:sess:');
    await s.set('user|1', { backend: '10.1.0.1:8080', createdAt: 1234.5 }, 1500);
    expect(await admin.get('test:sess:user|1')).toBe('1234.5|10.1.0.1:8080');
    const pttl = await admin.pttl('test:sess:user|1');
    expect(pttl).toBeGreaterThan(1000);
    expect(pttl).toBeLessThanOrEqual(1500);
    expect(await s.get('user|1')).toEqual({ backend: '10.1.0.1:8080', createdAt: 1234.5 });
    expect(await s.get('nobody')).toBeUndefined();
    expect(await s.delete('user|1')).toBe(true);
    expect(await s.delete('user|1')).toBe(false);
    expect(await s.get('user|1')).toBeUndefined();
    await s.set('short', { backend: 'b', createdAt: 0 }, 30);
    await new Promise((r) => setTimeout(r, 80));
    expect(await admin.exists('test:sess:short')).toBe(0);
  });

  it('ignores values it did not write', async () => {
    const s = await store();
    await admin.set('loadwise:session:junk', 'no-separator');
    expect(await s.get('junk')).toBeUndefined();
  });

  it('works with a client owned by the caller and leaves it open', async () => {
    const client = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
    client.on('error', (error: Error) => adminErrors.push(error));
    await client.connect();
    cleanup.push(() => client.quit());
    const s = new RedisSessionStore({ client, prefix: 'own:' });
    await s.set('k', { backend: 'b', createdAt: 1 }, 10_000);
    expect(await admin.get('own:k')).toBe('1|b');
    await s.close();
    expect(client.status).toBe('ready');
  });

  it('validates its options and refuses calls after close', async () => {
    expect(() => new RedisSessionStore({} as never)).toThrow(LoadBalancerConfigError);
    expect(() => new RedisSessionStore({ client: admin, prefix: 5 } as never)).toThrow(
      LoadBalancerConfigError,
    );
    expect(() => new RedisSessionStore({ client: admin, db: 1 } as never)).toThrow(
      LoadBalancerConfigError,
    );
    await expect(RedisSessionStore.connect({ url: 'http://x' })).rejects.toBeInstanceOf(
      LoadBalancerConfigError,
    );
    const s = await store();
    await expect(s.set('k', { backend: 'b', createdAt: 0 }, 0)).rejects.toBeInstanceOf(
      LoadBalancerConfigError,
    );
    await s.close();
    await s.close(); // idempotent
    await expect(s.get('k')).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('connect() rejects when Redis cannot be reached, naming the address and the reason', async () => {
    const dead = await startRedis();
    const url = dead.url;
    await dead.stop();
    const failed = RedisSessionStore.connect({
      url,
      connectTimeoutMs: 500,
      redis: { retryStrategy: () => null },
    });
    await expect(failed).rejects.toBeInstanceOf(SessionStoreError);
    const error = (await failed.catch((e: unknown) => e)) as SessionStoreError;
    expect(error.operation).toBe('connect');
    expect(error.code).toBe('LB_SESSION_STORE');
    // ioredis itself rejects with "Connection is closed."; the reason is its first error event.
    expect(error.message).toContain(`Session store connect failed (${url}): connect ECONNREFUSED`);
    expect(error.message).toContain('Check that Redis is running');
    expect((error.cause as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('connect() never shows the password of the URL', async () => {
    const dead = await startRedis();
    const { port } = new URL(dead.url);
    await dead.stop();
    const failed = RedisSessionStore.connect({
      url: `redis://user:s3cret@127.0.0.1:${port}`,
      connectTimeoutMs: 500,
      redis: { retryStrategy: () => null },
    });
    const error = (await failed.catch((e: unknown) => e)) as SessionStoreError;
    expect(error).toBeInstanceOf(SessionStoreError);
    expect(error.message).not.toContain('s3cret');
  });

  it('two pools sharing one Redis agree on every session’s backend', async () => {
    const a = replica(await store(), 1);
    const b = replica(await store(), 2);
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const bound = new Map<string, string>();
    for (const [i, key] of keys.entries()) {
      // Each session starts on either replica; every later call, on both, goes to that backend.
      const first = await call(i % 2 === 0 ? a.sessions : b.sessions, key);
      expect(first.status).toBe('new');
      bound.set(key, first.id);
    }
    expect(new Set(bound.values()).size).toBeGreaterThan(2);
    for (let round = 0; round < 3; round++) {
      for (const key of keys) {
        expect(await call(a.sessions, key)).toEqual({ id: bound.get(key), status: 'kept' });
        expect(await call(b.sessions, key)).toEqual({ id: bound.get(key), status: 'kept' });
      }
    }
    // A failover seen by one replica is seen by the other.
    const key = keys[0]!;
    const old = bound.get(key)!;
    a.pool.setHealthy(old, false);
    b.pool.setHealthy(old, false);
    const moved = await call(b.sessions, key);
    expect(moved.status).toBe('rebound');
    expect(await call(a.sessions, key)).toEqual({ id: moved.id, status: 'kept' });
  });

  it('keeps calls succeeding when redis-server is killed, and resumes stickiness after a restart', async () => {
    const s = await store(undefined, { retryStrategy: () => 50 });
    const clientErrors: unknown[] = [];
    s.on('clientError', (error) => clientErrors.push(error));
    const { sessions } = replica(s, 3, { storeTimeoutMs: 200, storeRetryMs: 100 });
    const events: Array<keyof SessionEvents> = [];
    for (const name of ['storeError', 'storeDown', 'storeUp'] as const) {
      sessions.on(name, () => events.push(name));
    }
    const { id } = await call(sessions, 'k');
    expect(await call(sessions, 'k')).toEqual({ id, status: 'kept' });

    await server.kill();
    const during: string[] = [];
    for (let i = 0; i < 20; i++) {
      const started = Date.now();
      const r = await call(sessions, `k${i % 3}`); // never rejects
      during.push(r.status);
      // Bounded by storeTimeoutMs (plus scheduling slack), never by a Redis timeout.
      expect(Date.now() - started).toBeLessThan(1500);
    }
    expect(during.every((st) => st === 'unavailable')).toBe(true);
    expect(events).toContain('storeError');
    expect(events.filter((e) => e === 'storeDown')).toHaveLength(1);
    // ioredis keeps reconnecting on its own; the store reports (not prints) each failure.
    const waitUntil = Date.now() + 5000;
    while (clientErrors.length === 0 && Date.now() < waitUntil) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(clientErrors.length).toBeGreaterThan(0);

    await server.restart(); // empty: no persistence
    const deadline = Date.now() + 10_000;
    let first: { id: string; status: string } | undefined;
    while (Date.now() < deadline) {
      const r = await call(sessions, 'k');
      if (r.status !== 'unavailable') {
        first = r;
        break;
      }
      await new Promise((r2) => setTimeout(r2, 50));
    }
    // The restarted server is empty, so the session is bound anew: either by this call ('new'),
    // or by an earlier call whose read timed out while its write went through ('kept').
    expect(['new', 'kept']).toContain(first?.status);
    expect(events).toContain('storeUp');
    for (let i = 0; i < 5; i++) {
      expect(await call(sessions, 'k')).toEqual({ id: first!.id, status: 'kept' });
    }
  });

  it('one key of the wrong type (WRONGTYPE) is a miss for that key: the store stays up', async () => {
    const s = await store();
    const keyErrors: unknown[] = [];
    s.on('keyError', (e) => keyErrors.push(e));
    const { sessions } = replica(s, 4, { storeRetryMs: 60_000 });
    const events: Array<keyof SessionEvents> = [];
    for (const name of ['storeError', 'storeDown'] as const)
      sessions.on(name, () => events.push(name));
    await admin.lpush('loadwise:session:list-key', 'x');
    await admin.hset('loadwise:session:hash-key', 'f', 'v');

    const first = await call(sessions, 'list-key');
    expect(first.status).toBe('new');
    expect(await call(sessions, 'list-key')).toEqual({ id: first.id, status: 'kept' });
    expect(await admin.type('loadwise:session:list-key')).toBe('string');
    expect((await call(sessions, 'hash-key')).status).toBe('new');
    // Every other session still sticks: the store was never marked down.
    const other = await call(sessions, 'plain-key');
    expect(other.status).toBe('new');
    expect(await call(sessions, 'plain-key')).toEqual({ id: other.id, status: 'kept' });
    expect(events).toEqual([]);
    expect(sessions.storeDown).toBe(false);
    expect(keyErrors).toEqual([
      expect.objectContaining({ operation: 'get', key: 'list-key' }),
      expect.objectContaining({ operation: 'get', key: 'hash-key' }),
    ]);
    // Reading it straight from the store answers a miss too.
    await admin.sadd('loadwise:session:set-key', 'x');
    expect(await s.get('set-key')).toBeUndefined();
  });

  it('two replicas binding one new session at once agree: the first binding wins', async () => {
    const a = replica(await store(), 11);
    const b = replica(await store(), 12);
    const keys = Array.from({ length: 30 }, (_, i) => `race-${i}`);
    // A replica that lost the race takes a second lease, on the winner's backend.
    let acquires = 0;
    a.pool.on('acquire', () => acquires++);
    b.pool.on('acquire', () => acquires++);
    for (const key of keys) {
      // Both read "no session" before either writes, then both bind.
      const [ra, rb] = await Promise.all([a.sessions.acquire(key), b.sessions.acquire(key)]);
      ra.lease.release();
      rb.lease.release();
      const stored = (await admin.get(`loadwise:session:${key}`))?.split('|')[1];
      expect(ra.lease.backend.id).toBe(stored);
      expect(rb.lease.backend.id).toBe(stored);
      // The loser reports 'kept' (two picks of one backend in one millisecond both read 'new').
      expect([ra.status, rb.status]).toContain('new');
      expect(['new', 'kept']).toEqual(expect.arrayContaining([ra.status, rb.status]));
    }
    // With 5 backends picked at random, most races picked two different backends.
    expect(acquires - 2 * keys.length).toBeGreaterThan(keys.length / 2);
    // And every later call, on both replicas, goes there.
    for (const key of keys) {
      const stored = (await admin.get(`loadwise:session:${key}`))?.split('|')[1];
      expect(await call(a.sessions, key)).toEqual({ id: stored, status: 'kept' });
      expect(await call(b.sessions, key)).toEqual({ id: stored, status: 'kept' });
    }
  });

  it('a rebind raced by another replica keeps the first rebind', async () => {
    const a = replica(await store(), 21);
    const b = replica(await store(), 22);
    const { id: old } = await call(a.sessions, 'moving');
    a.pool.setHealthy(old, false);
    b.pool.setHealthy(old, false);
    const [ra, rb] = await Promise.all([
      a.sessions.acquire('moving'),
      b.sessions.acquire('moving'),
    ]);
    ra.lease.release();
    rb.lease.release();
    const stored = (await admin.get('loadwise:session:moving'))?.split('|')[1];
    expect(stored).not.toBe(old);
    expect(ra.lease.backend.id).toBe(stored);
    expect(rb.lease.backend.id).toBe(stored);
  });

  it('a stored binding created in the future is not a session: it never outlives maxLifeMs', async () => {
    const clock = new ManualClock(1_000_000);
    const s = await store();
    const { sessions } = replica(s, 5, { clock, maxLifeMs: 60_000, ttlMs: 30_000 });
    // Written by a replica whose clock is a day ahead (or by someone with access to Redis).
    await admin.set('loadwise:session:ahead', `${clock.now() + 86_400_000}|10.1.0.5:8080`);
    const r = await call(sessions, 'ahead');
    expect(r.status).toBe('new');
    const [createdAt] = (await admin.get('loadwise:session:ahead'))!.split('|');
    expect(Number(createdAt)).toBe(clock.now());
    // Within the default one-minute allowance, a stamp from a clock slightly ahead still counts.
    await admin.set('loadwise:session:slightly', `${clock.now() + 30_000}|10.1.0.5:8080`);
    expect(await call(sessions, 'slightly')).toEqual({ id: '10.1.0.5:8080', status: 'kept' });
  });
});
