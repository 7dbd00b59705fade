import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LoadBalancerConfigError, murmur3, xxhash64 } from '../../src/index.js';
import envoy from '../fixtures/reference/maglev-envoy-basic.json' with { type: 'json' };

const M64 = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

/** A straightforward bigint XXH64 from xxHash's spec, to check the 32-bit-halves version against. */
function referenceXxh64(bytes: Uint8Array, seed: bigint): bigint {
  const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M64;
  const u64 = (o: number): bigint => {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(bytes[o + i]!);
    return v;
  };
  const u32 = (o: number): bigint => {
    let v = 0n;
    for (let i = 3; i >= 0; i--) v = (v << 8n) | BigInt(bytes[o + i]!);
    return v;
  };
  const round = (acc: bigint, input: bigint): bigint =>
    (rotl((acc + input * P2) & M64, 31n) * P1) & M64;
  const len = bytes.length;
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = (seed + P1 + P2) & M64;
    let v2 = (seed + P2) & M64;
    let v3 = seed;
    let v4 = (seed - P1) & M64;
    while (p + 32 <= len) {
      v1 = round(v1, u64(p));
      v2 = round(v2, u64(p + 8));
      v3 = round(v3, u64(p + 16));
      v4 = round(v4, u64(p + 24));
      p += 32;
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M64;
    for (const v of [v1, v2, v3, v4]) h = (((h ^ round(0n, v)) * P1) & M64) + P4;
    h &= M64;
  } else {
    h = (seed + P5) & M64;
  }
  h = (h + BigInt(len)) & M64;
  for (; p + 8 <= len; p += 8) h = ((rotl(h ^ round(0n, u64(p)), 27n) * P1) & M64) + P4;
  h &= M64;
  if (p + 4 <= len) {
    h = ((rotl(h ^ ((u32(p) * P1) & M64), 23n) * P2) & M64) + P3;
    h &= M64;
    p += 4;
  }
  for (; p < len; p++) h = (rotl(h ^ ((BigInt(bytes[p]!) * P5) & M64), 11n) * P1) & M64;
  h ^= h >> 33n;
  h = (h * P2) & M64;
  h ^= h >> 29n;
  h = (h * P3) & M64;
  h ^= h >> 32n;
  return h;
}

describe('xxhash64', () => {
  it.each([
    ['', 0n, 0xef46db3751d8e999n],
    ['', 1n, 0xd5afba1336a3be4bn],
    ['a', 0n, 0xd24ec4f1a98c6e5bn],
    ['as', 0n, 0x1c330fb2d66be179n],
    ['asd', 0n, 0x631c37ce72a97393n],
    ['asdf', 0n, 0x415872f599cea71en],
    ['abc', 0n, 0x44bc2cf5ad770999n],
    ['Call me Ishmael.', 0n, 0x6d04390fc9d61a90n],
    ['Some years ago--never mind how long precisely-', 0n, 0x8f26f2b986afdc52n],
    ['Nobody inspects the spammish repetition', 0n, 0xfbcea83c8a378bf1n],
  ])('matches the published vector for %j with seed %d', (input, seed, expected) => {
    expect(xxhash64(input, seed)).toBe(expected);
  });

  it("matches xxHash's sanity-check vectors (generated buffer, seeds 0 and 2654435761)", () => {
    const buf = new Uint8Array(101);
    let gen = 2654435761;
    for (let i = 0; i < buf.length; i++) {
      buf[i] = gen >>> 24;
      gen = Math.imul(gen, gen) >>> 0;
    }
    const cases: [number, number, bigint][] = [
      [0, 0, 0xef46db3751d8e999n],
      [0, 2654435761, 0xac75fda2929b17efn],
      [1, 0, 0x4fce394cc88952d8n],
      [1, 2654435761, 0x739840cb819fa723n],
      [14, 0, 0xcffa8db881bc3a3dn],
      [14, 2654435761, 0x5b9611585efcc9cbn],
      [101, 0, 0x0eab543384f878adn],
      [101, 2654435761, 0xcaa65939306f1e21n],
    ];
    for (const [len, seed, expected] of cases) {
      expect(xxhash64(buf.subarray(0, len), seed), `len ${len} seed ${seed}`).toBe(expected);
    }
  });

  it("agrees with Envoy's Maglev test hosts (seeds 0 and 1)", () => {
    for (const h of envoy.case.perHost) {
      expect(xxhash64(h.key, 0).toString(16).padStart(16, '0')).toBe(h.xxh64_seed0);
      expect(xxhash64(h.key, 1n).toString(16).padStart(16, '0')).toBe(h.xxh64_seed1);
    }
  });

  it('agrees with a bigint reference implementation on any bytes and seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.bigInt(0n, M64), (bytes, seed) => {
        expect(xxhash64(bytes, seed)).toBe(referenceXxh64(bytes, seed));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('hashes the UTF-8 bytes of a string', () => {
    const s = 'héllo wörld 😀, 32 bytes and more to use stripes';
    expect(xxhash64(s, 7)).toBe(xxhash64(new TextEncoder().encode(s), 7));
  });

  it.each([[-1n], [1n << 64n], [-1], [1.5], ['0']])('rejects the seed %s', (seed) => {
    expect(() => xxhash64('x', seed as bigint)).toThrow(LoadBalancerConfigError);
  });
});

describe('murmur3', () => {
  it.each([
    ['', 0, 0],
    ['', 1, 0x514e28b7],
    ['', 0xffffffff, 0x81f16f39],
    ['t', 0, 0xca87df4d],
    ['te', 0, 0xedb8ee1b],
    ['tes', 0, 0x0bb90e5a],
    ['test', 0, 0xba6bd213],
    ['test', 0x9747b28c, 0x704b81dc],
    ['Hello, world!', 0, 0xc0363e43],
    ['special characters açb↓c', 0, 0xbe83b140],
    ['The quick brown fox jumps over the lazy dog', 0, 0x2e4ff723],
  ])('MurmurHash3_x86_32(%j, %d) matches the reference', (input, seed, expected) => {
    expect(murmur3(input, seed)).toBe(expected);
  });

  it('hashes bytes like their string', () => {
    expect(murmur3(new TextEncoder().encode('açb↓c'))).toBe(murmur3('açb↓c'));
  });

  it('rejects a bad seed', () => {
    expect(() => murmur3('x', -1)).toThrow(LoadBalancerConfigError);
    expect(() => murmur3('x', 2 ** 32)).toThrow(LoadBalancerConfigError);
  });
});
