import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LoadBalancerConfigError, MemorySessionStore, PoolClosedError } from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';

const rec = (backend: string, createdAt = 0) => ({ backend, createdAt });

describe('MemorySessionStore', () => {
  it('stores and returns records until their TTL passes on the injected clock', () => {
    // Starting at 0 matters: lru-cache treats a start stamp of 0 as "no TTL".
    const clock = new ManualClock(0);
    const store = new MemorySessionStore({ clock, cleanupIntervalMs: 0 });
    store.set('a', rec('b1'), 1000);
    expect(store.get('a')).toEqual(rec('b1'));
    clock.advance(1000);
    expect(store.get('a')).toEqual(rec('b1'));
    clock.advance(1);
    expect(store.get('a')).toBeUndefined();
    store.close();
  });

  it('slides expiry when the record is set again', () => {
    const clock = new ManualClock(5);
    const store = new MemorySessionStore({ clock, cleanupIntervalMs: 0 });
    store.set('a', rec('b1'), 100);
    for (let i = 0; i < 10; i++) {
      clock.advance(90);
      const r = store.get('a');
      expect(r).toBeDefined();
      store.set('a', r!, 100);
    }
    clock.advance(101);
    expect(store.get('a')).toBeUndefined();
    store.close();
  });

  it('evicts the least recently used record past maxEntries', () => {
    const store = new MemorySessionStore({ maxEntries: 3, clock: new ManualClock() });
    store.set('a', rec('b1'), 1e6);
    store.set('b', rec('b1'), 1e6);
    store.set('c', rec('b1'), 1e6);
    store.get('a'); // a is now the most recently used
    store.set('d', rec('b2'), 1e6);
    expect(store.size).toBe(3);
    expect(store.get('b')).toBeUndefined();
    expect(store.get('a')).toBeDefined();
    expect(store.get('c')).toBeDefined();
    expect(store.get('d')).toBeDefined();
    store.close();
  });

  it('never holds more than maxEntries, whatever the sequence (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.boolean()), { maxLength: 200 }),
        (max, ops) => {
          const store = new MemorySessionStore({ maxEntries: max, clock: new ManualClock() });
          const model: string[] = []; // most recently used last
          for (const [k, isSet] of ops) {
            const key = `k${k}`;
            if (isSet) {
              store.set(key, rec('x'), 1e9);
              const i = model.indexOf(key);
              if (i >= 0) model.splice(i, 1);
              model.push(key);
              if (model.length > max) model.shift();
            } else {
              const hit = store.get(key) !== undefined;
              const i = model.indexOf(key);
              expect(hit).toBe(i >= 0);
              if (i >= 0) {
                model.splice(i, 1);
                model.push(key);
              }
            }
            expect(store.size).toBeLessThanOrEqual(max);
          }
          store.close();
        },
      ),
      { seed: 42, numRuns: 150 },
    );
  });

  it('purges the records of one backend', () => {
    const store = new MemorySessionStore({ clock: new ManualClock() });
    for (let i = 0; i < 10; i++) store.set(`k${i}`, rec(i % 2 === 0 ? 'even' : 'odd'), 1e6);
    expect(store.purgeBackend('even')).toBe(5);
    expect(store.size).toBe(5);
    expect(store.get('k1')?.backend).toBe('odd');
    expect(store.get('k0')).toBeUndefined();
    expect(store.purgeBackend('nobody')).toBe(0);
    store.close();
  });

  it('sweeps expired records on its cleanup timer and clears the timer on close', () => {
    const clock = new ManualClock();
    const store = new MemorySessionStore({ clock, cleanupIntervalMs: 1000 });
    store.set('a', rec('b1'), 500);
    store.set('b', rec('b1'), 5000);
    expect(store.size).toBe(2);
    expect(clock.refedTimers()).toBe(0); // unref'd
    clock.advance(1000);
    expect(store.size).toBe(1);
    expect(clock.pendingTimers()).toBe(1);
    store.close();
    expect(clock.pendingTimers()).toBe(0);
    store.close(); // idempotent
    expect(() => store.get('b')).toThrow(PoolClosedError);
  });

  it.each([
    [{ maxEntries: 0 }, 'maxEntries'],
    [{ maxEntries: 1.5 }, 'maxEntries'],
    [{ cleanupIntervalMs: -1 }, 'cleanupIntervalMs'],
    [{ clock: {} }, 'clock'],
    [{ size: 3 }, 'MemorySessionStoreOptions.size'],
  ])('rejects bad options %j', (options, field) => {
    expect(() => new MemorySessionStore(options as never)).toThrow(LoadBalancerConfigError);
    try {
      new MemorySessionStore(options as never);
    } catch (e) {
      expect((e as LoadBalancerConfigError).field).toBe(field);
    }
  });

  it('rejects bad arguments', () => {
    const store = new MemorySessionStore({ clock: new ManualClock() });
    expect(() => store.set('a', rec('b'), 0)).toThrow(LoadBalancerConfigError);
    expect(() => store.set('a', { backend: 1 } as never, 10)).toThrow(LoadBalancerConfigError);
    expect(() => store.get(1 as never)).toThrow(LoadBalancerConfigError);
    store.close();
  });
});
