/**
 * XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in xxHash's `doc/xxhash_spec.md`),
 * over UTF-8 bytes, with a 64-bit seed. Envoy's Maglev derives each host's offset and skip from
 * it (seeds 0 and 1), so a compatible table needs it bit for bit.
 *
 * The arithmetic runs on pairs of 32-bit halves rather than `bigint`, which would allocate at
 * every step; only the public {@link xxhash64} builds a `bigint`, once, for its result.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { mulHi32 } from './uint64.js';
import { copyToScratch, encodeUtf8, utf8Scratch } from './utf8.js';

// The five 64-bit primes of XXH64, as (high, low) 32-bit halves.
const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;

/**
 * Result registers of the 64-bit helpers below: [high, low] unsigned 32-bit halves. A typed array
 * rather than two module-level variables, which would box every value above 2^30 they hold.
 */
const R = new Uint32Array(2);

/** R = (ah, al) × (bh, bl) mod 2^64. */
function mul64(ah: number, al: number, bh: number, bl: number): void {
  const hi = mulHi32(al, bl) + Math.imul(al, bh) + Math.imul(ah, bl);
  R[1] = Math.imul(al, bl);
  R[0] = hi;
}

/** R = (ah, al) + (bh, bl) mod 2^64. */
function add64(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  R[1] = lo;
  R[0] = ah + bh + (lo > 0xffffffff ? 1 : 0);
}

/** R = (h, l) rotated left by r bits, 0 < r < 32. */
function rotl64(h: number, l: number, r: number): void {
  R[0] = (h << r) | (l >>> (32 - r));
  R[1] = (l << r) | (h >>> (32 - r));
}

/** XXH64's round: acc = rotl(acc + input × P2, 31) × P1. Result in R. */
function round(acch: number, accl: number, inh: number, inl: number): void {
  mul64(inh, inl, P2H, P2L);
  add64(acch, accl, R[0]!, R[1]!);
  rotl64(R[0]!, R[1]!, 31);
  mul64(R[0]!, R[1]!, P1H, P1L);
}

/** Reads the little-endian uint32 at `buf[o]`. */
function u32(buf: Uint8Array, o: number): number {
  return (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0;
}

/**
 * XXH64 of `buf[0, len)` with the seed (seedHi, seedLo); the result goes to `out[0]` (high half)
 * and `out[1]` (low half).
 */
function xxh64Buffer(
  buf: Uint8Array,
  len: number,
  seedHi: number,
  seedLo: number,
  out: Uint32Array,
): void {
  let p = 0;
  let hh: number;
  let hl: number;
  if (len >= 32) {
    // Four accumulators over 32-byte stripes.
    add64(seedHi, seedLo, P1H, P1L);
    add64(R[0]!, R[1]!, P2H, P2L);
    let v1h = R[0]!;
    let v1l = R[1]!;
    add64(seedHi, seedLo, P2H, P2L);
    let v2h = R[0]!;
    let v2l = R[1]!;
    let v3h = seedHi;
    let v3l = seedLo;
    // seed - P1 = seed + (2^64 - P1)
    add64(seedHi, seedLo, ~P1H >>> 0, ((~P1L >>> 0) + 1) >>> 0);
    let v4h = R[0]!;
    let v4l = R[1]!;
    const limit = len - 32;
    do {
      round(v1h, v1l, u32(buf, p + 4), u32(buf, p));
      v1h = R[0]!;
      v1l = R[1]!;
      round(v2h, v2l, u32(buf, p + 12), u32(buf, p + 8));
      v2h = R[0]!;
      v2l = R[1]!;
      round(v3h, v3l, u32(buf, p + 20), u32(buf, p + 16));
      v3h = R[0]!;
      v3l = R[1]!;
      round(v4h, v4l, u32(buf, p + 28), u32(buf, p + 24));
      v4h = R[0]!;
      v4l = R[1]!;
      p += 32;
    } while (p <= limit);
    rotl64(v1h, v1l, 1);
    hh = R[0]!;
    hl = R[1]!;
    rotl64(v2h, v2l, 7);
    add64(hh, hl, R[0]!, R[1]!);
    hh = R[0]!;
    hl = R[1]!;
    rotl64(v3h, v3l, 12);
    add64(hh, hl, R[0]!, R[1]!);
    hh = R[0]!;
    hl = R[1]!;
    rotl64(v4h, v4l, 18);
    add64(hh, hl, R[0]!, R[1]!);
    hh = R[0]!;
    hl = R[1]!;
    // Merge rounds: h = (h ^ round(0, v)) × P1 + P4, for each accumulator.
    for (let k = 0; k < 4; k++) {
      const vh = k === 0 ? v1h : k === 1 ? v2h : k === 2 ? v3h : v4h;
      const vl = k === 0 ? v1l : k === 1 ? v2l : k === 2 ? v3l : v4l;
      round(0, 0, vh, vl);
      mul64((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, P1H, P1L);
      add64(R[0]!, R[1]!, P4H, P4L);
      hh = R[0]!;
      hl = R[1]!;
    }
  } else {
    add64(seedHi, seedLo, P5H, P5L);
    hh = R[0]!;
    hl = R[1]!;
  }
  // h += total length (a message here is far below 2^32 bytes).
  add64(hh, hl, Math.floor(len / 0x100000000), len >>> 0);
  hh = R[0]!;
  hl = R[1]!;
  // Remaining 8-byte lanes.
  while (p + 8 <= len) {
    round(0, 0, u32(buf, p + 4), u32(buf, p));
    rotl64((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, 27);
    mul64(R[0]!, R[1]!, P1H, P1L);
    add64(R[0]!, R[1]!, P4H, P4L);
    hh = R[0]!;
    hl = R[1]!;
    p += 8;
  }
  // A remaining 4-byte lane.
  if (p + 4 <= len) {
    mul64(0, u32(buf, p), P1H, P1L);
    rotl64((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, 23);
    mul64(R[0]!, R[1]!, P2H, P2L);
    add64(R[0]!, R[1]!, P3H, P3L);
    hh = R[0]!;
    hl = R[1]!;
    p += 4;
  }
  // Remaining bytes.
  while (p < len) {
    mul64(0, buf[p]!, P5H, P5L);
    rotl64((hh ^ R[0]!) >>> 0, (hl ^ R[1]!) >>> 0, 11);
    mul64(R[0]!, R[1]!, P1H, P1L);
    hh = R[0]!;
    hl = R[1]!;
    p++;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl = (hl ^ (hh >>> 1)) >>> 0;
  mul64(hh, hl, P2H, P2L);
  hh = R[0]!;
  hl = (R[1]! ^ ((R[1]! >>> 29) | (R[0]! << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul64(hh, hl, P3H, P3L);
  out[0] = R[0]!;
  out[1] = (R[1]! ^ R[0]!) >>> 0;
}

/**
 * XXH64 of the UTF-8 bytes of `str[start, end)`: high half to `out[0]`, low half to `out[1]`.
 * Allocates nothing for keys that fit the scratch buffer.
 * @internal
 */
export function xxh64Words(
  str: string,
  start: number,
  end: number,
  seedHi: number,
  seedLo: number,
  out: Uint32Array,
): void {
  const len = encodeUtf8(str, start, end, 0);
  xxh64Buffer(utf8Scratch(), len, seedHi, seedLo, out);
}

const MASK64 = (1n << 64n) - 1n;
const words = new Uint32Array(2);

/**
 * XXH64 of a string's UTF-8 bytes (or of raw bytes) with a 64-bit seed, as an unsigned `bigint`.
 * Matches the reference implementation (`XXH64()` of xxHash), so it agrees with Envoy's
 * `HashUtil::xxHash64` and with `xxhsum -H1`.
 *
 * @param seed An unsigned 64-bit seed: a `bigint` in [0, 2^64) or a safe integer >= 0.
 * @default seed 0
 * @example
 * ```ts
 * xxhash64(''); // 0xef46db3751d8e999n
 * xxhash64('127.0.0.1:90', 1n); // the skip seed of Envoy's Maglev
 * ```
 */
export function xxhash64(input: string | Uint8Array, seed: bigint | number = 0): bigint {
  let s: bigint;
  if (typeof seed === 'bigint' && seed >= 0n && seed <= MASK64) {
    s = seed;
  } else if (typeof seed === 'number' && Number.isSafeInteger(seed) && seed >= 0) {
    s = BigInt(seed);
  } else {
    throw new LoadBalancerConfigError(
      'xxhash64(seed)',
      seed,
      'an unsigned 64-bit seed: a bigint in [0, 2^64) or a safe integer >= 0',
    );
  }
  const seedHi = Number(s >> 32n);
  const seedLo = Number(s & 0xffffffffn);
  if (typeof input === 'string') {
    xxh64Words(input, 0, input.length, seedHi, seedLo, words);
  } else if (input instanceof Uint8Array) {
    const len = copyToScratch(input, 0);
    xxh64Buffer(utf8Scratch(), len, seedHi, seedLo, words);
  } else {
    throw new LoadBalancerConfigError('xxhash64(input)', input, 'a string or a Uint8Array');
  }
  return (BigInt(words[0]!) << 32n) | BigInt(words[1]!);
}
