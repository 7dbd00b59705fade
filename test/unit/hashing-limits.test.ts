/**
 * Size limits of the hash tables: the ketama ring is bounded by its total number of points
 * (virtualNodes × backends), not per backend, and a Maglev table by Envoy's size limit. Every
 * case here is refused before anything is built, so these tests stay fast; before the limits,
 * each of them built tens of millions of points or slots.
 */
import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  ConsistentHash,
  ConsistentHashRing,
  IpHash,
  Maglev,
  MaglevTable,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { configError } from '../support/config-errors.js';

const LIMIT = 2 ** 22;
const ids = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `10.0.${i >> 8}.${i & 255}:8080`);
const urls = (n: number): string[] => ids(n).map((id) => `http://${id}`);

describe('ConsistentHashRing: total point limit', () => {
  it('refuses virtualNodes 2^20 over 64 backends, naming virtualNodes and the limit', () => {
    const error = configError(() => new ConsistentHashRing(ids(64), { virtualNodes: 2 ** 20 }));
    expect(error.field).toBe('virtualNodes');
    expect(error.value).toBe(2 ** 20);
    expect(error.message).toContain(`<= ${LIMIT} ring points`);
    expect(error.message).toContain('5 backends at 1048576 would make 5242880');
    expect(error.message).toContain('at most 838860');
  });

  it('accepts a ring of exactly the limit and refuses the backend that would cross it', () => {
    const ring = new ConsistentHashRing(ids(64), { virtualNodes: LIMIT / 64, hash: 'murmur3' });
    expect(ring.size).toBe(64);
    const error = configError(() => ring.add('10.9.9.9:8080'));
    expect(error.field).toBe('virtualNodes');
    expect(ring.size).toBe(64);
    expect(ring.has('10.9.9.9:8080')).toBe(false);
    // Changing the weight of a backend already there adds no points and stays allowed.
    expect(() => ring.add(ids(64)[0]!, 2)).not.toThrow();
  });
});

describe.each([
  ['ConsistentHash', (vn: number) => new ConsistentHash({ virtualNodes: vn })],
  [
    'ConsistentHash with bounded loads',
    (vn: number) => new ConsistentHash({ virtualNodes: vn, balanceFactor: 1.25 }),
  ],
  ['IpHash', (vn: number) => new IpHash({ virtualNodes: vn })],
])('%s: total point limit', (_name, make) => {
  it('a pool whose ring would exceed the limit is refused at construction, and the algorithm stays free', () => {
    // 2^16 × 65 = 4,259,840 points, just over 2^22.
    const algorithm = make(2 ** 16);
    const error = configError(
      () =>
        new BackendPool({ backends: urls(65), algorithm, clock: new ManualClock(), skew: false }),
    );
    expect(error.field).toBe('virtualNodes');
    expect(error.message).toContain(`${LIMIT}`);
    // The refused pool does not keep the algorithm: another pool may use it.
    const pool = new BackendPool({
      backends: urls(3),
      algorithm,
      clock: new ManualClock(),
      skew: false,
    });
    expect(pool.backends()).toHaveLength(3);
  });
});

describe('ConsistentHash: pool.add() across the limit', () => {
  it('throws for the backend that crosses the limit and leaves the pool as it was', async () => {
    // 2^20 points per backend: 4 backends make exactly 2^22 (one build of the largest ring
    // allowed, about 2 s); a fifth would cross the limit.
    const pool = new BackendPool({
      backends: urls(4),
      algorithm: new ConsistentHash({
        virtualNodes: 2 ** 20,
        hash: 'murmur3',
        balanceFactor: 1.25,
      }),
      clock: new ManualClock(),
      skew: false,
    });
    const error = configError(() => pool.add('http://10.9.9.9:8080'));
    expect(error.field).toBe('virtualNodes');
    expect(pool.has('10.9.9.9:8080')).toBe(false);
    expect(pool.backends().map((b) => b.id)).toEqual(ids(4));
    expect(pool.eligible()).toHaveLength(4);
    const lease = pool.acquire({ key: 'user-1' });
    expect(ids(4)).toContain(lease.backend.id);
    lease.release();
    await pool.close();
  }, 30_000);
});

describe('BackendPool: an algorithm that refuses a new member', () => {
  it('undoes pool.add() (slow start included) when onMembershipChange throws', async () => {
    const algorithm = new ConsistentHash({
      ringKey: (b) => {
        if (b.id.startsWith('10.6.6.6')) throw new Error('no key for this one');
        return b.id;
      },
    });
    const pool = new BackendPool({
      backends: urls(2),
      algorithm,
      clock: new ManualClock(),
      slowStartMs: 10_000,
      skew: false,
    });
    const added: unknown[] = [];
    pool.on('added', (e) => added.push(e));
    expect(() => pool.add('http://10.6.6.6:8080')).toThrow('no key for this one');
    expect(pool.has('10.6.6.6:8080')).toBe(false);
    expect(pool.backends().map((b) => b.id)).toEqual(ids(2));
    expect(added).toEqual([]);
    pool.add('http://10.7.7.7:8080');
    expect(pool.get('10.7.7.7:8080')?.state).toBe('healthy');
    for (let i = 0; i < 20; i++) {
      const lease = pool.acquire({ key: `k-${i}` });
      expect(lease.backend.id).not.toBe('10.6.6.6:8080');
      lease.release();
    }
    await pool.close();
  });
});

describe('Maglev: table size limit', () => {
  it.each([
    ['MaglevTable', () => new MaglevTable([{ id: 'a' }, { id: 'b' }], { tableSize: 5_000_077 })],
    ['Maglev', () => new Maglev({ tableSize: 5_000_077 })],
  ])('%s refuses a prime table above 5000011 (Envoy limit), naming tableSize', (_name, fn) => {
    const error = configError(fn);
    expect(error.field).toBe('tableSize');
    expect(error.message).toContain('at most 5000011');
  });

  it('accepts 5000011 itself', () => {
    expect(() => new Maglev({ tableSize: 5_000_011 })).not.toThrow();
  });
});
