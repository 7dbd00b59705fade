import { LoadBalancerConfigError } from '../errors/config-error.js';
import { type Random, sfc32 } from '../random.js';

/**
 * A deterministic {@link Random} (sfc32 seeded through splitmix32): the same seed gives the same
 * sequence on every platform. Not for cryptography.
 *
 * @example
 * ```ts
 * const random = seededRandom(42);
 * random(); // always the same first number for seed 42
 * ```
 */
export function seededRandom(seed: number): Random {
  if (typeof seed !== 'number' || !Number.isFinite(seed)) {
    throw new LoadBalancerConfigError('seededRandom seed', seed, 'a finite number');
  }
  let s = Math.trunc(seed) >>> 0;
  // splitmix32 expands one 32-bit seed into the four words of sfc32's state.
  const next = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  return sfc32(next(), next(), next(), next());
}
