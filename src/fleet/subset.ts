/**
 * Deterministic subsetting: which backends one client of a fleet uses, computed by every client
 * alone from the same inputs (the backend ids, its index, the fleet size), so that together the
 * clients load every backend equally.
 *
 * The shape is Finagle's deterministic aperture (finagle-core `loadbalancer/aperture`:
 * `ProcessCoordinate`, `Ring`, `DeterministicAperture.dApertureWidth`; Finagle docs "Aperture
 * Load Balancers"): backends are laid on a ring in a fixed order, client `i` of `n` sits at
 * `i / n` on the same ring, and takes the slice that starts there. The slice width follows
 * Finagle's rule "clients × aperture ≤ c × backends": every client's slice spans `c / n` of the
 * ring, with `c` whole turns, so the `n` slices cover the ring exactly `c` times and every
 * backend is in exactly `c` subsets. Finagle keeps the slice continuous and weighs the backends
 * at its edges by their overlap; here the slice is cut at whole backends (`floor(i·m/n)` to
 * `floor((i+c)·m/n)`), which keeps the exact `c`-fold cover with equal weights, so any algorithm
 * can pick inside it.
 *
 * Google's SRE book (ch. 20, "Load Balancing in the Datacenter", "A Subset Selection Algorithm:
 * Deterministic Subsetting") reaches the same balance with rounds of `m / k` clients, each round
 * over its own shuffle of the backends; its subsets change almost entirely when one backend
 * joins or leaves (the shuffle of a list one longer is another permutation). On the ring, a
 * backend joining or leaving shifts each slice by at most one backend: each client changes at
 * most one backend of its subset, and most change none (figures in docs/benchmarks.md).
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { murmur3 } from '../hashing/murmur3.js';
import { checkNumber, checkOneOf, checkOptions, checkString } from '../validate.js';

/**
 * The largest fleet a position may name: the stable placement sorts one van der Corput position
 * per client, so a count of 2^20 costs 8 MiB once (and an index must fit 32 bits anyway).
 */
export const MAX_FLEET_SIZE = 2 ** 20;

/** Where one client stands in its fleet. */
export interface FleetPosition {
  /** This client's index, an integer in `[0, count)`, unique within the fleet. */
  readonly index: number;
  /** How many clients the fleet has now. */
  readonly count: number;
}

/**
 * The ring order of a set of backend ids: by MurmurHash3 of the id (ties by id), so a slice of
 * the ring does not follow address order (one rack, one subnet) and every client computes the
 * same order whatever order its discovery lists the backends in.
 */
export function subsetRing(ids: readonly string[]): string[] {
  checkIds('ids', ids);
  return ringOf(ids, idItself);
}

const idItself = (id: string): string => id;

/**
 * `items` in ring order: by `hashOf` their id (a cache of {@link subsetHash} may stand in for
 * it), ties by id.
 * @internal
 */
export function ringOf<T>(
  items: readonly T[],
  idOf: (item: T) => string,
  hashOf: (id: string) => number = subsetHash,
): T[] {
  const keyed = items.map((item) => {
    const id = idOf(item);
    return { item, id, h: hashOf(id) };
  });
  keyed.sort((a, b) => a.h - b.h || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return keyed.map((k) => k.item);
}

/** The ring key of a backend id: MurmurHash3 (x86, 32-bit, seed 0) of its UTF-8 bytes. */
export function subsetHash(id: string): number {
  return murmur3(id);
}

/**
 * How many times the fleet's slices cover the ring: the integer nearest to `size × count / m`
 * (at least 1), so each subset holds about `size` backends and every backend is in exactly that
 * many subsets.
 */
export function subsetCoverage(size: number, count: number, m: number): number {
  checkNumber('size', size, { min: 1, integer: true });
  checkCount('count', count);
  checkNumber('m', m, { min: 0, integer: true });
  return coverageOf(size, count, m);
}

function coverageOf(size: number, count: number, m: number): number {
  if (m === 0) return 0;
  return Math.max(1, Math.round((size * count) / m));
}

/**
 * Where the clients of a fleet stand on the ring:
 * - `even`: client `i` of `n` at `i / n` (Finagle's `ProcessCoordinate`). Every slice is equally
 *   wide, so calls spread exactly evenly; but a client joining or leaving moves every position a
 *   little, and with it up to about `m / n` backends of the subsets at the far end of the ring.
 * - `stable`: client `i` at the `i`-th point of the binary van der Corput sequence (0, 1/2, 1/4,
 *   3/4, 1/8, ...), which does not depend on `n`, as Google's Ringsteady subsetting places
 *   frontends ("Reinventing Backend Subsetting at Google", ACM Queue 2022). A client joining at
 *   the end of the fleet moves nothing in the other subsets, and one leaving moves only its own
 *   backends, to the clients next to it. Connections stay exactly balanced, but slices differ in
 *   width (the sequence's gaps differ by up to 2×, least when `n` is near a power of two), so
 *   calls are not: with calls spread evenly over each subset, max/mean calls per backend is
 *   1.05 at 500 clients × 1,000 backends, 1.25 at 260 clients, more for small fleets
 *   (docs/fleet.md).
 */
export type SubsetPlacement = 'even' | 'stable';

/** Options of {@link subsetSpan}, {@link deterministicSubset} and `DeterministicSubset`. */
export interface SubsetSpanOptions {
  /**
   * Turns the whole fleet's slices around the ring, as a fraction in `[0, 1)` (Finagle's
   * `peerOffset`), so two fleets of the same size calling the same backends do not load the same
   * ones first. As a fraction of the ring it moves edges by less than one backend when `m`
   * changes.
   * @default 0
   */
  offset?: number;
  /**
   * Where clients stand on the ring; see {@link SubsetPlacement}.
   * @default 'even'
   */
  placement?: SubsetPlacement;
}

/**
 * The ring positions `[start, end)` (taken modulo `m`) of client `index` of `count`, for a ring
 * of `m` backends and a target subset size. Clients stand on the ring in the order of their
 * positions (see {@link SubsetPlacement}); with `p(r)` the `r`-th position in that order, the
 * slice edges are `edge(r) = floor(p(r)·m + offset·m)`, and the client at rank `r` takes
 * `[edge(r), edge(r + c))` for `c` = {@link subsetCoverage}: the `c` clients that follow it.
 * Whatever the positions, the slices then go round the ring exactly `c` times, so every backend
 * is in exactly `c` subsets; with `even` placement each slice is within one backend of
 * `c·m/count` wide. All of the ring when `c` reaches `count`.
 */
export function subsetSpan(
  m: number,
  index: number,
  count: number,
  size: number,
  options: SubsetSpanOptions = {},
): { start: number; end: number } {
  checkNumber('m', m, { min: 0, integer: true });
  checkCount('count', count);
  checkNumber('index', index, { min: 0, max: count - 1, integer: true });
  checkNumber('size', size, { min: 1, integer: true });
  return spanOf(m, index, count, size, checkSpanOptions(options));
}

function spanOf(
  m: number,
  index: number,
  count: number,
  size: number,
  options: SubsetSpanOptions,
): { start: number; end: number } {
  if (m === 0) return { start: 0, end: 0 };
  const c = coverageOf(size, count, m);
  if (c >= count || size >= m) return { start: 0, end: m };
  const phi = (options.offset ?? 0) * m;
  // Edges past the last client are the first ones a turn later, computed as such so that one
  // client's end and the start of the client c places on are the same number bit for bit.
  if (options.placement === 'stable') {
    const order = stableOrder(count);
    const rank = rankOf(order, corput(index));
    const edge = (r: number): number =>
      r >= count ? edge(r - count) + m : Math.floor(order[r]! * m + phi);
    return { start: edge(rank), end: edge(rank + c) };
  }
  const edge = (j: number): number =>
    j >= count ? edge(j - count) + m : Math.floor((j * m) / count + phi);
  return { start: edge(index), end: edge(index + c) };
}

/**
 * The `i`-th point of the binary van der Corput sequence: the bits of `i` mirrored behind the
 * binary point (32 bits, so the value is exact in a double).
 */
export function vanDerCorput(i: number): number {
  checkNumber('i', i, { min: 0, max: 2 ** 32 - 1, integer: true });
  return corput(i);
}

function corput(i: number): number {
  let x = i >>> 0;
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  x = (x >>> 16) | (x << 16);
  return (x >>> 0) / 4294967296;
}

/** The sorted positions of the first `count` clients, for the last few fleet sizes asked. */
const stableOrders = new Map<number, Float64Array>();

function stableOrder(count: number): Float64Array {
  let order = stableOrders.get(count);
  if (order === undefined) {
    order = new Float64Array(count);
    for (let i = 0; i < count; i++) order[i] = corput(i);
    order.sort();
    if (stableOrders.size >= 4) stableOrders.delete(stableOrders.keys().next().value!);
    stableOrders.set(count, order);
  }
  return order;
}

/** The index of `value` in the sorted `order` (it is there: positions are distinct). */
function rankOf(order: Float64Array, value: number): number {
  let lo = 0;
  let hi = order.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (order[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The subset of one client: the backend ids of its slice of the ring, in ring order.
 *
 * @example
 * ```ts
 * const ids = pool.backends().map((b) => b.id);
 * deterministicSubset(ids, { index: 3, count: 500 }, 20); // 20 ids; each backend is in 10 of the 500 subsets
 * ```
 */
export function deterministicSubset(
  ids: readonly string[],
  position: FleetPosition,
  size: number,
  options: SubsetSpanOptions = {},
): string[] {
  checkIds('ids', ids);
  const p = checkFleetPosition('position', position);
  checkNumber('size', size, { min: 1, integer: true });
  return sliceOf(ringOf(ids, idItself), p, size, checkSpanOptions(options));
}

/**
 * The slice of an already ordered ring (see {@link subsetRing}) for one client.
 * @internal
 */
export function sliceOf<T>(
  ring: readonly T[],
  position: FleetPosition,
  size: number,
  options: SubsetSpanOptions = {},
): T[] {
  const m = ring.length;
  const { start, end } = spanOf(m, position.index, position.count, size, options);
  const out: T[] = [];
  for (let i = start; i < end; i++) out.push(ring[i % m]!);
  return out;
}

/**
 * An `offset` for {@link subsetSpan} from a fleet's name (Finagle suggests a hash of the
 * cluster's name for `peerOffset`): MurmurHash3 of the name over 2^32, in `[0, 1)`.
 */
export function fleetOffset(name: string): number {
  return murmur3(checkString('name', name)) / 4294967296;
}

// ------------------------------------------------------------------ checks

function checkIds(field: string, ids: unknown): readonly string[] {
  if (!Array.isArray(ids)) throw new LoadBalancerConfigError(field, ids, 'an array of backend ids');
  for (let i = 0; i < ids.length; i++) checkString(`${field}[${i}]`, ids[i]);
  return ids as readonly string[];
}

function checkCount(field: string, count: unknown): number {
  return checkNumber(field, count, { min: 1, max: MAX_FLEET_SIZE, integer: true });
}

/**
 * Checks a fleet position: `count` clients (at most {@link MAX_FLEET_SIZE}), `index` among them.
 * Errors name `field.index` and `field.count` (`index` and `count` for an empty `field`), or the
 * option names given as `names`.
 */
export function checkFleetPosition(
  field: string,
  value: unknown,
  names?: { readonly index: string; readonly count: string },
): FleetPosition {
  const p = value as { index?: unknown; count?: unknown } | null;
  const name = (k: 'index' | 'count'): string =>
    names !== undefined ? names[k] : field === '' ? k : `${field}.${k}`;
  if (typeof p !== 'object' || p === null) {
    throw new LoadBalancerConfigError(field, value, '{ index, count }');
  }
  const count = checkCount(name('count'), p.count);
  const index = checkNumber(name('index'), p.index, { min: 0, max: count - 1, integer: true });
  return { index, count };
}

function checkSpanOptions(options: unknown): SubsetSpanOptions {
  const o = checkOptions('SubsetSpanOptions', options as SubsetSpanOptions, [
    'offset',
    'placement',
  ]);
  return checkSpanFields(o);
}

/**
 * Checks the `offset` (a fraction in `[0, 1)`) and `placement` of span options already checked
 * for unknown keys; `offsetExpected` is what an offset of 1 is told it should have been.
 * @internal
 */
export function checkSpanFields(
  o: { readonly offset?: unknown; readonly placement?: unknown },
  offsetExpected = 'a fraction in [0, 1)',
): SubsetSpanOptions {
  const out: { offset?: number; placement?: SubsetPlacement } = {};
  if (o.offset !== undefined) {
    const offset = checkNumber('offset', o.offset, { min: 0, max: 1 });
    if (offset === 1) throw new LoadBalancerConfigError('offset', offset, offsetExpected);
    out.offset = offset;
  }
  if (o.placement !== undefined)
    out.placement = checkOneOf('placement', o.placement, ['even', 'stable']);
  return out;
}
