/** A source of uniform numbers in `[0, 1)`, like `Math.random`. Inject `seededRandom` in tests. */
export type Random = () => number;

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, from PractRand) over four 32-bit
 * words. The state lives in an `Int32Array` because uint32 values kept in closure variables are
 * boxed by V8, so each call would allocate; this way a call allocates nothing and, inlined into
 * a pick, costs about 3 ns (bench/picks.ts). Not for cryptography.
 * @internal
 */
export function sfc32(a: number, b: number, c: number, d: number): Random {
  const s = new Int32Array(4);
  s[0] = a;
  s[1] = b;
  s[2] = c;
  s[3] = d;
  const random = (): number => {
    const x = s[0]!;
    const y = s[1]!;
    const z = s[2]!;
    const w = s[3]!;
    const t = (((x + y) | 0) + w) | 0;
    s[3] = (w + 1) | 0;
    s[0] = y ^ (y >>> 9);
    s[1] = (z + (z << 3)) | 0;
    s[2] = (((z << 21) | (z >>> 11)) + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // Discard the first outputs, as sfc32's author recommends, to mix the state.
  for (let i = 0; i < 12; i++) random();
  return trusted(random);
}

/** Sources known to keep the `[0, 1)` contract: ours, and callers' ones once wrapped. */
const keepsContract = new WeakSet<Random>();

/**
 * Marks `random` as keeping the contract (so it is not wrapped again) and returns it.
 * @internal
 */
export function trusted(random: Random): Random {
  keepsContract.add(random);
  return random;
}

/**
 * Whether `random` is known to return numbers in `[0, 1)`.
 * @internal
 */
export function isTrusted(random: Random): boolean {
  return keepsContract.has(random);
}

function seedWords(): [number, number, number, number] {
  const words = new Uint32Array(4);
  const crypto = (globalThis as { crypto?: { getRandomValues?(a: Uint32Array): unknown } }).crypto;
  if (typeof crypto?.getRandomValues === 'function') {
    crypto.getRandomValues(words);
  } else {
    for (let i = 0; i < 4; i++) words[i] = Math.floor(Math.random() * 4294967296);
  }
  return [words[0]!, words[1]!, words[2]!, words[3]!];
}

/**
 * The default random source: sfc32 seeded once per process from `crypto.getRandomValues` (or
 * `Math.random` where that is missing). Used instead of `Math.random` itself because in V8 every
 * `Math.random()` call allocates a 16-byte heap number and costs about three times as much, and
 * a pick must not allocate (bench/picks.ts measures both).
 */
export const defaultRandom: Random = sfc32(...seedWords());
