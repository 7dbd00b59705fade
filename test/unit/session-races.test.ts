/**
 * Replicas racing to bind one session: the first binding wins, and both send the call to its
 * backend. A "replica" is a manager with a pool of its own over a shared store.
 */
import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  MemorySessionStore,
  RandomPick,
  SessionPersistenceManager,
  type SessionPersistenceOptions,
  type SessionRecord,
  type SessionStore,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

const URLS = ['http://10.0.0.1:80', 'http://10.0.0.2:80', 'http://10.0.0.3:80'];

function replica(clock: ManualClock, options: SessionPersistenceOptions, seed: number) {
  const pool = new BackendPool({
    backends: URLS,
    algorithm: new RandomPick(),
    clock,
    random: seededRandom(seed),
    skew: false,
  });
  return { pool, sessions: new SessionPersistenceManager(pool, options) };
}

/** A shared store that answers later, as a remote one does: both replicas read before either writes. */
class AsyncStore implements SessionStore {
  constructor(readonly inner: MemorySessionStore) {}
  get(key: string) {
    return Promise.resolve().then(() => this.inner.get(key));
  }
  set(key: string, record: SessionRecord, ttlMs: number) {
    return Promise.resolve().then(() => this.inner.set(key, record, ttlMs));
  }
  bind(key: string, record: SessionRecord, ttlMs: number, expected: SessionRecord | undefined) {
    return Promise.resolve().then(() => this.inner.bind(key, record, ttlMs, expected));
  }
  delete(key: string) {
    return Promise.resolve().then(() => this.inner.delete(key));
  }
}

describe('replicas binding one session at once', () => {
  it('MemorySessionStore.bind writes only over the record read (or none) and answers the winner', () => {
    const clock = new ManualClock(0);
    const store = new MemorySessionStore({ clock, cleanupIntervalMs: 0 });
    const a = { backend: 'a', createdAt: 1 };
    const b = { backend: 'b', createdAt: 2 };
    const c = { backend: 'c', createdAt: 3 };
    expect(store.bind('k', a, 1000, undefined)).toBe(a);
    expect(store.bind('k', b, 1000, undefined)).toEqual(a);
    expect(store.get('k')).toEqual(a);
    expect(store.bind('k', b, 1000, { ...a })).toBe(b);
    expect(store.bind('k', c, 1000, a)).toEqual(b);
    clock.advance(1001);
    // Expired: nothing is held, so any writer may bind.
    expect(store.bind('k', c, 1000, a)).toBe(c);
    store.close();
  });

  it('the first binding wins and both replicas send the call to its backend', async () => {
    const clock = new ManualClock(0);
    const shared = new MemorySessionStore({ clock, cleanupIntervalMs: 0 });
    const a = replica(clock, { store: new AsyncStore(shared) }, 2);
    const b = replica(clock, { store: new AsyncStore(shared) }, 3);
    let acquires = 0;
    a.pool.on('acquire', () => acquires++);
    b.pool.on('acquire', () => acquires++);
    const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    let lost = 0;
    for (const key of keys) {
      const [ra, rb] = await Promise.all([a.sessions.acquire(key), b.sessions.acquire(key)]);
      ra.lease.release();
      rb.lease.release();
      const held = shared.get(key)!.backend;
      expect(ra.lease.backend.id).toBe(held);
      expect(rb.lease.backend.id).toBe(held);
      expect(ra.status).toBe('new');
      // 'kept' when it lost; 'new' too when both picked one backend at one clock reading (then
      // the two bindings are the same record).
      expect(['new', 'kept']).toContain(rb.status);
      if (rb.status === 'kept') lost++;
    }
    expect(lost).toBeGreaterThan(keys.length / 2);
    // Where the two picks differed, the second replica took a lease on the winner instead.
    expect(acquires).toBe(2 * keys.length + lost);
    await a.sessions.close();
    await b.sessions.close();
    shared.close();
  });
});
