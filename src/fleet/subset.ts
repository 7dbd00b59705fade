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
import { murmur3 } from '../hashing/murmur3.js';

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
  const keyed = ids.map((id) => ({ id, h: subsetHash(id) }));
  keyed.sort((a, b) => a.h - b.h || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return keyed.map((k) => k.id);
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
  if (m === 0) return 0;
  return Math.max(1, Math.round((size * count) / m));
}

/**
 * The ring positions `[start, end)` (taken modulo `m`) of client `index` of `count`, for a ring
 * of `m` backends and a target subset size. The slice edges are `edge(j) = floor(j·m/count +
 * offset·m)`: client `index` takes `[edge(index), edge(index + c))` for `c` =
 * {@link subsetCoverage}, within one backend of `c·m/count` wide, and all of the ring when that
 * reaches `m`. `offset` (in `[0, 1)`) turns the whole fleet's slices around the ring (Finagle's
 * `peerOffset`), so two fleets of the same size calling the same backends do not load the same
 * ones first; as a fraction of the ring it moves edges by less than one backend when `m`
 * changes.
 */
export function subsetSpan(
  m: number,
  index: number,
  count: number,
  size: number,
  offset = 0,
): { start: number; end: number } {
  if (m === 0) return { start: 0, end: 0 };
  const c = subsetCoverage(size, count, m);
  if (c >= count || size >= m) return { start: 0, end: m };
  const phi = offset * m;
  // Edges past the last client are the first ones a turn later, computed as such so that
  // client j's end and client j + c's start are the same number bit for bit.
  const edge = (j: number): number =>
    j >= count ? edge(j - count) + m : Math.floor((j * m) / count + phi);
  return { start: edge(index), end: edge(index + c) };
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
  offset = 0,
): string[] {
  return sliceOf(subsetRing(ids), position, size, offset);
}

/**
 * The slice of an already ordered ring (see {@link subsetRing}) for one client.
 * @internal
 */
export function sliceOf<T>(
  ring: readonly T[],
  position: FleetPosition,
  size: number,
  offset = 0,
): T[] {
  const m = ring.length;
  const { start, end } = subsetSpan(m, position.index, position.count, size, offset);
  const out: T[] = [];
  for (let i = start; i < end; i++) out.push(ring[i % m]!);
  return out;
}

/**
 * An `offset` for {@link subsetSpan} from a fleet's name (Finagle suggests a hash of the
 * cluster's name for `peerOffset`): MurmurHash3 of the name over 2^32, in `[0, 1)`.
 */
export function fleetOffset(name: string): number {
  return murmur3(name) / 4294967296;
}
