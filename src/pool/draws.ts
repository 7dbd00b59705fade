import type { Random } from '../random.js';

/** Draws taken from the random source at a time. */
const BATCH = 64;

/**
 * Integer points `first` to `first + range - 1` (tiers: 1 to 100; zones: 0 to 9,999), taken from
 * the pool's random source a batch at a time, in order. A pick then reads a small integer.
 * Calling the random source on the pick itself returned a double from a call the optimizer did
 * not always inline (the pick path is large, and every pool has a random source of its own), and
 * a double returned so is boxed: 16 bytes a pick (bench/memory.ts). The refill runs once per
 * batch, too rarely to be inlined into the pick, so it is compiled on its own with the random
 * source inlined.
 * @internal
 */
export class PointDraws {
  readonly #random: Random;
  readonly #range: number;
  readonly #first: number;
  readonly #points = new Uint16Array(BATCH);
  #next = BATCH;

  /** @param range At most 65,536 points. */
  constructor(random: Random, range: number, first: number) {
    this.#random = random;
    this.#range = range;
    this.#first = first;
  }

  /** The next point. */
  next(): number {
    if (this.#next === BATCH) this.#refill();
    return this.#points[this.#next++]!;
  }

  #refill(): void {
    const random = this.#random;
    const points = this.#points;
    const range = this.#range;
    const first = this.#first;
    for (let i = 0; i < BATCH; i++) points[i] = Math.floor(random() * range) + first;
    this.#next = 0;
  }
}
