/**
 * MurmurHash3 x86_32 (Austin Appleby, public domain reference `MurmurHash3_x86_32`) over UTF-8
 * bytes: a fast, well-mixed 32-bit hash, offered as the quick alternative to MD5 for rings that
 * need not agree with ketama clients.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { copyToScratch, encodeUtf8, utf8Scratch } from './utf8.js';

function murmur3Buffer(buf: Uint8Array, len: number, seed: number): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = len & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail !== 0) {
    let k = buf[blocks]!;
    if (tail > 1) k ^= buf[blocks + 1]! << 8;
    if (tail > 2) k ^= buf[blocks + 2]! << 16;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
  }
  // Finalization mix (fmix32).
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3 x86_32 of the UTF-8 bytes of `str[start, end)`. Allocates nothing for keys that fit
 * the scratch buffer.
 * @internal
 */
export function murmur3Range(str: string, start: number, end: number, seed = 0): number {
  const len = encodeUtf8(str, start, end, 0);
  return murmur3Buffer(utf8Scratch(), len, seed);
}

/**
 * Like {@link murmur3Range}, with the result written to `out[0]`: a uint32 returned across a call
 * that is not inlined would be boxed (a heap number), and the ring's pick must not allocate.
 * @internal
 */
export function murmur3Into(str: string, start: number, end: number, out: Uint32Array): void {
  const len = encodeUtf8(str, start, end, 0);
  out[0] = murmur3Buffer(utf8Scratch(), len, 0);
}

/**
 * MurmurHash3 x86_32 of a string's UTF-8 bytes (or of raw bytes), as an unsigned 32-bit integer.
 *
 * @param seed An unsigned 32-bit seed.
 * @default seed 0
 * @example
 * ```ts
 * murmur3('The quick brown fox jumps over the lazy dog'); // 0x2e4ff723
 * ```
 */
export function murmur3(input: string | Uint8Array, seed = 0): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new LoadBalancerConfigError('murmur3(seed)', seed, 'an integer in [0, 2^32)');
  }
  if (typeof input === 'string') return murmur3Range(input, 0, input.length, seed);
  if (input instanceof Uint8Array) {
    const len = copyToScratch(input, 0);
    return murmur3Buffer(utf8Scratch(), len, seed);
  }
  throw new LoadBalancerConfigError('murmur3(input)', input, 'a string or a Uint8Array');
}
