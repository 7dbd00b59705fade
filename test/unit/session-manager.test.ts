import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  type BackendPoolOptions,
  getCookie,
  LoadBalancerConfigError,
  MemorySessionStore,
  PoolClosedError,
  RoundRobin,
  type SessionEvents,
  SessionPersistenceManager,
  type SessionPersistenceOptions,
  type SessionRecord,
  type SessionStore,
  SessionStoreError,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

const SECRET = 'unit-test-session-secret-s-9b2e6d41';
const URLS = ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80'];
const IDS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'];

function setup(options: SessionPersistenceOptions = {}, poolOptions: BackendPoolOptions = {}) {
  const clock = new ManualClock(0);
  const pool = new BackendPool({
    backends: URLS,
    algorithm: new RoundRobin(),
    clock,
    random: seededRandom(1),
    skew: false,
    ...poolOptions,
  });
  const sessions = new SessionPersistenceManager(pool, options);
  const events: { name: keyof SessionEvents; payload: unknown }[] = [];
  for (const name of [
    'bound',
    'rebound',
    'storeError',
    'storeDown',
    'storeUp',
    'cookieRejected',
    'purged',
  ] as const) {
    sessions.on(name, (payload?: unknown) => events.push({ name, payload }));
  }
  const of = (name: keyof SessionEvents) =>
    events.filter((e) => e.name === name).map((e) => e.payload as Record<string, unknown>);
  return { clock, pool, sessions, events, of };
}

/** Acquires, releases at once, and returns the backend id and status. */
async function call(
  sessions: SessionPersistenceManager,
  input: Parameters<SessionPersistenceManager['acquire']>[0],
) {
  const r = await sessions.acquire(input);
  r.lease.release({ ok: true, latencyMs: 1 });
  return { id: r.lease.backend.id, status: r.status, rebound: r.rebound, setCookie: r.setCookie };
}

/** The `name=value` part of a Set-Cookie header, as a browser would send it back. */
const cookieOf = (setCookie: string | undefined) => setCookie?.split(';')[0];

describe('SessionPersistenceManager: key-based affinity', () => {
  it('pins each key to the backend of its first call, across other traffic', async () => {
    const { sessions, pool, of } = setup();
    const first = new Map<string, string>();
    for (let i = 0; i < 9; i++) {
      const r = await call(sessions, `user-${i}`);
      expect(r.status).toBe('new');
      first.set(`user-${i}`, r.id);
    }
    // Round robin spread the new sessions over all three backends.
    expect(new Set(first.values()).size).toBe(3);
    for (let round = 0; round < 3; round++) {
      for (const [key, id] of first) {
        const r = await call(sessions, { key });
        expect(r).toMatchObject({ id, status: 'kept', rebound: false });
        expect(pool.acquire().backend.id).toBeDefined(); // interleaved unsticky traffic
      }
    }
    expect(of('bound')).toHaveLength(9);
    expect(of('rebound')).toHaveLength(0);
    await sessions.close();
  });

  it('lets the TTL slide with use and expires idle sessions', async () => {
    const { sessions, clock } = setup({ ttlMs: 1000 });
    const { id } = await call(sessions, 'k');
    for (let i = 0; i < 10; i++) {
      clock.advance(900);
      expect(await call(sessions, 'k')).toMatchObject({ id, status: 'kept' });
    }
    clock.advance(1001);
    expect((await call(sessions, 'k')).status).toBe('new');
    await sessions.close();
  });

  it('ends a binding at its absolute maximum life, however busy', async () => {
    const { sessions, clock } = setup({ ttlMs: 1000, maxLifeMs: 2500 });
    await call(sessions, 'k');
    const statuses: string[] = [];
    for (let t = 500; t <= 3000; t += 500) {
      clock.advance(500);
      statuses.push((await call(sessions, 'k')).status);
    }
    // t = 500..2000 kept; at 2500 the life is over: a new binding, kept again at 3000.
    expect(statuses).toEqual(['kept', 'kept', 'kept', 'kept', 'new', 'kept']);
    await sessions.close();
  });

  it.each([
    [
      'unhealthy',
      (p: BackendPool, id: string) => p.setHealthy(id, false),
      'pinned backend is unhealthy',
    ],
    ['ejected', (p: BackendPool, id: string) => p.eject(id, 10_000), 'pinned backend is ejected'],
  ])(
    'rebinds when the pinned backend is %s, and keeps the new binding',
    async (_s, fail, reason) => {
      const { sessions, pool, of } = setup();
      const { id: before } = await call(sessions, 'k');
      fail(pool, before);
      const r = await call(sessions, 'k');
      expect(r.status).toBe('rebound');
      expect(r.rebound).toBe(true);
      expect(r.id).not.toBe(before);
      expect(of('rebound')).toEqual([
        expect.objectContaining({ key: 'k', from: before, reason, via: 'key' }),
      ]);
      // The session was updated: it stays on the new backend even after the old one recovers.
      if (pool.get(before)!.state === 'unhealthy') pool.setHealthy(before, true);
      else pool.uneject(before);
      expect(await call(sessions, 'k')).toMatchObject({ id: r.id, status: 'kept' });
      await sessions.close();
    },
  );

  it('keeps sessions on a draining backend, pins no new session to it, and moves them when the grace runs out', async () => {
    const { sessions, pool, clock, of } = setup();
    const pinned = new Map<string, string>();
    for (let i = 0; i < 6; i++) pinned.set(`k${i}`, (await call(sessions, `k${i}`)).id);
    const target = IDS[0]!;
    const held = pool.acquire({ affinity: { id: target } }); // keeps the drain from completing
    const drained = pool.drain(target, { graceMs: 10_000 });
    for (const [key, id] of pinned) {
      expect(await call(sessions, key)).toMatchObject({ id, status: 'kept' });
    }
    for (let i = 0; i < 12; i++) {
      expect((await call(sessions, `fresh-${i}`)).id).not.toBe(target);
    }
    await clock.advanceAsync(10_000);
    expect((await drained).completed).toBe(false);
    const onTarget = [...pinned].filter(([, id]) => id === target).map(([k]) => k);
    expect(onTarget.length).toBeGreaterThan(0);
    expect(of('purged')).toEqual([
      { backend: target, sessions: onTarget.length, reason: 'drain-over' },
    ]);
    for (const key of onTarget) {
      const r = await call(sessions, key);
      expect(r.id).not.toBe(target);
      expect(r.status).toBe('new'); // purged from the memory store
    }
    held.release();
    await sessions.close();
  });

  it('rebinds lazily when the store cannot purge (drain over)', async () => {
    const store = new MapStore();
    const { sessions, pool, clock } = setup({ store });
    const { id } = await call(sessions, 'k');
    const held = pool.acquire({ affinity: { id } });
    void pool.drain(id, { graceMs: 100 });
    expect((await call(sessions, 'k')).status).toBe('kept');
    await clock.advanceAsync(100);
    const r = await call(sessions, 'k');
    expect(r.status).toBe('rebound');
    expect(r.id).not.toBe(id);
    expect(store.map.get('k')?.backend).toBe(r.id);
    held.release();
    await sessions.close();
  });

  it('sessions on an undrained backend keep sticking', async () => {
    const { sessions, pool } = setup();
    const { id } = await call(sessions, 'k');
    void pool.drain(id, { graceMs: 0 });
    pool.undrain(id);
    expect(await call(sessions, 'k')).toMatchObject({ id, status: 'kept' });
    await sessions.close();
  });

  it('purges the sessions of a removed backend', async () => {
    const { sessions, pool, of } = setup();
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    const pinned = new Map<string, string>();
    for (const k of keys) pinned.set(k, (await call(sessions, k)).id);
    const gone = IDS[1]!;
    await pool.remove(gone, { drain: false });
    const count = [...pinned.values()].filter((id) => id === gone).length;
    expect(of('purged')).toEqual([{ backend: gone, sessions: count, reason: 'removed' }]);
    expect(sessions.store).toBeInstanceOf(MemorySessionStore);
    expect((sessions.store as MemorySessionStore).size).toBe(keys.length - count);
    for (const [k, id] of pinned) {
      const r = await call(sessions, k);
      expect(r.id).not.toBe(gone);
      expect(r.status).toBe(id === gone ? 'new' : 'kept');
    }
    await sessions.close();
  });

  it('bounds memory with maxEntries (least recently used sessions go first)', async () => {
    const { sessions } = setup({ maxEntries: 10 });
    for (let i = 0; i < 100; i++) await call(sessions, `client-${i}`);
    const store = sessions.store as MemorySessionStore;
    expect(store.size).toBe(10);
    expect((await call(sessions, 'client-99')).status).toBe('kept');
    expect((await call(sessions, 'client-0')).status).toBe('new');
    await sessions.close();
  });

  it('passes extra pick context through and uses the key as the pick key', async () => {
    const { sessions, pool } = setup();
    const seen: unknown[] = [];
    pool.on('acquire', ({ ctx }) => seen.push(ctx));
    await call(sessions, { key: 'k', ctx: { clientAddress: '192.0.2.1' } });
    await call(sessions, 'k');
    expect(seen[0]).toEqual({ key: 'k', clientAddress: '192.0.2.1' });
    expect(seen[1]).toMatchObject({ key: 'k', affinity: { allowDraining: true } });
    await sessions.close();
  });

  it('balances normally without a key or cookie mode', async () => {
    const { sessions, events } = setup();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const r = await call(sessions, undefined);
      expect(r.status).toBe('none');
      ids.push(r.id);
    }
    expect(new Set(ids)).toEqual(new Set(IDS)); // plain round robin
    expect(events).toHaveLength(0);
    await sessions.close();
  });

  it('forgets a session on request', async () => {
    const { sessions } = setup();
    await call(sessions, 'k');
    await sessions.forget('k');
    expect((await call(sessions, 'k')).status).toBe('new');
    await sessions.close();
  });

  it('keeps the store in step with the backend of every call (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('call' as const), key: fc.integer({ min: 0, max: 5 }) }),
            fc.record({
              op: fc.constant('health' as const),
              backend: fc.integer({ min: 0, max: 2 }),
              up: fc.boolean(),
            }),
            fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 600 }) }),
          ),
          { maxLength: 60 },
        ),
        async (ops) => {
          const store = new MapStore();
          const { sessions, pool, clock } = setup(
            { store, ttlMs: 1000 },
            { minHealthy: 0, panicThreshold: 0 },
          );
          const last = new Map<string, { id: string; at: number }>();
          for (const o of ops) {
            if (o.op === 'health') pool.setHealthy(IDS[o.backend]!, o.up);
            else if (o.op === 'wait') clock.advance(o.ms);
            else {
              const key = `k${o.key}`;
              if (pool.eligible().length === 0) continue;
              const r = await sessions.acquire(key);
              const prev = last.get(key);
              const alive = prev !== undefined && clock.now() - prev.at <= 1000;
              if (r.status === 'kept') {
                expect(alive).toBe(true);
                expect(r.lease.backend.id).toBe(prev!.id);
              }
              if (alive && pool.get(prev.id)!.eligible) expect(r.status).toBe('kept');
              expect(store.map.get(key)?.backend).toBe(r.lease.backend.id);
              last.set(key, { id: r.lease.backend.id, at: clock.now() });
              expect(r.lease.release({ ok: true })).toBe(true);
            }
          }
          expect(pool.stats().inFlight).toBe(0);
          await sessions.close();
        },
      ),
      { seed: 42, numRuns: 60 },
    );
  });
});

describe('SessionPersistenceManager: a slow or failing store', () => {
  it('falls back to normal balancing after storeTimeoutMs and reports it', async () => {
    const store = new ControlledStore();
    store.hang = true;
    const { sessions, clock, of } = setup({ store, storeTimeoutMs: 50, storeRetryMs: 1000 });
    const pending = sessions.acquire('k');
    await clock.advanceAsync(49);
    let settled = false;
    void pending.then(() => {
      settled = true;
    });
    await clock.advanceAsync(0);
    expect(settled).toBe(false);
    await clock.advanceAsync(1);
    const r = await pending;
    expect(r.status).toBe('unavailable');
    r.lease.release();
    const [err] = of('storeError');
    expect(err).toMatchObject({ operation: 'get', key: 'k' });
    expect(err!['error']).toBeInstanceOf(SessionStoreError);
    expect((err!['error'] as SessionStoreError).timedOut).toBe(true);
    expect(of('storeDown')).toHaveLength(1);
    expect(sessions.storeDown).toBe(true);

    // While marked down, calls do not touch the store at all (no waiting).
    const callsBefore = store.calls;
    for (let i = 0; i < 5; i++) expect((await call(sessions, `x${i}`)).status).toBe('unavailable');
    expect(store.calls).toBe(callsBefore);
    expect(clock.pendingTimers()).toBe(0); // the timed-out call's timer is gone too

    // After storeRetryMs the store is tried again; it answers, and stickiness resumes.
    store.hang = false;
    clock.advance(1000);
    const a = await call(sessions, 'k');
    expect(a.status).toBe('new');
    expect(of('storeUp')).toHaveLength(1);
    expect(await call(sessions, 'k')).toMatchObject({ id: a.id, status: 'kept' });
    await sessions.close();
  });

  it.each([
    ['rejects', (s: ControlledStore) => (s.reject = true)],
    ['throws', (s: ControlledStore) => (s.throwSync = true)],
  ])('never rejects a call when the store %s', async (_label, breakIt) => {
    const store = new ControlledStore();
    breakIt(store);
    const { sessions, of } = setup({ store, storeRetryMs: 0 });
    for (let i = 0; i < 3; i++) {
      const r = await call(sessions, 'k');
      expect(r.status).toBe('unavailable');
    }
    expect(of('storeError')).toHaveLength(3);
    expect((of('storeError')[0]!['error'] as SessionStoreError).cause).toBeInstanceOf(Error);
    expect(of('storeDown')).toHaveLength(1);
    await sessions.close();
  });

  it('reports a failed write but still returns the lease', async () => {
    const store = new ControlledStore();
    store.failSets = true;
    const { sessions, of } = setup({ store });
    const r = await call(sessions, 'k');
    expect(r.status).toBe('new');
    expect(of('storeError')).toEqual([expect.objectContaining({ operation: 'set', key: 'k' })]);
    await sessions.close();
  });

  it('close() waits for background refreshes, each bounded by the timeout', async () => {
    const store = new ControlledStore();
    const { sessions, clock, of } = setup({ store, storeTimeoutMs: 50 });
    await call(sessions, 'k');
    store.hang = true;
    store.hangGets = false;
    expect((await call(sessions, 'k')).status).toBe('kept'); // the refresh hangs in the background
    let closed = false;
    const closing = sessions.close().then(() => {
      closed = true;
    });
    await clock.advanceAsync(49);
    expect(closed).toBe(false);
    await clock.advanceAsync(1);
    await closing;
    expect(of('storeError')).toEqual([expect.objectContaining({ operation: 'set' })]);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('SessionPersistenceManager: cookie-based affinity', () => {
  it('issues a cookie naming the backend by an opaque token and honours it', async () => {
    const { sessions, of } = setup({ cookie: true, secret: SECRET });
    const first = await call(sessions, {});
    expect(first.status).toBe('new');
    expect(first.setCookie).toMatch(
      /^SERVERID=[A-Za-z0-9_-]{12}\.0\.0\.[A-Za-z0-9_-]{22}; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    expect(first.setCookie).not.toContain('10.0.0');
    for (let i = 0; i < 5; i++) {
      const r = await call(sessions, { cookie: `theme=dark; ${cookieOf(first.setCookie)}` });
      expect(r).toMatchObject({ id: first.id, status: 'kept', setCookie: undefined });
    }
    expect(of('bound')).toEqual([expect.objectContaining({ key: undefined, via: 'cookie' })]);
    await sessions.close();
  });

  it('refreshes the cookie as it ages, so its idle time slides', async () => {
    const { sessions, clock } = setup({ cookie: true, ttlMs: 1000 });
    let cookie = cookieOf((await call(sessions, {})).setCookie);
    let refreshed = 0;
    for (let i = 0; i < 20; i++) {
      clock.advance(200);
      const r = await call(sessions, { cookie });
      expect(r.status).toBe('kept');
      if (r.setCookie !== undefined) {
        refreshed++;
        cookie = cookieOf(r.setCookie);
      }
    }
    // Re-issued once a quarter of the TTL has passed: every second call at 200 ms steps.
    expect(refreshed).toBe(10);
    clock.advance(1000);
    const late = await call(sessions, { cookie });
    expect(late.status).toBe('new');
    await sessions.close();
  });

  it.each([
    ['bad-signature', (c: string) => c.replace(/.$/, (ch) => (ch === 'A' ? 'B' : 'A'))],
    ['bad-signature', (c: string) => c.replace('SERVERID=', 'SERVERID=x')],
    ['bad-signature', () => 'SERVERID=garbage'],
    ['malformed', () => `SERVERID=${'a'.repeat(300)}`],
  ])('ignores a signed cookie with %s and issues a new one', async (reason, spoil) => {
    const { sessions, of } = setup({ cookie: true, secret: SECRET });
    const first = await call(sessions, {});
    const r = await call(sessions, { cookie: spoil(cookieOf(first.setCookie)!) });
    expect(r.status).toBe('new');
    expect(r.setCookie).toBeDefined();
    expect(of('cookieRejected')).toEqual([{ reason }]);
    await sessions.close();
  });

  it.each([
    ['garbage'],
    ['a.b'],
    ['tok.zz.1'], // seen before created
    ['tok.1.!'],
    ['unknowntoken.0.0'],
  ])('ignores an unsigned cookie %j', async (value) => {
    const { sessions, of } = setup({ cookie: true });
    const r = await call(sessions, { cookie: `SERVERID=${value}` });
    expect(r.status).toBe('new');
    expect(of('cookieRejected')).toEqual([
      { reason: value.startsWith('unknown') ? 'unknown-backend' : 'malformed' },
    ]);
    await sessions.close();
  });

  it('ignores an expired cookie (absolute life)', async () => {
    const { sessions, clock, of } = setup({ cookie: true, ttlMs: 1000, maxLifeMs: 1500 });
    let cookie = cookieOf((await call(sessions, {})).setCookie);
    for (let i = 0; i < 2; i++) {
      clock.advance(800);
      const r = await call(sessions, { cookie });
      cookie = cookieOf(r.setCookie) ?? cookie;
      expect(r.status).toBe(i === 0 ? 'kept' : 'new');
    }
    expect(of('cookieRejected')).toEqual([{ reason: 'expired' }]);
    await sessions.close();
  });

  it('ignores a cookie naming a removed backend', async () => {
    const { sessions, pool, of } = setup({ cookie: true });
    const first = await call(sessions, {});
    await pool.remove(first.id, { drain: false });
    const r = await call(sessions, { cookie: cookieOf(first.setCookie) });
    expect(r.status).toBe('new');
    expect(r.id).not.toBe(first.id);
    expect(of('cookieRejected')).toEqual([{ reason: 'unknown-backend' }]);
    await sessions.close();
  });

  it('rebinds and re-issues the cookie when the pinned backend fails', async () => {
    const { sessions, pool, of } = setup({ cookie: { name: 'lb', secure: true } });
    const first = await call(sessions, {});
    expect(first.setCookie).toMatch(/^lb=.*; Secure; SameSite=Lax$/);
    pool.setHealthy(first.id, false);
    const r = await call(sessions, { cookie: cookieOf(first.setCookie) });
    expect(r).toMatchObject({ status: 'rebound', rebound: true });
    expect(r.setCookie).toBeDefined();
    expect(of('rebound')).toEqual([
      expect.objectContaining({ from: first.id, to: pool.get(r.id), via: 'cookie' }),
    ]);
    await sessions.close();
  });

  it('lets replicas with the same secret honour each other’s cookies; another secret does not', async () => {
    const a = setup({ cookie: true, secret: SECRET });
    const b = setup({ cookie: true, secret: ['unit-test-session-secret-n-0c7f3a58', SECRET] }); // rotated
    const c = setup({ cookie: true, secret: 'unit-test-session-secret-o-e4a19d27' });
    for (let i = 0; i < 3; i++) {
      const fromA = await call(a.sessions, {});
      const cookie = cookieOf(fromA.setCookie);
      expect(await call(b.sessions, { cookie })).toMatchObject({ id: fromA.id, status: 'kept' });
      expect((await call(c.sessions, { cookie })).status).toBe('new');
    }
    for (const s of [a, b, c]) await s.sessions.close();
  });

  it('prefers the key when both a key and a cookie are given', async () => {
    const { sessions } = setup({ cookie: true });
    const k = await call(sessions, 'k');
    expect(k.setCookie).toBeUndefined();
    const r = await call(sessions, { key: 'k', cookie: 'SERVERID=whatever' });
    expect(r).toMatchObject({ id: k.id, status: 'kept' });
    await sessions.close();
  });
});

describe('SessionPersistenceManager.forFetch hooks', () => {
  const info = (attempt = 1, tried: string[] = []) => ({ attempt, tried });

  it('key mode: pins attempts, records the binding after the response', async () => {
    const { sessions, pool } = setup();
    const hooks = sessions.forFetch({ key: (req) => req.headers.get('x-user') ?? undefined });
    const req1 = new Request('http://x/a', { headers: { 'x-user': 'u1' } });
    expect(await hooks.context(req1, info())).toEqual({ key: 'u1' });
    const backend = pool.get(IDS[2]!)!;
    const res = new Response('ok');
    expect(await hooks.afterResponse({ request: req1, response: res, backend, attempt: 1 })).toBe(
      undefined,
    );
    const req2 = new Request('http://x/b', { headers: { 'x-user': 'u1' } });
    expect(await hooks.context(req2, info())).toEqual({
      key: 'u1',
      affinity: { id: IDS[2], allowDraining: true },
    });
    // A retry after the pinned backend failed is not pinned to it again.
    expect(await hooks.context(req2, info(2, [IDS[2]!]))).toEqual({ key: 'u1' });
    // No key: no session.
    expect(await hooks.context(new Request('http://x/c'), info())).toEqual({});
    await sessions.close();
  });

  it('does not bind a new session to a backend that answered 5xx', async () => {
    const { sessions, pool } = setup();
    const hooks = sessions.forFetch({ key: () => 'u' });
    const req = new Request('http://x/');
    await hooks.context(req, info());
    await hooks.afterResponse({
      request: req,
      response: new Response('no', { status: 503 }),
      backend: pool.get(IDS[0]!)!,
      attempt: 1,
    });
    expect(await hooks.context(new Request('http://x/'), info())).toEqual({ key: 'u' });
    await sessions.close();
  });

  it('cookie mode: adds Set-Cookie to the response when a session is bound', async () => {
    const { sessions, pool } = setup({ cookie: true, secret: SECRET });
    const hooks = sessions.forFetch();
    const req = new Request('http://x/');
    expect(await hooks.context(req, info())).toEqual({});
    const backend = pool.get(IDS[1]!)!;
    // A fetch response has immutable headers: the hook must return a new Response.
    const upstream = Response.redirect('http://x/elsewhere', 302);
    const out = await hooks.afterResponse({
      request: req,
      response: upstream,
      backend,
      attempt: 1,
    });
    expect(out).toBeInstanceOf(Response);
    expect(out!.status).toBe(302);
    expect(out!.headers.get('location')).toBe('http://x/elsewhere');
    const setCookie = out!.headers.get('set-cookie');
    expect(setCookie).toMatch(/^SERVERID=/);

    const back = new Request('http://x/', { headers: { cookie: cookieOf(setCookie!)! } });
    expect(await hooks.context(back, info())).toEqual({
      affinity: { id: IDS[1], allowDraining: true },
    });
    const kept = await hooks.afterResponse({
      request: back,
      response: new Response('ok'),
      backend,
      attempt: 1,
    });
    expect(kept).toBeUndefined(); // fresh cookie: nothing to add
    expect(getCookie(cookieOf(setCookie!), 'SERVERID')).not.toContain('10.0.0');
    await sessions.close();
  });

  it('needs a key function or cookie mode', () => {
    const { sessions } = setup();
    expect(() => sessions.forFetch()).toThrow(LoadBalancerConfigError);
    expect(() => sessions.forFetch({ key: 'x' } as never)).toThrow(LoadBalancerConfigError);
  });
});

describe('SessionPersistenceManager: lifecycle and validation', () => {
  it('closes with the pool, clears the default store timer, and refuses calls afterwards', async () => {
    const { sessions, pool, clock } = setup();
    await call(sessions, 'k');
    expect(clock.pendingTimers()).toBe(1); // the memory store's sweep (unref'd)
    expect(clock.refedTimers()).toBe(0);
    await pool.close();
    await sessions.close(); // idempotent, same promise
    expect(sessions.closed).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    await expect(sessions.acquire('k')).rejects.toBeInstanceOf(PoolClosedError);
    expect(pool.listenerCount('removed')).toBe(0);
  });

  it('leaves a store passed in open', async () => {
    const store = new MemorySessionStore({ clock: new ManualClock() });
    const { sessions } = setup({ store });
    await call(sessions, 'k');
    await sessions.close();
    expect(store.get('k')).toBeDefined();
    store.close();
  });

  it.each([
    [{ ttlMs: 0 }, 'ttlMs'],
    [{ maxLifeMs: -1 }, 'maxLifeMs'],
    [{ storeTimeoutMs: 0 }, 'storeTimeoutMs'],
    [{ storeRetryMs: -1 }, 'storeRetryMs'],
    [{ maxEntries: 0 }, 'maxEntries'],
    [{ store: new MemorySessionStore({ cleanupIntervalMs: 0 }), maxEntries: 5 }, 'maxEntries'],
    [{ store: {} }, 'store'],
    [{ secret: SECRET }, 'secret'],
    [{ cookie: true, secret: 'short' }, 'secret'],
    [{ cookie: true, secret: new Uint8Array(32).fill(1) }, 'secret'],
    [
      { cookie: true, secret: ['unit-test-session-secret-n-0c7f3a58', 'x'.repeat(32)] },
      'secret[1]',
    ],
    [{ cookie: { name: 'bad name' } }, 'cookie.name'],
    [{ cookie: { sameSite: 'None' } }, 'cookie.secure'],
    [{ cookie: 'yes' }, 'cookie'],
    [{ cookie: { expires: 1 } }, 'cookie.expires'],
    [{ ttl: 5 }, 'SessionPersistenceOptions.ttl'],
  ])('rejects %j', (options, field) => {
    const clock = new ManualClock();
    const pool = new BackendPool({ backends: URLS, clock, skew: false });
    let error: unknown;
    try {
      new SessionPersistenceManager(pool, options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as LoadBalancerConfigError).field).toBe(field);
    expect(clock.pendingTimers()).toBe(0); // no store timer left behind by a failed construction
    expect(pool.listenerCount('removed')).toBe(0);
  });

  it('rejects a bad pool and bad acquire input', async () => {
    expect(() => new SessionPersistenceManager({} as never)).toThrow(LoadBalancerConfigError);
    const { sessions } = setup();
    await expect(sessions.acquire('')).rejects.toBeInstanceOf(LoadBalancerConfigError);
    await expect(sessions.acquire({ keys: 'x' } as never)).rejects.toBeInstanceOf(
      LoadBalancerConfigError,
    );
    await expect(sessions.acquire({ cookie: 5 } as never)).rejects.toBeInstanceOf(
      LoadBalancerConfigError,
    );
    await sessions.close();
  });
});

/** A plain map store without purgeBackend (so removed backends are rebound lazily). */
class MapStore implements SessionStore {
  readonly map = new Map<string, SessionRecord>();
  get(key: string) {
    return this.map.get(key);
  }
  set(key: string, record: SessionRecord) {
    this.map.set(key, record);
  }
  delete(key: string) {
    return this.map.delete(key);
  }
}

/** An async store whose failures the test controls. */
class ControlledStore implements SessionStore {
  readonly map = new Map<string, SessionRecord>();
  calls = 0;
  hang = false;
  hangGets = true;
  reject = false;
  throwSync = false;
  failSets = false;

  #answer<T>(value: () => T, isGet: boolean): Promise<T> {
    this.calls++;
    if (this.throwSync) throw new Error('store threw');
    if (this.hang && (!isGet || this.hangGets)) return new Promise<T>(() => {});
    if (this.reject) return Promise.reject(new Error('store down'));
    return Promise.resolve().then(value);
  }
  get(key: string) {
    return this.#answer(() => this.map.get(key), true);
  }
  set(key: string, record: SessionRecord) {
    if (this.failSets) {
      this.calls++;
      return Promise.reject(new Error('write refused'));
    }
    return this.#answer(() => {
      this.map.set(key, record);
    }, false);
  }
  delete(key: string) {
    return this.#answer(() => this.map.delete(key), false);
  }
}
