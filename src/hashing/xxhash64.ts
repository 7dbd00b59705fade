/**
 * XXH64 (Yann Collet's xxHash, 64-bit variant, as specified in xxHash's `doc/xxhash_spec.md`),
 * over UTF-8 bytes, with a 64-bit seed. Envoy's Maglev derives each host's offset and skip from
 * it (seeds 0 and 1), so a compatible table needs it bit for bit.
 *
 * The arithmetic runs on pairs of 32-bit halves in local variables rather than on `bigint`,
 * which would allocate at every step: the 64-bit products by XXH64's primes are spelled out
 * inline (16-bit partial products for the high word), so the function allocates nothing and
 * does not depend on the optimizer inlining helpers. Only the public {@link xxhash64} builds a
 * `bigint`, once, for its result.
 *
 * Why the repetition stays: a version with helpers (`round`, `mergeRound`, add, rotate and a
 * 64×64 multiply by a prime, leaving their result in module-level state rather than returning an
 * object) gave the same hashes but was much slower on Node 20 (V8 11.3), whose inlining budget
 * (920 bytecode bytes per optimized function) leaves most helper calls as real calls.
 * Measured with `npx tsx bench/index.ts hashing` (CPU-time medians, 16 to 22-byte keys), inline
 * against helpers: XXH64 to two words 164-165 ns against 275-279 ns, `xxhash64(key)` to a bigint
 * 238-250 ns against 355-401 ns, Maglev `lookupKey` 199-200 ns against 327-330 ns. In an
 * interleaved A/B run of `xxhash64(key, 1n)`, the helpers were 1.46-1.53× slower with the result
 * in module-level numbers kept as signed int32 (2.8-2.9× as unsigned numbers, which V8 boxes),
 * 1.50-1.59× in an Int32Array and 1.33-1.40× in a plain object.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { copyToScratch, encodeUtf8, utf8Scratch } from './utf8.js';

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
  let th = 0;
  let tl = 0;
  let kh = 0;
  let kl = 0;
  let m1 = 0;
  let m2 = 0;
  let mid = 0;
  let hi = 0;
  let lo = 0;
  if (len >= 32) {
    // Four accumulators over 32-byte stripes: v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed,
    // v4 = seed - P1 (that is, seed + 2^64 - P1).
    let v1h = seedHi;
    let v1l = seedLo;
    lo = v1l + 0x85ebca87;
    v1h = (v1h + 0x9e3779b1 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v1l = lo >>> 0;
    lo = v1l + 0x27d4eb4f;
    v1h = (v1h + 0xc2b2ae3d + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v1l = lo >>> 0;
    let v2h = seedHi;
    let v2l = seedLo;
    lo = v2l + 0x27d4eb4f;
    v2h = (v2h + 0xc2b2ae3d + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v2l = lo >>> 0;
    let v3h = seedHi;
    let v3l = seedLo;
    let v4h = seedHi;
    let v4l = seedLo;
    lo = v4l + 0x7a143579;
    v4h = (v4h + 0x61c8864e + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    v4l = lo >>> 0;
    const limit = len - 32;
    do {
      kl = u32(buf, p + 0);
      kh = u32(buf, p + 4);
      m1 = (kl >>> 16) * 0xeb4f;
      m2 = (kl & 0xffff) * 0x27d4;
      mid = (((kl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (kl >>> 16) * 0x27d4 +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(kl, 0xc2b2ae3d) +
        Math.imul(kh, 0x27d4eb4f);
      tl = Math.imul(kl, 0x27d4eb4f) >>> 0;
      th = hi >>> 0;
      lo = v1l + tl;
      v1h = (v1h + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
      v1l = lo >>> 0;
      hi = (v1h << 31) | (v1l >>> 1);
      v1l = ((v1l << 31) | (v1h >>> 1)) >>> 0;
      v1h = hi >>> 0;
      m1 = (v1l >>> 16) * 0xca87;
      m2 = (v1l & 0xffff) * 0x85eb;
      mid = (((v1l & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (v1l >>> 16) * 0x85eb +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(v1l, 0x9e3779b1) +
        Math.imul(v1h, 0x85ebca87);
      v1l = Math.imul(v1l, 0x85ebca87) >>> 0;
      v1h = hi >>> 0;
      kl = u32(buf, p + 8);
      kh = u32(buf, p + 12);
      m1 = (kl >>> 16) * 0xeb4f;
      m2 = (kl & 0xffff) * 0x27d4;
      mid = (((kl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (kl >>> 16) * 0x27d4 +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(kl, 0xc2b2ae3d) +
        Math.imul(kh, 0x27d4eb4f);
      tl = Math.imul(kl, 0x27d4eb4f) >>> 0;
      th = hi >>> 0;
      lo = v2l + tl;
      v2h = (v2h + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
      v2l = lo >>> 0;
      hi = (v2h << 31) | (v2l >>> 1);
      v2l = ((v2l << 31) | (v2h >>> 1)) >>> 0;
      v2h = hi >>> 0;
      m1 = (v2l >>> 16) * 0xca87;
      m2 = (v2l & 0xffff) * 0x85eb;
      mid = (((v2l & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (v2l >>> 16) * 0x85eb +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(v2l, 0x9e3779b1) +
        Math.imul(v2h, 0x85ebca87);
      v2l = Math.imul(v2l, 0x85ebca87) >>> 0;
      v2h = hi >>> 0;
      kl = u32(buf, p + 16);
      kh = u32(buf, p + 20);
      m1 = (kl >>> 16) * 0xeb4f;
      m2 = (kl & 0xffff) * 0x27d4;
      mid = (((kl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (kl >>> 16) * 0x27d4 +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(kl, 0xc2b2ae3d) +
        Math.imul(kh, 0x27d4eb4f);
      tl = Math.imul(kl, 0x27d4eb4f) >>> 0;
      th = hi >>> 0;
      lo = v3l + tl;
      v3h = (v3h + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
      v3l = lo >>> 0;
      hi = (v3h << 31) | (v3l >>> 1);
      v3l = ((v3l << 31) | (v3h >>> 1)) >>> 0;
      v3h = hi >>> 0;
      m1 = (v3l >>> 16) * 0xca87;
      m2 = (v3l & 0xffff) * 0x85eb;
      mid = (((v3l & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (v3l >>> 16) * 0x85eb +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(v3l, 0x9e3779b1) +
        Math.imul(v3h, 0x85ebca87);
      v3l = Math.imul(v3l, 0x85ebca87) >>> 0;
      v3h = hi >>> 0;
      kl = u32(buf, p + 24);
      kh = u32(buf, p + 28);
      m1 = (kl >>> 16) * 0xeb4f;
      m2 = (kl & 0xffff) * 0x27d4;
      mid = (((kl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (kl >>> 16) * 0x27d4 +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(kl, 0xc2b2ae3d) +
        Math.imul(kh, 0x27d4eb4f);
      tl = Math.imul(kl, 0x27d4eb4f) >>> 0;
      th = hi >>> 0;
      lo = v4l + tl;
      v4h = (v4h + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
      v4l = lo >>> 0;
      hi = (v4h << 31) | (v4l >>> 1);
      v4l = ((v4l << 31) | (v4h >>> 1)) >>> 0;
      v4h = hi >>> 0;
      m1 = (v4l >>> 16) * 0xca87;
      m2 = (v4l & 0xffff) * 0x85eb;
      mid = (((v4l & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
      hi =
        (v4l >>> 16) * 0x85eb +
        (m1 >>> 16) +
        (m2 >>> 16) +
        (mid >>> 16) +
        Math.imul(v4l, 0x9e3779b1) +
        Math.imul(v4h, 0x85ebca87);
      v4l = Math.imul(v4l, 0x85ebca87) >>> 0;
      v4h = hi >>> 0;
      p += 32;
    } while (p <= limit);
    hi = (v1h << 1) | (v1l >>> 31);
    hl = ((v1l << 1) | (v1h >>> 31)) >>> 0;
    hh = hi >>> 0;
    hi = (v2h << 7) | (v2l >>> 25);
    tl = ((v2l << 7) | (v2h >>> 25)) >>> 0;
    th = hi >>> 0;
    lo = hl + tl;
    hh = (hh + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    hi = (v3h << 12) | (v3l >>> 20);
    tl = ((v3l << 12) | (v3h >>> 20)) >>> 0;
    th = hi >>> 0;
    lo = hl + tl;
    hh = (hh + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    hi = (v4h << 18) | (v4l >>> 14);
    tl = ((v4l << 18) | (v4h >>> 14)) >>> 0;
    th = hi >>> 0;
    lo = hl + tl;
    hh = (hh + th + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    // Merge rounds: h = (h ^ round(0, v)) * P1 + P4 for each accumulator.
    m1 = (v1l >>> 16) * 0xeb4f;
    m2 = (v1l & 0xffff) * 0x27d4;
    mid = (((v1l & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (v1l >>> 16) * 0x27d4 +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(v1l, 0xc2b2ae3d) +
      Math.imul(v1h, 0x27d4eb4f);
    kl = Math.imul(v1l, 0x27d4eb4f) >>> 0;
    kh = hi >>> 0;
    hi = (kh << 31) | (kl >>> 1);
    kl = ((kl << 31) | (kh >>> 1)) >>> 0;
    kh = hi >>> 0;
    m1 = (kl >>> 16) * 0xca87;
    m2 = (kl & 0xffff) * 0x85eb;
    mid = (((kl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(kl, 0x9e3779b1) +
      Math.imul(kh, 0x85ebca87);
    kl = Math.imul(kl, 0x85ebca87) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    m1 = (hl >>> 16) * 0xca87;
    m2 = (hl & 0xffff) * 0x85eb;
    mid = (((hl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0x9e3779b1) +
      Math.imul(hh, 0x85ebca87);
    hl = Math.imul(hl, 0x85ebca87) >>> 0;
    hh = hi >>> 0;
    lo = hl + 0xc2b2ae63;
    hh = (hh + 0x85ebca77 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    m1 = (v2l >>> 16) * 0xeb4f;
    m2 = (v2l & 0xffff) * 0x27d4;
    mid = (((v2l & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (v2l >>> 16) * 0x27d4 +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(v2l, 0xc2b2ae3d) +
      Math.imul(v2h, 0x27d4eb4f);
    kl = Math.imul(v2l, 0x27d4eb4f) >>> 0;
    kh = hi >>> 0;
    hi = (kh << 31) | (kl >>> 1);
    kl = ((kl << 31) | (kh >>> 1)) >>> 0;
    kh = hi >>> 0;
    m1 = (kl >>> 16) * 0xca87;
    m2 = (kl & 0xffff) * 0x85eb;
    mid = (((kl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(kl, 0x9e3779b1) +
      Math.imul(kh, 0x85ebca87);
    kl = Math.imul(kl, 0x85ebca87) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    m1 = (hl >>> 16) * 0xca87;
    m2 = (hl & 0xffff) * 0x85eb;
    mid = (((hl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0x9e3779b1) +
      Math.imul(hh, 0x85ebca87);
    hl = Math.imul(hl, 0x85ebca87) >>> 0;
    hh = hi >>> 0;
    lo = hl + 0xc2b2ae63;
    hh = (hh + 0x85ebca77 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    m1 = (v3l >>> 16) * 0xeb4f;
    m2 = (v3l & 0xffff) * 0x27d4;
    mid = (((v3l & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (v3l >>> 16) * 0x27d4 +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(v3l, 0xc2b2ae3d) +
      Math.imul(v3h, 0x27d4eb4f);
    kl = Math.imul(v3l, 0x27d4eb4f) >>> 0;
    kh = hi >>> 0;
    hi = (kh << 31) | (kl >>> 1);
    kl = ((kl << 31) | (kh >>> 1)) >>> 0;
    kh = hi >>> 0;
    m1 = (kl >>> 16) * 0xca87;
    m2 = (kl & 0xffff) * 0x85eb;
    mid = (((kl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(kl, 0x9e3779b1) +
      Math.imul(kh, 0x85ebca87);
    kl = Math.imul(kl, 0x85ebca87) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    m1 = (hl >>> 16) * 0xca87;
    m2 = (hl & 0xffff) * 0x85eb;
    mid = (((hl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0x9e3779b1) +
      Math.imul(hh, 0x85ebca87);
    hl = Math.imul(hl, 0x85ebca87) >>> 0;
    hh = hi >>> 0;
    lo = hl + 0xc2b2ae63;
    hh = (hh + 0x85ebca77 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    m1 = (v4l >>> 16) * 0xeb4f;
    m2 = (v4l & 0xffff) * 0x27d4;
    mid = (((v4l & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (v4l >>> 16) * 0x27d4 +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(v4l, 0xc2b2ae3d) +
      Math.imul(v4h, 0x27d4eb4f);
    kl = Math.imul(v4l, 0x27d4eb4f) >>> 0;
    kh = hi >>> 0;
    hi = (kh << 31) | (kl >>> 1);
    kl = ((kl << 31) | (kh >>> 1)) >>> 0;
    kh = hi >>> 0;
    m1 = (kl >>> 16) * 0xca87;
    m2 = (kl & 0xffff) * 0x85eb;
    mid = (((kl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(kl, 0x9e3779b1) +
      Math.imul(kh, 0x85ebca87);
    kl = Math.imul(kl, 0x85ebca87) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    m1 = (hl >>> 16) * 0xca87;
    m2 = (hl & 0xffff) * 0x85eb;
    mid = (((hl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0x9e3779b1) +
      Math.imul(hh, 0x85ebca87);
    hl = Math.imul(hl, 0x85ebca87) >>> 0;
    hh = hi >>> 0;
    lo = hl + 0xc2b2ae63;
    hh = (hh + 0x85ebca77 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
  } else {
    hh = seedHi;
    hl = seedLo;
    lo = hl + 0x165667c5;
    hh = (hh + 0x27d4eb2f + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
  }
  // h += total length (a message here is far below 2^32 bytes).
  lo = hl + len;
  hh = (hh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  hl = lo >>> 0;
  // Remaining 8-byte lanes: h = rotl(h ^ round(0, lane), 27) * P1 + P4.
  while (p + 8 <= len) {
    kl = u32(buf, p);
    kh = u32(buf, p + 4);
    m1 = (kl >>> 16) * 0xeb4f;
    m2 = (kl & 0xffff) * 0x27d4;
    mid = (((kl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x27d4 +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(kl, 0xc2b2ae3d) +
      Math.imul(kh, 0x27d4eb4f);
    kl = Math.imul(kl, 0x27d4eb4f) >>> 0;
    kh = hi >>> 0;
    hi = (kh << 31) | (kl >>> 1);
    kl = ((kl << 31) | (kh >>> 1)) >>> 0;
    kh = hi >>> 0;
    m1 = (kl >>> 16) * 0xca87;
    m2 = (kl & 0xffff) * 0x85eb;
    mid = (((kl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(kl, 0x9e3779b1) +
      Math.imul(kh, 0x85ebca87);
    kl = Math.imul(kl, 0x85ebca87) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    hi = (hh << 27) | (hl >>> 5);
    hl = ((hl << 27) | (hh >>> 5)) >>> 0;
    hh = hi >>> 0;
    m1 = (hl >>> 16) * 0xca87;
    m2 = (hl & 0xffff) * 0x85eb;
    mid = (((hl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0x9e3779b1) +
      Math.imul(hh, 0x85ebca87);
    hl = Math.imul(hl, 0x85ebca87) >>> 0;
    hh = hi >>> 0;
    lo = hl + 0xc2b2ae63;
    hh = (hh + 0x85ebca77 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    p += 8;
  }
  // A remaining 4-byte lane: h = rotl(h ^ (lane * P1), 23) * P2 + P3.
  if (p + 4 <= len) {
    kl = u32(buf, p);
    m1 = (kl >>> 16) * 0xca87;
    m2 = (kl & 0xffff) * 0x85eb;
    mid = (((kl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x85eb + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16) + Math.imul(kl, 0x9e3779b1);
    kl = Math.imul(kl, 0x85ebca87) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    hi = (hh << 23) | (hl >>> 9);
    hl = ((hl << 23) | (hh >>> 9)) >>> 0;
    hh = hi >>> 0;
    m1 = (hl >>> 16) * 0xeb4f;
    m2 = (hl & 0xffff) * 0x27d4;
    mid = (((hl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x27d4 +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0xc2b2ae3d) +
      Math.imul(hh, 0x27d4eb4f);
    hl = Math.imul(hl, 0x27d4eb4f) >>> 0;
    hh = hi >>> 0;
    lo = hl + 0x9e3779f9;
    hh = (hh + 0x165667b1 + (lo > 0xffffffff ? 1 : 0)) >>> 0;
    hl = lo >>> 0;
    p += 4;
  }
  // Remaining bytes: h = rotl(h ^ (byte * P5), 11) * P1.
  while (p < len) {
    kl = buf[p]!;
    m1 = (kl >>> 16) * 0x67c5;
    m2 = (kl & 0xffff) * 0x1656;
    mid = (((kl & 0xffff) * 0x67c5) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (kl >>> 16) * 0x1656 + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16) + Math.imul(kl, 0x27d4eb2f);
    kl = Math.imul(kl, 0x165667c5) >>> 0;
    kh = hi >>> 0;
    hh = (hh ^ kh) >>> 0;
    hl = (hl ^ kl) >>> 0;
    hi = (hh << 11) | (hl >>> 21);
    hl = ((hl << 11) | (hh >>> 21)) >>> 0;
    hh = hi >>> 0;
    m1 = (hl >>> 16) * 0xca87;
    m2 = (hl & 0xffff) * 0x85eb;
    mid = (((hl & 0xffff) * 0xca87) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
    hi =
      (hl >>> 16) * 0x85eb +
      (m1 >>> 16) +
      (m2 >>> 16) +
      (mid >>> 16) +
      Math.imul(hl, 0x9e3779b1) +
      Math.imul(hh, 0x85ebca87);
    hl = Math.imul(hl, 0x85ebca87) >>> 0;
    hh = hi >>> 0;
    p++;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl = (hl ^ (hh >>> 1)) >>> 0;
  m1 = (hl >>> 16) * 0xeb4f;
  m2 = (hl & 0xffff) * 0x27d4;
  mid = (((hl & 0xffff) * 0xeb4f) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  hi =
    (hl >>> 16) * 0x27d4 +
    (m1 >>> 16) +
    (m2 >>> 16) +
    (mid >>> 16) +
    Math.imul(hl, 0xc2b2ae3d) +
    Math.imul(hh, 0x27d4eb4f);
  hl = Math.imul(hl, 0x27d4eb4f) >>> 0;
  hh = hi >>> 0;
  hl = (hl ^ ((hl >>> 29) | (hh << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  m1 = (hl >>> 16) * 0x79f9;
  m2 = (hl & 0xffff) * 0x9e37;
  mid = (((hl & 0xffff) * 0x79f9) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  hi =
    (hl >>> 16) * 0x9e37 +
    (m1 >>> 16) +
    (m2 >>> 16) +
    (mid >>> 16) +
    Math.imul(hl, 0x165667b1) +
    Math.imul(hh, 0x9e3779f9);
  hl = Math.imul(hl, 0x9e3779f9) >>> 0;
  hh = hi >>> 0;
  out[0] = hh;
  out[1] = (hl ^ hh) >>> 0;
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
