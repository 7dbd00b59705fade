/**
 * Session time stamps from the future (cookies and stored bindings). Time is a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  MemorySessionStore,
  RoundRobin,
  type SessionEvents,
  SessionPersistenceManager,
  type SessionPersistenceOptions,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { expectConfigErrors } from '../support/config-errors.js';

const URLS = ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80'];
const IDS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'];
const DAY = 86_400_000;

function replica(clock: ManualClock, options: SessionPersistenceOptions = {}) {
  const pool = new BackendPool({
    backends: URLS,
    algorithm: new RoundRobin(),
    clock,
    random: seededRandom(1),
    skew: false,
  });
  const sessions = new SessionPersistenceManager(pool, options);
  const rejected: SessionEvents['cookieRejected'] extends (e: infer E) => void ? E[] : never = [];
  sessions.on('cookieRejected', (e) => rejected.push(e));
  return { pool, sessions, rejected };
}

async function call(
  sessions: SessionPersistenceManager,
  input: Parameters<SessionPersistenceManager['acquire']>[0],
) {
  const r = await sessions.acquire(input);
  r.lease.release({ ok: true, latencyMs: 1 });
  return { id: r.lease.backend.id, status: r.status, setCookie: r.setCookie };
}

const cookieOf = (setCookie: string | undefined): string => (setCookie ?? '').split(';')[0] ?? '';
const stamp = (ms: number) => Math.floor(ms).toString(36);

/** The same cookie with other issue and last-use stamps (an unsigned cookie can be edited). */
function forge(cookie: string, createdAt: number, seenAt: number): string {
  const [name, value] = cookie.split('=') as [string, string];
  const [token] = value.split('.');
  return `${name}=${token}.${stamp(createdAt)}.${stamp(seenAt)}`;
}

describe('cookie time stamps from the future', () => {
  it('an unsigned cookie stamped in the future is refused, not honoured past ttlMs and maxLifeMs', async () => {
    const clock = new ManualClock(1_000_000);
    const { sessions, rejected } = replica(clock, { cookie: true, ttlMs: 60_000, maxLifeMs: DAY });
    const issued = await call(sessions, {});
    const cookie = cookieOf(issued.setCookie);
    // Stamped a year ahead: neither the idle TTL nor the maximum life would ever run out.
    const forged = forge(cookie, clock.now() + 365 * DAY, clock.now() + 365 * DAY);
    const r = await call(sessions, { cookie: forged });
    expect(r.status).toBe('new');
    expect(r.setCookie).toBeDefined();
    expect(rejected).toEqual([{ reason: 'future-timestamp' }]);
    // Long after the session's maximum life, the forged cookie is still refused.
    clock.advance(2 * DAY);
    expect((await call(sessions, { cookie: forged })).status).toBe('new');
    expect(rejected).toHaveLength(2);
    await sessions.close();
  });

  it('refuses a last-use stamp in the future on its own (the idle TTL)', async () => {
    const clock = new ManualClock(1_000_000);
    const { sessions, rejected } = replica(clock, { cookie: true, ttlMs: 60_000 });
    const cookie = cookieOf((await call(sessions, {})).setCookie);
    const forged = forge(cookie, clock.now(), clock.now() + DAY);
    expect((await call(sessions, { cookie: forged })).status).toBe('new');
    expect(rejected).toEqual([{ reason: 'future-timestamp' }]);
    await sessions.close();
  });

  it('allows clockSkewMs (default one minute) for replicas whose clocks are a little ahead', async () => {
    const clock = new ManualClock(1_000_000);
    const { sessions, rejected } = replica(clock, { cookie: true });
    const first = await call(sessions, {});
    const cookie = cookieOf(first.setCookie);
    const ahead = forge(cookie, clock.now() + 59_000, clock.now() + 59_000);
    expect(await call(sessions, { cookie: ahead })).toMatchObject({ id: first.id, status: 'kept' });
    const tooFar = forge(cookie, clock.now() + 60_001, clock.now() + 60_001);
    expect((await call(sessions, { cookie: tooFar })).status).toBe('new');
    expect(rejected).toEqual([{ reason: 'future-timestamp' }]);

    const strict = replica(clock, { cookie: true, clockSkewMs: 0 });
    const mine = cookieOf((await call(strict.sessions, {})).setCookie);
    const oneAhead = forge(mine, clock.now() + 1, clock.now() + 1);
    expect((await call(strict.sessions, { cookie: oneAhead })).status).toBe('new');
    expect(strict.rejected).toEqual([{ reason: 'future-timestamp' }]);
    await sessions.close();
    await strict.sessions.close();
  });

  it('a signed cookie from a replica whose clock runs a day ahead is refused too', async () => {
    const secret = 'unit-test-session-secret-skew-5e8a1f';
    const ahead = new ManualClock(1_000_000 + DAY);
    const here = new ManualClock(1_000_000);
    const a = replica(ahead, { cookie: true, secret });
    const b = replica(here, { cookie: true, secret });
    const cookie = cookieOf((await call(a.sessions, {})).setCookie);
    expect((await call(b.sessions, { cookie })).status).toBe('new');
    expect(b.rejected).toEqual([{ reason: 'future-timestamp' }]);
    await a.sessions.close();
    await b.sessions.close();
  });

  it('validates clockSkewMs', () => {
    const pool = new BackendPool({ backends: URLS, skew: false });
    expectConfigErrors([
      [() => new SessionPersistenceManager(pool, { clockSkewMs: -1 }), 'clockSkewMs'],
      [() => new SessionPersistenceManager(pool, { clockSkewMs: Number.NaN }), 'clockSkewMs'],
    ]);
    return pool.close();
  });
});

describe('stored bindings from the future', () => {
  it('a record created in the future is no session: it is replaced, not kept for ever', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new MemorySessionStore({ clock, cleanupIntervalMs: 0 });
    const { sessions } = replica(clock, { store, maxLifeMs: DAY, ttlMs: 60_000 });
    store.set('user-1', { backend: IDS[2]!, createdAt: clock.now() + 365 * DAY }, 60_000);
    const r = await call(sessions, 'user-1');
    expect(r.status).toBe('new');
    expect(store.get('user-1')).toEqual({ backend: r.id, createdAt: clock.now() });
    // The new binding ends at its maximum life like any other.
    for (let t = 0; t < DAY; t += 50_000) {
      clock.advance(50_000);
      expect((await call(sessions, 'user-1')).status).toBe(t + 50_000 >= DAY ? 'new' : 'kept');
    }
    await sessions.close();
    store.close();
  });

  it('a record created within clockSkewMs ahead counts as a session', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new MemorySessionStore({ clock, cleanupIntervalMs: 0 });
    const { sessions } = replica(clock, { store });
    store.set('user-2', { backend: IDS[2]!, createdAt: clock.now() + 30_000 }, 60_000);
    expect(await call(sessions, 'user-2')).toEqual({
      id: IDS[2],
      status: 'kept',
      setCookie: undefined,
    });
    await sessions.close();
    store.close();
  });
});
