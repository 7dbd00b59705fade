/**
 * MD5 (RFC 1321) in plain JavaScript, for ketama-compatible rings: points come from
 * `md5("host:port-i")` and a key's position from `md5(key)`. For the short strings a ring hashes,
 * this is several times faster than `node:crypto` (whose per-call overhead dominates), and it runs
 * on every runtime. Not for security: MD5 is broken as a cryptographic hash.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { copyToScratch, encodeUtf8, LITTLE_ENDIAN, utf8Scratch, utf8Scratch32 } from './utf8.js';

/** Bytes of padding room MD5 needs after the message: 0x80, zeros, a 64-bit length. */
const PAD = 72;

/**
 * The four state words of the last digest (a, b, c, d). Word `i` is the little-endian uint32 of
 * digest bytes `4i..4i+3`, which is exactly how ketama reads a point.
 * @internal
 */
// Typed without a buffer type argument, which declarations would need TypeScript 5.7 to read.
export const md5Out: Uint32Array = new Uint32Array(4);

/**
 * Pads `buf[0, len)` in place for MD5 (the buffer needs {@link PAD} spare bytes) and returns the
 * padded length in 32-bit words.
 */
function padScratch(buf: Uint8Array, len: number): number {
  // Padding: 0x80, zeros up to 56 mod 64, then the bit length as a little-endian 64-bit integer.
  const total = ((len + 8) >>> 6) * 64 + 64;
  buf[len] = 0x80;
  for (let i = len + 1; i < total - 8; i++) buf[i] = 0;
  const bitsLo = (len << 3) >>> 0;
  const bitsHi = Math.floor(len / 0x20000000);
  buf[total - 8] = bitsLo & 0xff;
  buf[total - 7] = (bitsLo >>> 8) & 0xff;
  buf[total - 6] = (bitsLo >>> 16) & 0xff;
  buf[total - 5] = bitsLo >>> 24;
  buf[total - 4] = bitsHi & 0xff;
  buf[total - 3] = (bitsHi >>> 8) & 0xff;
  buf[total - 2] = (bitsHi >>> 16) & 0xff;
  buf[total - 1] = bitsHi >>> 24;
  // MD5 reads little-endian words; on a big-endian platform swap each word's bytes first, so
  // that the word view of the buffer reads them right.
  if (!LITTLE_ENDIAN) {
    for (let i = 0; i < total; i += 4) {
      const b0 = buf[i]!;
      const b1 = buf[i + 1]!;
      buf[i] = buf[i + 3]!;
      buf[i + 1] = buf[i + 2]!;
      buf[i + 2] = b1;
      buf[i + 3] = b0;
    }
  }
  return total >> 2;
}

/** One padded block, for short ASCII keys built straight from the string's characters. */
const block = new Int32Array(16);

/**
 * Fills {@link block} with `str[start, start + len)` (len <= 55) and its MD5 padding, when every
 * character is ASCII (one UTF-8 byte each); returns false otherwise.
 */
function asciiBlock(str: string, start: number, len: number): boolean {
  const w = block;
  let word = 0;
  let k = 0;
  let i = 0;
  for (; i < len; i++) {
    const c = str.charCodeAt(start + i);
    if (c > 0x7f) return false;
    word |= c << ((i & 3) << 3);
    if ((i & 3) === 3) {
      w[k++] = word;
      word = 0;
    }
  }
  w[k++] = word | (0x80 << ((i & 3) << 3));
  while (k < 14) w[k++] = 0;
  w[14] = len << 3;
  w[15] = 0;
  return true;
}

/** The MD5 compression of `w[0, words)` (whole padded blocks); the digest goes to {@link md5Out}. */
function md5Blocks(w: Int32Array, words: number): void {
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  for (let o = 0; o < words; o += 16) {
    const x0 = w[o]!;
    const x1 = w[o + 1]!;
    const x2 = w[o + 2]!;
    const x3 = w[o + 3]!;
    const x4 = w[o + 4]!;
    const x5 = w[o + 5]!;
    const x6 = w[o + 6]!;
    const x7 = w[o + 7]!;
    const x8 = w[o + 8]!;
    const x9 = w[o + 9]!;
    const x10 = w[o + 10]!;
    const x11 = w[o + 11]!;
    const x12 = w[o + 12]!;
    const x13 = w[o + 13]!;
    const x14 = w[o + 14]!;
    const x15 = w[o + 15]!;
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    // The 64 steps of RFC 1321 section 3.4, unrolled; constants are floor(|sin(i + 1)| * 2^32).
    // Round 1
    a = (a + ((b & c) | (~b & d)) + x0 + 0xd76aa478) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + ((a & b) | (~a & c)) + x1 + 0xe8c7b756) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + ((d & a) | (~d & b)) + x2 + 0x242070db) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + ((c & d) | (~c & a)) + x3 + 0xc1bdceee) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + ((b & c) | (~b & d)) + x4 + 0xf57c0faf) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + ((a & b) | (~a & c)) + x5 + 0x4787c62a) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + ((d & a) | (~d & b)) + x6 + 0xa8304613) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + ((c & d) | (~c & a)) + x7 + 0xfd469501) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + ((b & c) | (~b & d)) + x8 + 0x698098d8) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + ((a & b) | (~a & c)) + x9 + 0x8b44f7af) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + ((d & a) | (~d & b)) + x10 + 0xffff5bb1) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + ((c & d) | (~c & a)) + x11 + 0x895cd7be) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    a = (a + ((b & c) | (~b & d)) + x12 + 0x6b901122) | 0;
    a = (((a << 7) | (a >>> 25)) + b) | 0;
    d = (d + ((a & b) | (~a & c)) + x13 + 0xfd987193) | 0;
    d = (((d << 12) | (d >>> 20)) + a) | 0;
    c = (c + ((d & a) | (~d & b)) + x14 + 0xa679438e) | 0;
    c = (((c << 17) | (c >>> 15)) + d) | 0;
    b = (b + ((c & d) | (~c & a)) + x15 + 0x49b40821) | 0;
    b = (((b << 22) | (b >>> 10)) + c) | 0;
    // Round 2
    a = (a + ((b & d) | (c & ~d)) + x1 + 0xf61e2562) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + ((a & c) | (b & ~c)) + x6 + 0xc040b340) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + ((d & b) | (a & ~b)) + x11 + 0x265e5a51) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + ((c & a) | (d & ~a)) + x0 + 0xe9b6c7aa) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + ((b & d) | (c & ~d)) + x5 + 0xd62f105d) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + ((a & c) | (b & ~c)) + x10 + 0x02441453) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + ((d & b) | (a & ~b)) + x15 + 0xd8a1e681) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + ((c & a) | (d & ~a)) + x4 + 0xe7d3fbc8) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + ((b & d) | (c & ~d)) + x9 + 0x21e1cde6) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + ((a & c) | (b & ~c)) + x14 + 0xc33707d6) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + ((d & b) | (a & ~b)) + x3 + 0xf4d50d87) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + ((c & a) | (d & ~a)) + x8 + 0x455a14ed) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    a = (a + ((b & d) | (c & ~d)) + x13 + 0xa9e3e905) | 0;
    a = (((a << 5) | (a >>> 27)) + b) | 0;
    d = (d + ((a & c) | (b & ~c)) + x2 + 0xfcefa3f8) | 0;
    d = (((d << 9) | (d >>> 23)) + a) | 0;
    c = (c + ((d & b) | (a & ~b)) + x7 + 0x676f02d9) | 0;
    c = (((c << 14) | (c >>> 18)) + d) | 0;
    b = (b + ((c & a) | (d & ~a)) + x12 + 0x8d2a4c8a) | 0;
    b = (((b << 20) | (b >>> 12)) + c) | 0;
    // Round 3
    a = (a + (b ^ c ^ d) + x5 + 0xfffa3942) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x8 + 0x8771f681) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x11 + 0x6d9d6122) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x14 + 0xfde5380c) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (b ^ c ^ d) + x1 + 0xa4beea44) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x4 + 0x4bdecfa9) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x7 + 0xf6bb4b60) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x10 + 0xbebfbc70) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (b ^ c ^ d) + x13 + 0x289b7ec6) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x0 + 0xeaa127fa) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x3 + 0xd4ef3085) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x6 + 0x04881d05) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    a = (a + (b ^ c ^ d) + x9 + 0xd9d4d039) | 0;
    a = (((a << 4) | (a >>> 28)) + b) | 0;
    d = (d + (a ^ b ^ c) + x12 + 0xe6db99e5) | 0;
    d = (((d << 11) | (d >>> 21)) + a) | 0;
    c = (c + (d ^ a ^ b) + x15 + 0x1fa27cf8) | 0;
    c = (((c << 16) | (c >>> 16)) + d) | 0;
    b = (b + (c ^ d ^ a) + x2 + 0xc4ac5665) | 0;
    b = (((b << 23) | (b >>> 9)) + c) | 0;
    // Round 4
    a = (a + (c ^ (b | ~d)) + x0 + 0xf4292244) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x7 + 0x432aff97) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x14 + 0xab9423a7) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x5 + 0xfc93a039) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x12 + 0x655b59c3) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x3 + 0x8f0ccc92) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x10 + 0xffeff47d) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x1 + 0x85845dd1) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x8 + 0x6fa87e4f) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x15 + 0xfe2ce6e0) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x6 + 0xa3014314) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x13 + 0x4e0811a1) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    a = (a + (c ^ (b | ~d)) + x4 + 0xf7537e82) | 0;
    a = (((a << 6) | (a >>> 26)) + b) | 0;
    d = (d + (b ^ (a | ~c)) + x11 + 0xbd3af235) | 0;
    d = (((d << 10) | (d >>> 22)) + a) | 0;
    c = (c + (a ^ (d | ~b)) + x2 + 0x2ad7d2bb) | 0;
    c = (((c << 15) | (c >>> 17)) + d) | 0;
    b = (b + (d ^ (c | ~a)) + x9 + 0xeb86d391) | 0;
    b = (((b << 21) | (b >>> 11)) + c) | 0;
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
  }
  md5Out[0] = h0;
  md5Out[1] = h1;
  md5Out[2] = h2;
  md5Out[3] = h3;
}

/**
 * MD5 of the UTF-8 bytes of `str[start, end)`; the digest words go to {@link md5Out}.
 * Allocates nothing for keys that fit the scratch buffer.
 * @internal
 */
export function md5Words(str: string, start = 0, end: number = str.length): Uint32Array {
  if (end - start <= 55 && asciiBlock(str, start, end - start)) {
    md5Blocks(block, 16);
    return md5Out;
  }
  const len = encodeUtf8(str, start, end, PAD);
  md5Blocks(utf8Scratch32(), padScratch(utf8Scratch(), len));
  return md5Out;
}

/**
 * The ketama position of a key: the little-endian uint32 of the first four bytes of
 * `md5(key)` (libketama's `ketama_hashi`, libmemcached's MD5 key hash).
 * @internal
 */
export function md5Hash32(str: string, start = 0, end: number = str.length): number {
  md5Words(str, start, end);
  return md5Out[0]!;
}

/**
 * The MD5 digest (16 bytes) of a string's UTF-8 bytes or of raw bytes.
 *
 * MD5 is not a secure hash; use it for placement (ketama rings), never for integrity or secrets.
 *
 * @example
 * ```ts
 * const hex = Array.from(md5('abc'), (b) => b.toString(16).padStart(2, '0')).join('');
 * // '900150983cd24fb0d6963f7d28e17f72'
 * ```
 */
export function md5(input: string | Uint8Array): Uint8Array {
  if (typeof input === 'string') {
    md5Words(input);
  } else if (input instanceof Uint8Array) {
    const len = copyToScratch(input, PAD);
    md5Blocks(utf8Scratch32(), padScratch(utf8Scratch(), len));
  } else {
    throw new LoadBalancerConfigError('md5(input)', input, 'a string or a Uint8Array');
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 4; i++) {
    const w = md5Out[i]!;
    out[4 * i] = w & 0xff;
    out[4 * i + 1] = (w >>> 8) & 0xff;
    out[4 * i + 2] = (w >>> 16) & 0xff;
    out[4 * i + 3] = w >>> 24;
  }
  return out;
}
