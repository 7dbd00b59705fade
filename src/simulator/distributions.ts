import type { LatencyModel } from './types.js';

/** The smallest uniform draw used, so that logarithms and powers stay finite. */
const TINY = 2 ** -32;

/**
 * Draws a sample of `model` from two uniform numbers: `u1` in (0, 1] and `u2` in [0, 1). Every
 * call site draws the same two numbers whatever the model, so the workload's random stream is
 * consumed identically by every algorithm (common random numbers).
 * @internal
 */
export function sampleLatency(model: LatencyModel, u1: number, u2: number): number {
  if (typeof model === 'number') return model;
  const u = Math.max(u1, TINY);
  switch (model.kind) {
    case 'constant':
      return model.ms;
    case 'normal':
      return Math.max(model.min ?? 0, model.mean + model.sd * standardNormal(u, u2));
    case 'lognormal':
      return cap(model.median * Math.exp(model.sigma * standardNormal(u, u2)), model.max);
    case 'pareto':
      return cap(model.min * u ** (-1 / model.alpha), model.max);
    case 'exponential':
      return cap(-model.mean * Math.log(u), model.max);
  }
}

/** The mean of a model (before any cap), for documentation and sanity checks. @internal */
export function meanLatency(model: LatencyModel): number {
  if (typeof model === 'number') return model;
  switch (model.kind) {
    case 'constant':
      return model.ms;
    case 'normal':
      return model.mean;
    case 'lognormal':
      return model.median * Math.exp((model.sigma * model.sigma) / 2);
    case 'pareto':
      return model.alpha > 1
        ? (model.alpha * model.min) / (model.alpha - 1)
        : Number.POSITIVE_INFINITY;
    case 'exponential':
      return model.mean;
  }
}

/** Box–Muller: one standard normal deviate from two uniforms. */
function standardNormal(u1: number, u2: number): number {
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

function cap(x: number, max: number | undefined): number {
  return max === undefined ? x : Math.min(x, max);
}

/**
 * Cumulative probabilities of a Zipf law over `count` ranks: P(rank k) ∝ 1 / (k + 1)^s.
 * @internal
 */
export function zipfTable(count: number, s: number): Float64Array {
  const cum = new Float64Array(count);
  let sum = 0;
  for (let k = 0; k < count; k++) {
    sum += 1 / (k + 1) ** s;
    cum[k] = sum;
  }
  for (let k = 0; k < count; k++) cum[k]! /= sum;
  return cum;
}

/** The rank whose cumulative probability first exceeds `u` (binary search). @internal */
export function pickRank(cum: Float64Array, u: number): number {
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid]! > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * A binary min-heap of numbers: the free times of a backend's workers, or the completion times
 * of the calls it holds.
 * @internal
 */
export class MinHeap {
  #items: number[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): number | undefined {
    return this.#items[0];
  }

  push(x: number): void {
    const a = this.#items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! <= x) break;
      a[i] = a[p]!;
      i = p;
    }
    a[i] = x;
  }

  pop(): number | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) this.#siftDown(last);
    return top;
  }

  /** Replaces the smallest item with `x` (cheaper than pop then push). */
  replaceTop(x: number): void {
    if (this.#items.length === 0) this.#items.push(x);
    else this.#siftDown(x);
  }

  #siftDown(x: number): void {
    const a = this.#items;
    const n = a.length;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && a[c + 1]! < a[c]!) c++;
      if (a[c]! >= x) break;
      a[i] = a[c]!;
      i = c;
    }
    a[i] = x;
  }
}
