import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ketamaDigestCount } from '../../src/hashing/consistent-hash-ring.js';
import { ConsistentHashRing, LoadBalancerConfigError, murmur3 } from '../../src/index.js';
import libketama from '../fixtures/reference/libketama-weighted-5.json' with { type: 'json' };
import libmemcached from '../fixtures/reference/libmemcached-ketama.json' with { type: 'json' };

/** The share of the 32-bit hash space each backend owns (exact arcs, not sampled keys). */
function shares(ring: ConsistentHashRing): Map<string, number> {
  const { points, owners, ids } = ring._snapshot();
  const out = new Map<string, number>(ids.map((id) => [id, 0]));
  for (let i = 0; i < points.length; i++) {
    const prev = i === 0 ? points[points.length - 1]! - 2 ** 32 : points[i - 1]!;
    const id = ids[owners[i]!]!;
    out.set(id, out.get(id)! + (points[i]! - prev) / 2 ** 32);
  }
  return out;
}

const keys = (n: number, prefix = 'key'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

/** Distinct host:port ids, as fast-check draws them. */
const hostIds = (min: number, max: number) =>
  fc.uniqueArray(
    fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.nat(65535))
      .map(([a, b, port]) => `10.${a}.${b}.1:${port}`),
    { minLength: min, maxLength: max },
  );

describe('ConsistentHashRing: ketama compatibility', () => {
  it('places every key of libketama-weighted-5 on the server libketama chose', () => {
    const ring = new ConsistentHashRing(
      (libketama.servers as [string, number][]).map(([id, weight]) => ({ id, weight })),
    );
    const assignments = Object.entries(libketama.assignments);
    expect(assignments.length).toBeGreaterThan(100);
    for (const [key, server] of assignments) expect(ring.get(key), `key ${key}`).toBe(server);
  });

  it("agrees bit for bit with libmemcached's weighted ketama (key hash, point and server)", () => {
    // libmemcached hashes "host-i" (no port) for servers on the default port 11211.
    const ring = new ConsistentHashRing(
      Object.entries(libmemcached.servers).map(([hostPort, weight]) => ({
        id: hostPort,
        weight,
        hashKey: hostPort.replace(/:11211$/, ''),
      })),
    );
    const rows = libmemcached.rows as [string, number, number, string][];
    expect(rows.length).toBeGreaterThan(50);
    for (const [key, hash, point, server] of rows) {
      const at = ring.locate(key)!;
      expect(at.hash, `hash of ${key}`).toBe(hash);
      expect(at.point, `point of ${key}`).toBe(point);
      expect(at.id, `server of ${key}`).toBe(`${server}:11211`);
    }
  });

  it('hashes a key to the little-endian uint32 of the first 4 bytes of its MD5', () => {
    const ring = new ConsistentHashRing(['a:1']);
    for (const key of ['', 'user-42', 'ключ', '😀']) {
      expect(ring.hash(key)).toBe(createHash('md5').update(key).digest().readUInt32LE(0));
    }
  });

  it.each([
    // libketama's float arithmetic: the product is rounded to float before floorf.
    [7, 40],
    [61, 39],
    [122, 39],
    [10, 40],
    [60, 40],
  ])('gives each of %d equal servers %d digests, as libketama does', (n, digests) => {
    expect(ketamaDigestCount(1, n, n)).toBe(digests);
    const ring = new ConsistentHashRing(Array.from({ length: n }, (_, i) => `10.0.0.${i}:11211`));
    expect(ring.pointsOf('10.0.0.0:11211')).toBe(digests * 4);
    expect(ring.pointCount).toBe(n * digests * 4);
  });

  it('differs from plain double arithmetic exactly where libketama does', () => {
    // In doubles, 1/7 × 40 × 7 is 39.99999999999999: plain-double rings give 39 digests.
    expect(Math.floor((1 / 7) * 40 * 7)).toBe(39);
    expect(ketamaDigestCount(1, 7, 7)).toBe(40);
  });

  it('gives weighted servers floorf(pct × 40 × n) digests', () => {
    const ring = new ConsistentHashRing([
      { id: 'a', weight: 1 },
      { id: 'b', weight: 2 },
      { id: 'c', weight: 3 },
    ]);
    // pct = 1/6, 2/6, 3/6 of 40 × 3 = 120 digests: 20, 40, 60.
    expect([ring.pointsOf('a'), ring.pointsOf('b'), ring.pointsOf('c')]).toEqual([80, 160, 240]);
  });
});

describe('ConsistentHashRing: lookups', () => {
  const ids = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80', '10.0.0.5:80'];

  it('returns undefined and [] on an empty ring', () => {
    const ring = new ConsistentHashRing();
    expect(ring.get('k')).toBeUndefined();
    expect(ring.getN('k', 3)).toEqual([]);
    expect(ring.locate('k')).toBeUndefined();
    expect(ring.pointCount).toBe(0);
  });

  it('takes the first point >= the hash, wrapping to the lowest point', () => {
    const ring = new ConsistentHashRing(ids);
    const { points, owners, ids: order } = ring._snapshot();
    for (const key of keys(300)) {
      const h = ring.hash(key);
      let i = points.findIndex((p) => p >= h);
      if (i < 0) i = 0;
      expect(ring.get(key)).toBe(order[owners[i]!]);
    }
  });

  it('getN lists distinct backends in ring order, the owner first', () => {
    const ring = new ConsistentHashRing(ids);
    for (const key of keys(200)) {
      const three = ring.getN(key, 3);
      expect(three).toHaveLength(3);
      expect(new Set(three).size).toBe(3);
      expect(three[0]).toBe(ring.get(key));
      expect(ring.getN(key, 10)).toHaveLength(ids.length);
      expect(ring.getN(key, 10).slice(0, 3)).toEqual(three);
    }
    expect(ring.getN('k', 0)).toEqual([]);
  });

  it('walks past backends that are not accepted, to the next distinct one in ring order', () => {
    const ring = new ConsistentHashRing(ids);
    for (const key of keys(200)) {
      const order = ring.getN(key, ids.length);
      const down = new Set([order[0]!, order[1]!]);
      expect(ring.get(key, (id) => !down.has(id))).toBe(order[2]);
      expect(ring.getN(key, 2, (id) => !down.has(id))).toEqual([order[2], order[3]]);
    }
    expect(ring.get('k', () => false)).toBeUndefined();
  });

  it('rebuilds after add, remove and weight changes', () => {
    const ring = new ConsistentHashRing(ids);
    const before = ring.pointCount;
    ring.add('10.0.0.6:80');
    expect(ring.pointCount).toBe(before + 160);
    expect(ring.remove('10.0.0.6:80')).toBe(true);
    expect(ring.remove('10.0.0.6:80')).toBe(false);
    expect(ring.pointCount).toBe(before);
    ring.add('10.0.0.1:80', 3);
    const fresh = new ConsistentHashRing([
      { id: '10.0.0.1:80', weight: 3 },
      ...ids.slice(1).map((id) => ({ id })),
    ]);
    for (const key of keys(300)) expect(ring.get(key)).toBe(fresh.get(key));
    expect(ring.size).toBe(5);
    expect(ring.has('10.0.0.1:80')).toBe(true);
    expect(ring.ids()).toEqual(ids);
  });

  it('keeps every point for weights too large for float32, placing keys as for their ratio', () => {
    // libketama's float32 division overflowed to Infinity: no backend had a point and every
    // lookup answered undefined.
    const huge = new ConsistentHashRing([
      { id: 'a', weight: Number.MAX_VALUE },
      { id: 'b', weight: Number.MAX_VALUE / 2 },
    ]);
    const plain = new ConsistentHashRing([
      { id: 'a', weight: 2 },
      { id: 'b', weight: 1 },
    ]);
    expect(huge.pointCount).toBe(plain.pointCount);
    for (const key of keys(300)) expect(huge.get(key)).toBe(plain.get(key));
    const bigAndSmall = new ConsistentHashRing([{ id: 'a', weight: 2 ** 200 }, 'b']);
    expect(bigAndSmall.get('user-1')).toBe('a');
    expect(bigAndSmall.pointsOf('b')).toBe(0);
  });

  it('places a backend by its hashKey and answers with its id', () => {
    const a = new ConsistentHashRing([{ id: 'primary', hashKey: '10.0.0.1:80' }, 'x:1']);
    const b = new ConsistentHashRing(['10.0.0.1:80', 'x:1']);
    for (const key of keys(200)) {
      expect(a.get(key)).toBe(b.get(key) === 'x:1' ? 'x:1' : 'primary');
    }
  });

  it('offers murmur3 and custom hashes, one point per hashed string', () => {
    const m = new ConsistentHashRing(ids, { hash: 'murmur3' });
    expect(m.pointCount).toBe(5 * 160);
    expect(m.hash('user-1')).toBe(murmur3('user-1'));
    const fnv = (s: string): number => {
      let h = 0x811c9dc5;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
      return h >>> 0;
    };
    const c = new ConsistentHashRing(ids, { hash: fnv, virtualNodes: 100 });
    expect(c.pointCount).toBe(500);
    expect(c.hash('user-1')).toBe(fnv('user-1'));
    const counts = new Map<string, number>();
    for (const key of keys(5000)) counts.set(c.get(key)!, (counts.get(c.get(key)!) ?? 0) + 1);
    expect(counts.size).toBe(5);
  });

  it('answers right on the first lookup after a change, whatever the hash', () => {
    for (const hash of ['md5', 'murmur3'] as const) {
      const ring = new ConsistentHashRing(ids, { hash });
      const fresh = new ConsistentHashRing([...ids, 'x:1'], { hash });
      for (const key of keys(50)) {
        ring.get(key);
        ring.add('x:1');
        // This lookup rebuilds the ring before hashing the key.
        expect(ring.get(key), `${hash} ${key}`).toBe(fresh.get(key));
        ring.remove('x:1');
      }
    }
  });

  it('rejects a custom hash that returns something other than a uint32', () => {
    const ring = new ConsistentHashRing(['a:1'], { hash: () => 1.5 });
    expect(() => ring.get('k')).toThrow(LoadBalancerConfigError);
  });

  it.each([
    [{ virtualNodes: 10 }],
    [{ virtualNodes: 0 }],
    [{ virtualNodes: 1.5 }],
    [{ hash: 'sha1' }],
    [{ replicas: 3 }],
  ])('rejects bad options %j', (options) => {
    expect(() => new ConsistentHashRing([], options as never)).toThrow(LoadBalancerConfigError);
  });

  it('rejects bad backends and arguments', () => {
    expect(() => new ConsistentHashRing([{ id: 'a', weight: 0 }])).toThrow(LoadBalancerConfigError);
    expect(() => new ConsistentHashRing([42 as unknown as string])).toThrow(
      LoadBalancerConfigError,
    );
    expect(() => new ConsistentHashRing(null as never)).toThrow(LoadBalancerConfigError);
    const ring = new ConsistentHashRing(['a']);
    expect(() => ring.add('')).toThrow(LoadBalancerConfigError);
    expect(() => ring.add('b', Number.NaN)).toThrow(LoadBalancerConfigError);
    expect(() => ring.get(7 as unknown as string)).toThrow(LoadBalancerConfigError);
    expect(() => ring.getN('k', -1)).toThrow(LoadBalancerConfigError);
  });
});

describe('ConsistentHashRing: properties', () => {
  // Equal weights up to 60 servers keep 40 digests each (61 is libketama's first exception), so
  // adding one changes nobody else's points.
  it('adding one backend to n moves about 1/(n + 1) of the keys, all of them to the new one', () => {
    const sample = keys(2000, 'user');
    fc.assert(
      fc.property(hostIds(2, 60), (all) => {
        const ids = all.slice(0, -1);
        const added = all[all.length - 1]!;
        const before = new ConsistentHashRing(ids);
        const after = new ConsistentHashRing(all);
        const strays = sample.filter((key) => {
          const a = after.get(key);
          return a !== before.get(key) && a !== added;
        });
        expect(strays).toEqual([]);
        // The exact share of the hash space that moved: the arcs the new backend now owns.
        const moved = shares(after).get(added)!;
        const n = ids.length;
        expect(moved).toBeGreaterThan(0.6 / (n + 1));
        expect(moved).toBeLessThan(1.5 / (n + 1));
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('removing one backend moves only the keys it owned', () => {
    const sample = keys(2000, 'user');
    fc.assert(
      fc.property(hostIds(2, 60), fc.nat(), (ids, pick) => {
        const gone = ids[pick % ids.length]!;
        const before = new ConsistentHashRing(ids);
        const after = new ConsistentHashRing(ids.filter((id) => id !== gone));
        const moved = sample.filter((key) => {
          const b = before.get(key);
          return b !== gone && after.get(key) !== b;
        });
        expect(moved).toEqual([]);
      }),
      { seed: 42, numRuns: 40 },
    );
  });

  it('with 160 points and 10 equal backends, the median ring keeps the busiest within 1.15 × the mean', () => {
    // A backend's share is a sum of 160 arcs: its relative spread is about 1/sqrt(160) ≈ 8%, so
    // the busiest of 10 usually sits near 1.12 × the mean. The 1.15 bound holds for the median
    // ring, not for every ring (about a quarter exceed it); none comes near 1.4.
    const rings = fc.sample(hostIds(10, 10), { seed: 42, numRuns: 150 });
    const ratios = rings.map(
      (ids) => Math.max(...shares(new ConsistentHashRing(ids)).values()) * 10,
    );
    ratios.sort((a, b) => a - b);
    expect(ratios[Math.floor(ratios.length / 2)]!).toBeLessThanOrEqual(1.15);
    expect(ratios[ratios.length - 1]!).toBeLessThan(1.4);
  });

  it('with 640 points and 10 equal backends, the busiest always stays within 1.15 × the mean', () => {
    fc.assert(
      fc.property(hostIds(10, 10), (ids) => {
        const ring = new ConsistentHashRing(ids, { virtualNodes: 640 });
        expect(Math.max(...shares(ring).values()) * 10).toBeLessThanOrEqual(1.15);
      }),
      { seed: 42, numRuns: 60 },
    );
  });

  it('gives weighted backends shares close to their weights', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 9999 }), { minLength: 3, maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 8, maxLength: 8 }),
        (suffixes, weights) => {
          const backends = suffixes.map((s, i) => ({ id: `h${s}:80`, weight: weights[i]! }));
          const total = backends.reduce((sum, b) => sum + b.weight, 0);
          const ring = new ConsistentHashRing(backends, { virtualNodes: 640 });
          const got = shares(ring);
          for (const b of backends) {
            expect(Math.abs(got.get(b.id)! / (b.weight / total) - 1)).toBeLessThan(0.3);
          }
        },
      ),
      { seed: 42, numRuns: 40 },
    );
  });
});
