import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  type BackendInit,
  BackendPool,
  ConsistentHash,
  ConsistentHashRing,
  IpHash,
  type Lease,
  LoadBalancerConfigError,
  Maglev,
  MaglevTable,
  xxhash64,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import libmemcached from '../fixtures/reference/libmemcached-ketama.json' with { type: 'json' };

const ids = Array.from({ length: 6 }, (_, i) => `10.0.0.${i + 1}:8080`);
const urls = ids.map((id) => `http://${id}`);
const keys = (n: number, prefix = 'user'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

function makePool(
  algorithm: Algorithm,
  backends: readonly (string | BackendInit)[] = urls,
  extra: { panicThreshold?: number } = {},
): BackendPool {
  return new BackendPool({
    backends,
    algorithm,
    clock: new ManualClock(),
    random: seededRandom(11),
    skew: false,
    ...extra,
  });
}

/** The backend id a pick lands on (the lease is released at once). */
function route(pool: BackendPool, ctx: Parameters<BackendPool['acquire']>[0]): string {
  const lease = pool.acquire(ctx);
  lease.release();
  return lease.backend.id;
}

describe('ConsistentHash', () => {
  it('sends a key to its ketama owner, the same from independent pools', () => {
    const a = makePool(new ConsistentHash());
    const b = makePool(new ConsistentHash(), [...urls].reverse());
    const ring = new ConsistentHashRing(ids);
    for (const key of keys(300)) {
      const owner = ring.get(key);
      expect(route(a, { key })).toBe(owner);
      expect(route(b, { key })).toBe(owner);
    }
  });

  it('agrees with libmemcached through a pool (ringKey drops the default port)', () => {
    const pool = makePool(
      new ConsistentHash({ ringKey: (b) => b.id.replace(/:11211$/, '') }),
      Object.entries(libmemcached.servers).map(([hostPort, weight]) => ({
        url: `http://${hostPort}`,
        weight,
      })),
    );
    for (const [key, , , server] of libmemcached.rows as [string, number, number, string][]) {
      expect(route(pool, { key }), key).toBe(`${server}:11211`);
    }
  });

  it('moves a key to the next backend on the ring while its owner is down, and back after', () => {
    const pool = makePool(new ConsistentHash());
    const ring = new ConsistentHashRing(ids);
    const key = 'user-42';
    const order = ring.getN(key, ids.length);
    const others = keys(300).filter((k) => ring.get(k) !== order[0]);

    pool.setHealthy(order[0]!, false);
    expect(route(pool, { key })).toBe(order[1]);
    // Keys the failed backend did not own stay where they were.
    expect(others.filter((k) => route(pool, { key: k }) !== ring.get(k))).toEqual([]);

    void pool.drain(order[1]!);
    expect(route(pool, { key })).toBe(order[2]);

    pool.setHealthy(order[0]!, true);
    expect(route(pool, { key })).toBe(order[0]);
    pool.undrain(order[1]!);
    pool.setHealthy(order[0]!, false);
    expect(route(pool, { key })).toBe(order[1]);
  });

  it('walks past excluded backends (retries) without moving the key for good', () => {
    const pool = makePool(new ConsistentHash());
    const ring = new ConsistentHashRing(ids);
    for (const key of keys(50)) {
      const order = ring.getN(key, 3);
      expect(route(pool, { key, exclude: [order[0]!] })).toBe(order[1]);
      expect(route(pool, { key, exclude: new Set([order[0]!, order[1]!]) })).toBe(order[2]);
      expect(route(pool, { key })).toBe(order[0]);
    }
  });

  it('rebuilds the ring when weights or membership change', () => {
    const pool = makePool(new ConsistentHash());
    pool.setWeight(ids[0]!, 3);
    pool.add('http://10.0.0.9:8080');
    const ring = new ConsistentHashRing([
      { id: ids[0]!, weight: 3 },
      ...ids.slice(1).map((id) => ({ id })),
      '10.0.0.9:8080',
    ]);
    for (const key of keys(300)) expect(route(pool, { key })).toBe(ring.get(key));
  });

  it('takes the key from a function of the context', () => {
    const pool = makePool(new ConsistentHash({ key: (ctx) => ctx.key?.split(':')[0] }));
    const ring = new ConsistentHashRing(ids);
    for (const tenant of keys(50, 'tenant')) {
      expect(route(pool, { key: `${tenant}:a` })).toBe(ring.get(tenant));
      expect(route(pool, { key: `${tenant}:b` })).toBe(ring.get(tenant));
    }
  });

  it('offers the murmur3 ring hash', () => {
    const pool = makePool(new ConsistentHash({ hash: 'murmur3', virtualNodes: 100 }));
    const ring = new ConsistentHashRing(ids, { hash: 'murmur3', virtualNodes: 100 });
    for (const key of keys(200)) expect(route(pool, { key })).toBe(ring.get(key));
  });

  it('picks a random eligible backend when the pick has no key', () => {
    const pool = makePool(new ConsistentHash());
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(route(pool, {}));
    expect(seen.size).toBe(ids.length);
    // The same seed gives the same sequence.
    const again = makePool(new ConsistentHash());
    const first = makePool(new ConsistentHash());
    const seqA = Array.from({ length: 20 }, () => route(first, {}));
    const seqB = Array.from({ length: 20 }, () => route(again, {}));
    expect(seqA).toEqual(seqB);
  });

  it("throws for a missing key with missingKey: 'throw', and for a key that is not a string", () => {
    const strict = makePool(new ConsistentHash({ missingKey: 'throw' }));
    expect(() => strict.acquire({})).toThrow(LoadBalancerConfigError);
    expect(() => strict.acquire()).toThrow(/key/);
    const pool = makePool(new ConsistentHash());
    expect(() => pool.acquire({ key: 42 as unknown as string })).toThrow(LoadBalancerConfigError);
    // The failed picks leaked nothing.
    expect(pool.stats().inFlight).toBe(0);
  });

  it('explains which backend a key goes to and why', () => {
    const pool = makePool(new ConsistentHash());
    const ring = new ConsistentHashRing(ids);
    const order = ring.getN('user-7', 2);
    pool.setHealthy(order[0]!, false);
    const e = pool.explain({ key: 'user-7' });
    expect(e.wouldPick).toBe(order[1]);
    expect(e.note).toContain(`owner ${order[0]} (unhealthy) is passed over`);
    expect(pool.explain({}).note).toContain('no ctx.key');
    expect(route(pool, { key: 'user-7' })).toBe(order[1]);
  });

  it.each([
    [{ balanceFactor: 1 }],
    [{ balanceFactor: 0.5 }],
    [{ virtualNodes: 6 }],
    [{ hash: 'crc32' }],
    [{ missingKey: 'first' }],
    [{ ringKey: 'id' }],
    [{ key: 'user' }],
    [{ replicas: 4 }],
  ])('rejects options %j', (options) => {
    expect(() => new ConsistentHash(options as never)).toThrow(LoadBalancerConfigError);
  });
});

describe('ConsistentHash with bounded loads', () => {
  /** ceil(c × (m + 1) / n) for c = percent / 100, in exact integer arithmetic. */
  const capOf = (percent: number, m: number, n: number): number =>
    Math.ceil((percent * (m + 1)) / (100 * n) - 1e-12);

  it('never lets a backend exceed ceil(c × (in-flight + 1) / eligible backends)', () => {
    const op = fc.oneof(
      { arbitrary: fc.record({ acquire: fc.integer({ min: 0, max: 30 }) }), weight: 3 },
      { arbitrary: fc.record({ release: fc.nat() }), weight: 2 },
      { arbitrary: fc.record({ toggle: fc.nat() }), weight: 1 },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(110, 125, 150, 200),
        fc.integer({ min: 2, max: 8 }),
        fc.array(op, { minLength: 50, maxLength: 300 }),
        (percent, n, ops) => {
          const backends = urls.slice(0, Math.min(n, urls.length));
          const pool = makePool(new ConsistentHash({ balanceFactor: percent / 100 }), backends, {
            panicThreshold: 0,
          });
          const leases: Lease[] = [];
          for (const o of ops) {
            if ('acquire' in o) {
              // A skewed key distribution: key 0 is hot.
              const key = `k${o.acquire < 15 ? 0 : o.acquire}`;
              const eligible = pool.eligible();
              const m = eligible.reduce((s, b) => s + b.inFlight, 0);
              const cap = capOf(percent, m, eligible.length);
              const lease = pool.acquire({ key });
              expect(lease.backend.inFlight).toBeLessThanOrEqual(cap);
              leases.push(lease);
            } else if ('release' in o) {
              if (leases.length > 0) leases.splice(o.release % leases.length, 1)[0]!.release();
            } else {
              const id = backends[o.toggle % backends.length]!.slice(7);
              pool.setHealthy(id, pool.get(id)!.state !== 'healthy');
            }
          }
          for (const l of leases) l.release();
          expect(pool.stats().inFlight).toBe(0);
        },
      ),
      { seed: 42, numRuns: 150 },
    );
  });

  it('spreads a hot key instead of piling it on its owner', () => {
    const bounded = makePool(new ConsistentHash({ balanceFactor: 1.25 }), urls.slice(0, 4));
    const plain = makePool(new ConsistentHash(), urls.slice(0, 4));
    for (let i = 0; i < 100; i++) {
      bounded.acquire({ key: 'hot' });
      plain.acquire({ key: 'hot' });
    }
    const loads = bounded.stats().backends.map((b) => b.inFlight);
    expect(Math.max(...loads)).toBeLessThanOrEqual(Math.ceil((1.25 * 100) / 4));
    expect(Math.min(...loads)).toBeGreaterThan(0);
    expect(Math.max(...plain.stats().backends.map((b) => b.inFlight))).toBe(100);
  });

  it('keeps a key on its owner while the owner is under the cap', () => {
    const pool = makePool(new ConsistentHash({ balanceFactor: 1.25 }));
    const ring = new ConsistentHashRing(ids);
    for (const key of keys(200)) expect(route(pool, { key })).toBe(ring.get(key));
  });
});

describe('Maglev', () => {
  const envoyHosts = Array.from({ length: 6 }, (_, i) => `127.0.0.1:${90 + i}`);

  it('sends a key to the owner of slot XXH64(key) mod M of the Envoy-compatible table', () => {
    const pool = makePool(
      new Maglev({ tableSize: 7 }),
      envoyHosts.map((h) => `http://${h}`),
    );
    const table = new MaglevTable(
      envoyHosts.map((id) => ({ id })),
      { tableSize: 7 },
    );
    for (const key of keys(200)) {
      expect(route(pool, { key })).toBe(table.lookup(xxhash64(key)));
    }
  });

  it('probes the following slots while the owner is down, and returns after', () => {
    const pool = makePool(new Maglev());
    const table = new MaglevTable(ids.map((id) => ({ id })));
    const slots = table.toArray();
    const others = keys(300).filter((k) => table.lookupKey(k) !== ids[0]);
    pool.setHealthy(ids[0]!, false);
    for (const key of keys(300)) {
      let slot = Number(xxhash64(key) % 65537n);
      while (slots[slot] === ids[0]) slot = (slot + 1) % 65537;
      expect(route(pool, { key })).toBe(slots[slot]);
    }
    expect(others.filter((k) => route(pool, { key: k }) !== table.lookupKey(k))).toEqual([]);
    pool.setHealthy(ids[0]!, true);
    for (const key of keys(300)) expect(route(pool, { key })).toBe(table.lookupKey(key));
  });

  it('rebuilds on membership and weight changes', () => {
    const pool = makePool(new Maglev({ tableSize: 251 }));
    pool.setWeight(ids[1]!, 2);
    void pool.remove(ids[2]!, { drain: false });
    const table = new MaglevTable(
      ids.filter((_, i) => i !== 2).map((id, i) => ({ id, weight: i === 1 ? 2 : 1 })),
      { tableSize: 251 },
    );
    for (const key of keys(200)) expect(route(pool, { key })).toBe(table.lookupKey(key));
  });

  it('handles a missing key by policy and explains its picks', () => {
    const pool = makePool(new Maglev());
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(route(pool, {}));
    expect(seen.size).toBe(ids.length);
    const strict = makePool(new Maglev({ missingKey: 'throw' }));
    expect(() => strict.acquire({})).toThrow(LoadBalancerConfigError);
    const e = pool.explain({ key: 'user-1' });
    expect(e.wouldPick).toBe(route(pool, { key: 'user-1' }));
    expect(e.note).toMatch(/slot \d+/);
  });

  it('takes the key from a function of the context', () => {
    const pool = makePool(new Maglev({ key: (ctx) => ctx.key?.toLowerCase() }));
    expect(route(pool, { key: 'USER-1' })).toBe(route(pool, { key: 'user-1' }));
  });

  it.each([
    [{ tableSize: 65536 }],
    [{ tableSize: 0 }],
    [{ missingKey: 'none' }],
    [{ hostKey: 1 }],
    [{ table: 7 }],
  ])('rejects options %j', (options) => {
    expect(() => new Maglev(options as never)).toThrow(LoadBalancerConfigError);
  });
});

describe('IpHash', () => {
  it('keeps a client on one backend: its address is the ring key', () => {
    const pool = makePool(new IpHash());
    const ring = new ConsistentHashRing(ids);
    for (let i = 0; i < 200; i++) {
      const clientAddress = `192.168.${i >> 8}.${i & 255}`;
      expect(route(pool, { clientAddress })).toBe(ring.get(clientAddress));
      expect(route(pool, { clientAddress, key: 'ignored' })).toBe(ring.get(clientAddress));
    }
  });

  it('hashes an IPv4-mapped IPv6 address as its IPv4 form', () => {
    const pool = makePool(new IpHash());
    for (let i = 0; i < 50; i++) {
      const v4 = `172.16.0.${i}`;
      expect(route(pool, { clientAddress: `::ffff:${v4}` })).toBe(
        route(pool, { clientAddress: v4 }),
      );
      expect(route(pool, { clientAddress: `::FFFF:${v4}` })).toBe(
        route(pool, { clientAddress: v4 }),
      );
    }
    const ring = new ConsistentHashRing(ids);
    expect(route(pool, { clientAddress: '2001:db8::1' })).toBe(ring.get('2001:db8::1'));
    expect(route(pool, { clientAddress: '::ffff:abcd' })).toBe(ring.get('::ffff:abcd'));
  });

  it('moves a client to the next backend while its own is down', () => {
    const pool = makePool(new IpHash());
    const ring = new ConsistentHashRing(ids);
    const order = ring.getN('10.9.8.7', 2);
    pool.setHealthy(order[0]!, false);
    expect(route(pool, { clientAddress: '10.9.8.7' })).toBe(order[1]);
    pool.setHealthy(order[0]!, true);
    expect(route(pool, { clientAddress: '10.9.8.7' })).toBe(order[0]);
  });

  it('handles a missing address by policy', () => {
    const pool = makePool(new IpHash());
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(route(pool, {}));
    expect(seen.size).toBe(ids.length);
    expect(() => makePool(new IpHash({ missingKey: 'throw' })).acquire({})).toThrow(
      /clientAddress/,
    );
    expect(() => pool.acquire({ clientAddress: 7 as unknown as string })).toThrow(
      LoadBalancerConfigError,
    );
    expect(() => new IpHash({ key: () => 'x' } as never)).toThrow(LoadBalancerConfigError);
  });
});
