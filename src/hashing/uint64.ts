/**
 * 64-bit integer helpers on pairs of unsigned 32-bit halves, for hashes that must not allocate
 * `bigint`s on every step.
 * @internal
 */

/** The high 32 bits of the 64-bit product of two unsigned 32-bit integers. @internal */
export function mulHi32(a: number, b: number): number {
  const a1 = a >>> 16;
  const a0 = a & 0xffff;
  const b1 = b >>> 16;
  const b0 = b & 0xffff;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const mid = ((a0 * b0) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff);
  return (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + (mid >>> 16)) >>> 0;
}
