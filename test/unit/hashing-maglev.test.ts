import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LoadBalancerConfigError, MaglevTable, xxhash64 } from '../../src/index.js';
import envoy from '../fixtures/reference/maglev-envoy-basic.json' with { type: 'json' };
import paper from '../fixtures/reference/maglev-paper-table1.json' with { type: 'json' };

const paperBackends = paper.backends.map((id, i) => ({
  id,
  offset: paper.offset_skip[i]![0]!,
  skip: paper.offset_skip[i]![1]!,
}));

const slotsOf = (t: MaglevTable): number[] =>
  Array.from({ length: t.tableSize }, (_, i) => t.indexAt(i));

function counts(t: MaglevTable): Map<string, number> {
  const out = new Map<string, number>();
  for (const id of t.toArray()) out.set(id, (out.get(id) ?? 0) + 1);
  return out;
}

describe('MaglevTable', () => {
  it('reproduces Table 1 of the Maglev paper from its offsets and skips', () => {
    const table = new MaglevTable(paperBackends, { tableSize: paper.M });
    expect(table.ids).toEqual(['B1', 'B2', 'B3']);
    expect(slotsOf(table)).toEqual(paper.expected.before_0based_backend_index);
    expect(table.toArray()).toEqual(paper.expected.before_paper_labels);
  });

  it('reproduces Table 1 after B2 is removed: only one entry besides B2’s changes', () => {
    const table = new MaglevTable(
      paperBackends.filter((b) => b.id !== 'B2'),
      { tableSize: paper.M },
    );
    expect(table.toArray()).toEqual(paper.expected.after_paper_labels);
    const before = paper.expected.before_paper_labels;
    const changed = table.toArray().filter((id, i) => before[i] !== 'B2' && before[i] !== id);
    expect(changed).toHaveLength(1);
  });

  it("reproduces Envoy's Maglev table for six hosts at table size 7", () => {
    const table = new MaglevTable(
      envoy.case.hosts.map((h) => ({ id: h.key, weight: h.weight })),
      { tableSize: envoy.case.M },
    );
    expect(table.ids).toEqual(envoy.case.hosts.map((h) => h.key));
    expect(slotsOf(table)).toEqual(envoy.case.expectedTable_hostIndexForHash_i_mod_M);
    // The offsets and skips behind it, derived from XXH64 with seeds 0 and 1.
    for (const h of envoy.case.perHost) {
      expect(Number(xxhash64(h.key, 0) % 7n)).toBe(h.offset);
      expect(Number(xxhash64(h.key, 1) % 6n) + 1).toBe(h.skip);
      expect(table.toArray().filter((id) => id === h.key)).toHaveLength(h.entries);
    }
  });

  it('fills in ascending key order whatever order the backends come in', () => {
    const hosts = envoy.case.hosts.map((h) => ({ id: h.key }));
    const shuffled = [hosts[3]!, hosts[0]!, hosts[5]!, hosts[1]!, hosts[4]!, hosts[2]!];
    expect(new MaglevTable(shuffled, { tableSize: 7 }).toArray()).toEqual(
      new MaglevTable(hosts, { tableSize: 7 }).toArray(),
    );
  });

  it('looks up a 64-bit hash in slot hash mod M, and a key by XXH64(key, 0)', () => {
    const table = new MaglevTable(
      envoy.case.hosts.map((h) => ({ id: h.key })),
      { tableSize: 7 },
    );
    const expected = envoy.case.expectedTable_hostIndexForHash_i_mod_M;
    for (let i = 0; i < 7; i++) {
      const owner = envoy.case.hosts[expected[i]!]!.key;
      expect(table.lookup(BigInt(i))).toBe(owner);
      expect(table.lookup(BigInt(i) + 7n * 123456789012345n)).toBe(owner);
    }
    for (const key of ['user-1', 'user-2', '', 'ключ']) {
      expect(table.lookupKey(key)).toBe(table.lookup(xxhash64(key)));
    }
    // The largest hashes too: the slot arithmetic folds the high half exactly.
    const big = (1n << 64n) - 1n;
    expect(table.lookup(big)).toBe(table.toArray()[Number(big % 7n)]);
  });

  it('computes the slot XXH64(key) mod M exactly, without bigint, for any key and size', () => {
    const tables = [7, 65537, 1000003].map(
      (tableSize) => new MaglevTable([{ id: 'a' }, { id: 'b' }], { tableSize }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (key) => {
        for (const t of tables) {
          const slot = Number(xxhash64(key) % BigInt(t.tableSize));
          expect(t._slotOf(key, 0, key.length)).toBe(slot);
          expect(t.lookupKey(key)).toBe(t.ids[t.indexAt(slot)]);
        }
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it('gives equal backends nearly equal shares at M = 65537', () => {
    const ids = Array.from({ length: 100 }, (_, i) => `10.0.${i >> 8}.${i & 255}:8080`);
    const table = new MaglevTable(
      ids.map((id) => ({ id })),
      {},
    );
    expect(table.tableSize).toBe(65537);
    const c = counts(table);
    expect(Math.min(...c.values())).toBeGreaterThanOrEqual(655);
    expect(Math.max(...c.values())).toBeLessThanOrEqual(656);
  });

  it('applies weights as Envoy does: shares within 1% of the weights', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 9999 }), { minLength: 2, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 12, maxLength: 12 }),
        (suffixes, weights) => {
          const backends = suffixes.map((s, i) => ({ id: `h${s}:80`, weight: weights[i]! }));
          const total = backends.reduce((sum, b) => sum + b.weight, 0);
          const table = new MaglevTable(backends, { tableSize: 65537 });
          const c = counts(table);
          for (const b of backends) {
            const expected = (65537 * b.weight) / total;
            expect(Math.abs((c.get(b.id) ?? 0) - expected) / expected).toBeLessThan(0.01);
          }
        },
      ),
      { seed: 42, numRuns: 25 },
    );
  });

  it('removing one of 100 backends reassigns its slots and moves under 1.5% of the others', () => {
    fc.assert(
      fc.property(fc.nat(99), (gone) => {
        const ids = Array.from({ length: 100 }, (_, i) => `10.1.${i >> 8}.${i & 255}:9000`);
        const before = new MaglevTable(ids.map((id) => ({ id }))).toArray();
        const after = new MaglevTable(
          ids.filter((_, i) => i !== gone).map((id) => ({ id })),
        ).toArray();
        let moved = 0;
        for (let i = 0; i < before.length; i++) {
          if (before[i] === ids[gone]) expect(after[i]).not.toBe(ids[gone]);
          else if (after[i] !== before[i]) moved++;
        }
        expect(moved / before.length).toBeLessThan(0.015);
      }),
      { seed: 42, numRuns: 5 },
    );
  });

  it.each([
    [{ tableSize: 65536 }],
    [{ tableSize: 1 }],
    [{ tableSize: 2 ** 26 + 15 }],
    [{ tableSize: 7.5 }],
    [{ size: 7 }],
  ])('rejects options %j', (options) => {
    expect(() => new MaglevTable([{ id: 'a' }], options as never)).toThrow(LoadBalancerConfigError);
  });

  it.each([
    [[]],
    [[{ id: 'a' }, { id: 'a' }]],
    [[{ id: 'a', weight: 0 }]],
    [[{ id: 'a', offset: 1 }]],
    [[{ id: 'a', offset: 7, skip: 1 }]],
    [[{ id: 'a', offset: 0, skip: 0 }]],
    [[{ id: '' }]],
    [['a']],
  ])('rejects backends %j', (backends) => {
    expect(() => new MaglevTable(backends as never, { tableSize: 7 })).toThrow(
      LoadBalancerConfigError,
    );
  });

  it('rejects hashes that are not unsigned 64-bit bigints', () => {
    const table = new MaglevTable([{ id: 'a' }], { tableSize: 7 });
    expect(() => table.lookup(-1n)).toThrow(LoadBalancerConfigError);
    expect(() => table.lookup(1n << 64n)).toThrow(LoadBalancerConfigError);
    expect(() => table.lookup(3 as unknown as bigint)).toThrow(LoadBalancerConfigError);
    expect(() => table.indexAt(7)).toThrow(LoadBalancerConfigError);
  });
});
