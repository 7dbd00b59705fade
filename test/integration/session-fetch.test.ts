import { afterEach, describe, expect, it } from 'vitest';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import {
  BackendPool,
  RoundRobin,
  type SessionEvents,
  SessionPersistenceManager,
  type SessionPersistenceOptions,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { closeAll, startServers, type TestServer } from '../support/servers.js';

const SECRET = 'integration-secret-of-32-bytes!!';

describe('SessionPersistenceManager through the balanced fetch (real loopback servers)', () => {
  let servers: TestServer[] = [];
  const closers: Array<() => Promise<unknown>> = [];

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await closeAll(servers);
    servers = [];
  });

  async function setup(options: SessionPersistenceOptions, hookOptions = {}) {
    servers = await startServers(3);
    const pool = new BackendPool({
      backends: servers.map((s) => s.url),
      algorithm: new RoundRobin(),
      skew: false,
    });
    const sessions = new SessionPersistenceManager(pool, options);
    const fetch = createBalancedFetch(pool, {
      ...sessions.forFetch(hookOptions),
      retries: 2,
      backoffBaseMs: 1,
      retryBudget: false,
    });
    closers.push(() => pool.close());
    closers.push(() => sessions.close());
    return { pool, sessions, fetch };
  }

  it('key mode: each user sticks to one server while plain round robin rotates', async () => {
    const { fetch, pool } = await setup(
      {},
      {
        key: (req: Request) => req.headers.get('x-user-id') ?? undefined,
      },
    );
    const served = new Map<string, Set<string>>();
    for (let round = 0; round < 4; round++) {
      for (const user of ['ann', 'bob', 'cat', 'dan']) {
        const res = await fetch('/hello', { headers: { 'x-user-id': user } });
        expect(res.status).toBe(200);
        const body = await res.text();
        if (!served.has(user)) served.set(user, new Set());
        served.get(user)!.add(body);
      }
    }
    for (const bodies of served.values()) expect(bodies.size).toBe(1);
    // Anonymous calls are balanced as before.
    const anonymous = new Set<string>();
    for (let i = 0; i < 3; i++) anonymous.add(await (await fetch('/hello')).text());
    expect(anonymous.size).toBe(3);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('cookie mode: a response checked and dropped releases its lease after unreadBodyTimeoutMs', async () => {
    servers = await startServers(2);
    const pool = new BackendPool({ backends: servers.map((s) => s.url), skew: false });
    const sessions = new SessionPersistenceManager(pool, { cookie: true, secret: SECRET });
    closers.push(() => pool.close());
    closers.push(() => sessions.close());
    // The unread timer runs on the fetch's own clock; the sockets are real.
    const clock = new ManualClock();
    const fetch = createBalancedFetch(pool, {
      ...sessions.forFetch(),
      clock,
      unreadBodyTimeoutMs: 1000,
    });
    for (let i = 0; i < 4; i++) {
      // A real fetch response has immutable headers: the hook rebuilds it around the body.
      const res = await fetch('/');
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toMatch(/^SERVERID=/);
    }
    expect(pool.stats().inFlight).toBe(4);
    await clock.advanceAsync(1000);
    expect(pool.stats().inFlight).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
    // Nothing in flight: draining completes without waiting out the grace period.
    const drained = await pool.drain(pool.backends()[0]!.id, { graceMs: 60_000 });
    expect(drained).toMatchObject({ completed: true, remaining: 0 });
  });

  it('cookie mode: issues a signed cookie once, honours it, and moves it when the server dies', async () => {
    const { fetch, sessions } = await setup({ cookie: { name: 'lb' }, secret: SECRET });
    const rebound: Parameters<SessionEvents['rebound']>[0][] = [];
    sessions.on('rebound', (e) => rebound.push(e));

    const first = await fetch('/');
    const body = await first.text();
    const setCookie = first.headers.get('set-cookie');
    expect(setCookie).toMatch(/^lb=[A-Za-z0-9_.-]+; Path=\/; HttpOnly; SameSite=Lax$/);
    for (const s of servers) expect(setCookie).not.toContain(String(s.port));
    const cookie = setCookie!.split(';')[0]!;

    for (let i = 0; i < 5; i++) {
      const res = await fetch('/', { headers: { cookie: `a=1; ${cookie}` } });
      expect(await res.text()).toBe(body);
      expect(res.headers.get('set-cookie')).toBeNull();
    }

    // The pinned server goes away: the attempt is refused, the retry lands elsewhere, and the
    // response carries a cookie for the new server.
    await servers[Number(body)]!.close();
    const moved = await fetch('/', { headers: { cookie } });
    expect(moved.status).toBe(200);
    const newBody = await moved.text();
    expect(newBody).not.toBe(body);
    const newCookie = moved.headers.get('set-cookie')?.split(';')[0];
    expect(newCookie).toBeDefined();
    expect(newCookie).not.toBe(cookie);
    expect(rebound).toHaveLength(1);
    for (let i = 0; i < 3; i++) {
      const res = await fetch('/', { headers: { cookie: newCookie! } });
      expect(await res.text()).toBe(newBody);
    }
  });

  it('cookie mode: a forged cookie is ignored and replaced', async () => {
    const { fetch, sessions } = await setup({ cookie: true, secret: SECRET });
    const rejected: string[] = [];
    sessions.on('cookieRejected', ({ reason }) => rejected.push(reason));
    const res = await fetch('/', {
      headers: { cookie: 'SERVERID=AAAAAAAAAAAA.0.0.forgedforgedforgedforg' },
    });
    await res.text();
    expect(res.headers.get('set-cookie')).toMatch(/^SERVERID=/);
    expect(rejected).toEqual(['bad-signature']);
  });
});
