import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jumpHash, LoadBalancerConfigError } from '../../src/index.js';
import reference from '../fixtures/reference/jump-hash.json' with { type: 'json' };

describe('jumpHash', () => {
  it("reproduces every tuple of the paper's reference code", () => {
    const tuples = reference.tuples as [string, number, number][];
    expect(tuples.length).toBeGreaterThan(50);
    for (const [key, buckets, expected] of tuples) {
      expect(jumpHash(BigInt(key), buckets), `key ${key}, ${buckets} buckets`).toBe(expected);
    }
  });

  it('stays in range and, when buckets grow by one, moves a key only to the new bucket', () => {
    fc.assert(
      fc.property(fc.bigInt(0n, (1n << 64n) - 1n), fc.integer({ min: 1, max: 5000 }), (key, n) => {
        const before = jumpHash(key, n);
        const after = jumpHash(key, n + 1);
        expect(before).toBeGreaterThanOrEqual(0);
        expect(before).toBeLessThan(n);
        expect(after === before || after === n).toBe(true);
      }),
      { seed: 42, numRuns: 1000 },
    );
  });

  it('spreads keys evenly (every bucket within 10% of the mean over 50 000 keys)', () => {
    const counts = new Array<number>(10).fill(0);
    let key = 0x9e3779b97f4a7c15n;
    for (let i = 0; i < 50_000; i++) {
      key = (key * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n);
      counts[jumpHash(key, 10)]!++;
    }
    for (const c of counts) expect(Math.abs(c / 5000 - 1)).toBeLessThan(0.1);
  });

  it.each([
    [-1n, 3],
    [1n << 64n, 3],
    [5 as unknown as bigint, 3],
    [1n, 0],
    [1n, 1.5],
    [1n, 2 ** 31],
  ])('rejects key %s with %s buckets', (key, buckets) => {
    expect(() => jumpHash(key, buckets)).toThrow(LoadBalancerConfigError);
  });
});
