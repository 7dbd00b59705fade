import type { Random } from '../random.js';

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
  if (!Number.isFinite(seed)) {
    throw new TypeError(`seededRandom: seed must be a finite number, got ${String(seed)}`);
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
  let a = next();
  let b = next();
  let c = next();
  let d = next();
  const random = (): number => {
    // sfc32 (Chris Doty-Humphrey's Small Fast Counting generator).
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  // Discard the first outputs, as sfc32's author recommends, to mix the state.
  for (let i = 0; i < 12; i++) random();
  return random;
}
