/**
 * Jump consistent hash (John Lamping and Eric Veach, "A Fast, Minimal Memory, Consistent Hash
 * Algorithm", 2014).
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { mulHi32 } from './uint64.js';

const MASK64 = (1n << 64n) - 1n;
/** The paper's 64-bit LCG multiplier 2862933555777941757, as (high, low) 32-bit halves. */
const MUL_HI = 0x27bb2ee6;
const MUL_LO = 0x87b0b0fd;

/**
 * Maps a 64-bit key to a bucket in `[0, buckets)` so that growing from n to n + 1 buckets moves
 * only the keys that land in the new bucket (1/(n + 1) of them), with no table at all. Buckets are
 * numbered, not named: use it where backends are an ordered list that only grows or shrinks at
 * the end (shards, replicas). Reproduces the paper's reference code bit for bit.
 *
 * @param key An unsigned 64-bit key, e.g. a 64-bit hash of your key such as {@link xxhash64}.
 * @param buckets The number of buckets, an integer in [1, 2^31 - 1].
 * @returns The bucket, an integer in [0, buckets).
 * @example
 * ```ts
 * const shard = jumpHash(xxhash64('user-42'), 16);
 * ```
 */
export function jumpHash(key: bigint, buckets: number): number {
  if (typeof key !== 'bigint' || key < 0n || key > MASK64) {
    throw new LoadBalancerConfigError('jumpHash(key)', key, 'an unsigned 64-bit bigint');
  }
  if (
    typeof buckets !== 'number' ||
    !Number.isInteger(buckets) ||
    buckets < 1 ||
    buckets > 0x7fffffff
  ) {
    throw new LoadBalancerConfigError('jumpHash(buckets)', buckets, 'an integer in [1, 2^31 - 1]');
  }
  let hi = Number(key >> 32n);
  let lo = Number(key & 0xffffffffn);
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // key = key * 2862933555777941757 + 1 (mod 2^64)
    const pHi = mulHi32(lo, MUL_LO) + Math.imul(lo, MUL_HI) + Math.imul(hi, MUL_LO);
    const pLo = Math.imul(lo, MUL_LO) >>> 0;
    lo = (pLo + 1) >>> 0;
    hi = (pHi + (lo === 0 ? 1 : 0)) >>> 0;
    // j = (b + 1) * (double(1 << 31) / double((key >> 33) + 1)), truncated: the same IEEE
    // double operations in the same order as the C++ reference.
    j = Math.floor((b + 1) * (2147483648 / ((hi >>> 1) + 1)));
  }
  return b;
}
