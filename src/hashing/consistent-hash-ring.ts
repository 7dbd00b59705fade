/**
 * A ketama-compatible consistent hash ring (libketama, Richard Jones / last.fm, 2007; the same
 * continuum libmemcached builds in its weighted ketama mode).
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  checkFunction,
  checkNumber,
  checkOptions,
  checkString,
  isPlainObject,
} from '../validate.js';
import { md5Out, md5Words } from './md5.js';
import { murmur3Into } from './murmur3.js';

/** A custom ring hash: maps a string to an unsigned 32-bit integer. */
export type RingHashFunction = (input: string) => number;

/**
 * How a ring places backends and keys:
 * - `'md5'`: ketama. Each `md5("<backend>-<i>")` yields four points (its 16 bytes read as four
 *   little-endian uint32s) and a key sits at the first four bytes of `md5(key)`. Agrees with
 *   libketama, libmemcached and other ketama clients.
 * - `'murmur3'`: MurmurHash3 x86_32 of the same strings, one point per string. Faster to hash,
 *   but agrees only with other rings built the same way.
 * - a function `(input) => uint32`: your own hash, one point per string `"<backend>-<i>"`.
 */
export type RingHash = 'md5' | 'murmur3' | RingHashFunction;

/** Options of {@link ConsistentHashRing}. */
export interface ConsistentHashRingOptions {
  /**
   * Ring points per backend at the mean weight. libketama uses 160 (40 MD5 digests of 4 points
   * each); more points spread keys more evenly at the cost of a larger ring. With `hash: 'md5'`
   * it must be a multiple of 4. The whole ring holds at most 2^22 points (4,194,304):
   * `virtualNodes × backends` above that is refused with a `LoadBalancerConfigError` naming
   * `virtualNodes`, when the backend that would cross it is added. Backends get `floorf(weight / totalWeight × virtualNodes / 4 ×
   * backendCount)` digests each, libketama's float arithmetic included.
   * @default 160
   */
  virtualNodes?: number;
  /**
   * The hash that places backends and keys.
   * @default 'md5'
   */
  hash?: RingHash;
}

/** A backend as given to the {@link ConsistentHashRing} constructor. */
export interface RingBackend {
  /** The id that lookups return. */
  id: string;
  /**
   * Relative share of keys, a finite number > 0.
   * @default 1
   */
  weight?: number;
  /**
   * The string whose hashes place this backend's points (`"<hashKey>-<i>"`). Ketama hashes the
   * server's `host:port`; libmemcached hashes the host alone when the port is 11211.
   * @default id
   */
  hashKey?: string;
}

/** Where a key lands on the ring (see {@link ConsistentHashRing.locate}). */
export interface RingLocation {
  /** The key's 32-bit position. */
  readonly hash: number;
  /** The ring point chosen: the first point >= `hash`, wrapping to the lowest point. */
  readonly point: number;
  /** The index of that point in the sorted ring. */
  readonly index: number;
  /** The backend that owns the point. */
  readonly id: string;
}

/**
 * The built form of a ring: sorted points and, in parallel, the ordinal of each point's owner.
 * @internal
 */
export interface RingSnapshot {
  readonly points: Uint32Array;
  readonly owners: Uint32Array;
  /** Backend ids by ordinal. */
  readonly ids: readonly string[];
  /**
   * `index[b]` is the first point index whose point is >= `b << shift`: a search starts from the
   * bucket of the hash's top bits and scans the one or two points in it, instead of a binary
   * search whose unpredictable branches cost more than the whole scan.
   */
  readonly index: Uint32Array;
  /** 32 minus the number of bucket bits (so `hash >>> shift` is the bucket). */
  readonly shift: number;
}

interface RingEntry {
  readonly id: string;
  weight: number;
  hashKey: string;
  /** Points of `"<hashKey>-<i>"` for the digests computed so far, in digest order. */
  cache: Uint32Array;
  /** How many digests the cache holds. */
  digests: number;
}

/** Most backends a ring holds: an owner's ordinal shares a float64 with its 32-bit point when sorting. */
const MAX_BACKENDS = 1 << 21;

/**
 * The most points a ring may have in all: `virtualNodes × backends`. Memory and build time grow
 * with the total, not with the per-backend count. Measured with `bench/hash-limits.ts` (Node 20,
 * two shared cores): a ring keeps 8 to 18 bytes per point (points, owners, cached digests,
 * bucket index) plus 8 bytes per point while it sorts, and every rebuild (each membership or
 * weight change) re-sorts every point; at 2^22 points a first build took 1.7 s of CPU, a
 * rebuild 1.3 s, and the ring kept 48 MB. `virtualNodes: 2^20` over 64 backends (2^26 points)
 * blocked the event loop for 19 s and took over 1 GB. 2^22 still gives libketama's 160 points
 * to 26,214 backends; Envoy caps its ring at 8M entries (`maximum_ring_size`), for C++ builds.
 * @internal
 */
export const MAX_RING_POINTS = 2 ** 22;

/**
 * Refuses a ring of `backends` backends at `virtualNodes` points each when it would exceed
 * {@link MAX_RING_POINTS}.
 * @internal
 */
export function checkRingPoints(virtualNodes: number, backends: number): void {
  if (virtualNodes * backends <= MAX_RING_POINTS) return;
  throw new LoadBalancerConfigError(
    'virtualNodes',
    virtualNodes,
    `virtualNodes × backends <= ${MAX_RING_POINTS} ring points (2^22: a ring's memory and build time grow with its points, about a second of CPU per build at the limit); ${backends} backends at ${virtualNodes} would make ${virtualNodes * backends}: lower virtualNodes to at most ${Math.floor(MAX_RING_POINTS / backends)}`,
  );
}
const ORDINAL_SCALE = 2 ** 21;

const HASH_MD5 = 0;
const HASH_MURMUR3 = 1;
const HASH_CUSTOM = 2;

/**
 * The number of digests libketama gives a server: `floorf(pct × perServer × serverCount)` with
 * `pct = (float)weight / (float)totalWeight`. The product is computed in double (the literal
 * `40.0` promotes it) and rounded to float when passed to `floorf`; that last rounding is why 7
 * equal servers get 40 digests each (plain doubles give 39) and why 61 equal servers get 39.
 * @internal
 */
export function ketamaDigestCount(
  weight: number,
  totalWeight: number,
  serverCount: number,
  perServer = 40,
): number {
  const pct = Math.fround(Math.fround(weight) / Math.fround(totalWeight));
  return Math.floor(Math.fround(pct * perServer * Math.fround(serverCount)));
}

/** Lookups check their key without allocating an options object per call. */
function checkKey(key: unknown): void {
  if (typeof key !== 'string') throw new LoadBalancerConfigError('key', key, 'a string');
}

/** Builds the bucket index of {@link RingSnapshot.index} for sorted `points`. */
function bucketIndex(points: Uint32Array): { index: Uint32Array; shift: number } {
  // About one bucket per point, between 2 and 2^22 buckets.
  const bits = Math.min(22, Math.max(1, Math.ceil(Math.log2(Math.max(points.length, 2)))));
  const shift = 32 - bits;
  const buckets = 2 ** bits;
  const index = new Uint32Array(buckets + 1);
  let i = 0;
  for (let b = 0; b <= buckets; b++) {
    const floor = b * 2 ** shift;
    while (i < points.length && points[i]! < floor) i++;
    index[b] = i;
  }
  return { index, shift };
}

/**
 * A consistent hash ring with virtual nodes and weights, ketama-compatible by default: a Node
 * service using it agrees with memcached clients (libketama, libmemcached) on which server owns
 * a key. Adding a backend to n equal ones moves about 1/(n + 1) of the keys, all to the new
 * backend; removing one moves only its own keys. (Two ketama traits come with compatibility: at
 * 61 equal servers libketama's float rounding gives each 39 digests instead of 40, and a weight
 * change recomputes every server's share, so some keys also move between the other servers.)
 *
 * Lookups index a sorted `Uint32Array` by the hash's top bits and scan a point or two; they
 * allocate nothing (MD5 is computed in plain JavaScript over a reused buffer). The ring is
 * rebuilt lazily, on the first lookup after `add()` or `remove()`; each backend's digests are
 * computed once and cached.
 *
 * @example
 * ```ts
 * const ring = new ConsistentHashRing(['10.0.1.1:11211', '10.0.1.2:11211']);
 * ring.add('10.0.1.3:11211', 2);
 * ring.get('user:42');      // '10.0.1.3:11211', as libketama would answer
 * ring.getN('user:42', 2);  // ['10.0.1.3:11211', '10.0.1.1:11211']: the owner, then the next
 * ring.get('user:42', (id) => id !== '10.0.1.3:11211'); // '10.0.1.1:11211': walks past it
 * ```
 */
export class ConsistentHashRing {
  readonly #entries = new Map<string, RingEntry>();
  readonly #virtualNodes: number;
  readonly #hashKind: number;
  readonly #hashFn: RingHashFunction | undefined;
  /** Points per hashed string: 4 for MD5 (ketama), 1 otherwise. */
  readonly #perHash: number;
  #snapshot: RingSnapshot | undefined;
  /**
   * The last key hash (see {@link ConsistentHashRing._locate}). Hashes travel through this array
   * rather than as return values: a uint32 above 2^30 returned or passed across a call that the
   * optimizer did not inline is boxed, and a pick must not allocate.
   * @internal
   */
  // Typed without a buffer type argument: `Uint32Array<ArrayBuffer>` in the declarations needs
  // TypeScript 5.7 in the projects that read them.
  readonly _hashOut: Uint32Array = new Uint32Array(1);
  /** Generation stamps that let a walk remember which owners it has seen, without allocating. */
  #seen = new Uint32Array(0);
  #generation = 0;

  /**
   * @param backends Initial backends: ids (weight 1) or {@link RingBackend} objects.
   * @param options See {@link ConsistentHashRingOptions}.
   */
  constructor(
    backends: Iterable<string | RingBackend> = [],
    options: ConsistentHashRingOptions = {},
  ) {
    const o = checkOptions('ConsistentHashRing options', options, ['virtualNodes', 'hash']);
    const hash = o.hash ?? 'md5';
    if (hash === 'md5') {
      this.#hashKind = HASH_MD5;
    } else if (hash === 'murmur3') {
      this.#hashKind = HASH_MURMUR3;
    } else if (typeof hash === 'function') {
      this.#hashKind = HASH_CUSTOM;
      this.#hashFn = checkFunction<RingHashFunction>('hash', hash);
    } else {
      throw new LoadBalancerConfigError(
        'hash',
        hash,
        "'md5', 'murmur3' or a function (input: string) => uint32",
      );
    }
    this.#perHash = this.#hashKind === HASH_MD5 ? 4 : 1;
    this.#virtualNodes =
      o.virtualNodes === undefined
        ? 160
        : checkNumber('virtualNodes', o.virtualNodes, { min: 1, max: 1 << 20, integer: true });
    if (this.#virtualNodes % this.#perHash !== 0) {
      throw new LoadBalancerConfigError(
        'virtualNodes',
        this.#virtualNodes,
        'a multiple of 4 with the md5 hash (each MD5 digest gives 4 points)',
      );
    }
    if (backends === null || typeof backends !== 'object' || !(Symbol.iterator in backends)) {
      throw new LoadBalancerConfigError(
        'backends',
        backends,
        'an iterable of ids or { id, weight }',
      );
    }
    let i = 0;
    for (const b of backends) {
      if (typeof b === 'string') {
        this.add(b);
      } else if (isPlainObject(b)) {
        const e = checkOptions(`backends[${i}]`, b, ['id', 'weight', 'hashKey']);
        this.add(e.id, e.weight ?? 1, e.hashKey ?? e.id);
      } else {
        throw new LoadBalancerConfigError(
          `backends[${i}]`,
          b,
          'an id or { id, weight?, hashKey? }',
        );
      }
      i++;
    }
  }

  /**
   * Adds a backend, or changes the weight or hash key of one already on the ring.
   * @param id The id lookups return.
   * @param weight Relative share of keys, a finite number > 0. @default 1
   * @param hashKey The string hashed into the backend's points. @default id
   */
  add(id: string, weight = 1, hashKey: string = id): this {
    checkString('id', id);
    checkNumber('weight', weight, { min: 0, minExclusive: true });
    checkString('hashKey', hashKey);
    const entry = this.#entries.get(id);
    if (entry !== undefined) {
      if (entry.weight === weight && entry.hashKey === hashKey) return this;
      entry.weight = weight;
      if (entry.hashKey !== hashKey) {
        entry.hashKey = hashKey;
        entry.cache = new Uint32Array(0);
        entry.digests = 0;
      }
    } else {
      if (this.#entries.size >= MAX_BACKENDS) {
        throw new LoadBalancerConfigError('id', id, `room on the ring (at most ${MAX_BACKENDS})`);
      }
      checkRingPoints(this.#virtualNodes, this.#entries.size + 1);
      this.#entries.set(id, { id, weight, hashKey, cache: new Uint32Array(0), digests: 0 });
    }
    this.#snapshot = undefined;
    return this;
  }

  /** Removes a backend. @returns whether it was on the ring. */
  remove(id: string): boolean {
    if (!this.#entries.delete(id)) return false;
    this.#snapshot = undefined;
    return true;
  }

  /** Whether a backend is on the ring. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** The number of backends. */
  get size(): number {
    return this.#entries.size;
  }

  /** Backend ids in the order they were added. */
  ids(): string[] {
    return [...this.#entries.keys()];
  }

  /** Ring points per backend at the mean weight. */
  get virtualNodes(): number {
    return this.#virtualNodes;
  }

  /** The number of points on the ring. */
  get pointCount(): number {
    return this._snapshot().points.length;
  }

  /** The number of ring points a backend holds (0 when absent or when its weight is too small). */
  pointsOf(id: string): number {
    const s = this._snapshot();
    const ordinal = s.ids.indexOf(id);
    if (ordinal < 0) return 0;
    let n = 0;
    for (let i = 0; i < s.owners.length; i++) if (s.owners[i] === ordinal) n++;
    return n;
  }

  /** A key's 32-bit position on the ring (for MD5: the little-endian uint32 of `md5(key)[0..3]`). */
  hash(key: string): number {
    checkKey(key);
    return this._hashRange(key, 0, key.length);
  }

  /**
   * The backend that owns `key`: the owner of the first point at or after the key's position.
   * With `accept`, walks on around the ring to the first backend it accepts (e.g. skip backends
   * that are down: the key returns to its owner once the owner is accepted again).
   * @returns the backend id, or `undefined` when the ring is empty or nothing is accepted.
   */
  get(key: string, accept?: (id: string) => boolean): string | undefined {
    checkKey(key);
    const pos = this._locate(key, 0, key.length);
    if (pos < 0) return undefined;
    const s = this._snapshot();
    if (accept === undefined) return s.ids[s.owners[pos]!];
    checkFunction('accept', accept);
    const [id] = this.#walk(s, pos, 1, accept);
    return id;
  }

  /**
   * Up to `n` distinct backends in ring order from the key's position: the owner first, then the
   * backends a walk around the ring meets (for fallback and replication). With `accept`, only
   * accepted backends are listed.
   */
  getN(key: string, n: number, accept?: (id: string) => boolean): string[] {
    checkKey(key);
    checkNumber('n', n, { min: 0, integer: true });
    if (accept !== undefined) checkFunction('accept', accept);
    const pos = this._locate(key, 0, key.length);
    if (pos < 0 || n === 0) return [];
    return this.#walk(this._snapshot(), pos, n, accept);
  }

  /**
   * Where a key lands: its hash, the chosen point, the point's index and its owner.
   * @returns `undefined` when the ring is empty.
   */
  locate(key: string): RingLocation | undefined {
    checkKey(key);
    const index = this._locate(key, 0, key.length);
    if (index < 0) return undefined;
    const s = this._snapshot();
    return {
      hash: this._hashOut[0]!,
      point: s.points[index]!,
      index,
      id: s.ids[s.owners[index]!]!,
    };
  }

  #walk(
    s: RingSnapshot,
    start: number,
    n: number,
    accept: ((id: string) => boolean) | undefined,
  ): string[] {
    const out: string[] = [];
    const seen = this.#seen;
    const gen = ++this.#generation;
    const total = s.points.length;
    let pos = start;
    for (let step = 0; step < total && out.length < n; step++) {
      const owner = s.owners[pos]!;
      if (seen[owner] !== gen) {
        seen[owner] = gen;
        const id = s.ids[owner]!;
        if (accept === undefined || accept(id)) out.push(id);
      }
      pos = pos + 1 === total ? 0 : pos + 1;
    }
    return out;
  }

  /**
   * The ring's built arrays, rebuilding first when backends changed. The object stays the same
   * until the next change.
   * @internal
   */
  _snapshot(): RingSnapshot {
    return this.#snapshot ?? this.#build();
  }

  /**
   * The ring position of `str[start, end)`, allocation-free for the built-in hashes.
   * @internal
   */
  _hashRange(str: string, start: number, end: number): number {
    this.#hashInto(str, start, end);
    return this._hashOut[0]!;
  }

  /**
   * Hashes `str[start, end)` into {@link ConsistentHashRing._hashOut} and returns the index of the
   * first ring point at or after it (wrapping), or -1 when the ring is empty. Allocation-free for
   * the built-in hashes: only small integers cross calls.
   * @internal
   */
  _locate(str: string, start: number, end: number): number {
    // Build first: building hashes the backends' points through the same output array.
    const s = this._snapshot();
    this.#hashInto(str, start, end);
    const points = s.points;
    const n = points.length;
    if (n === 0) return -1;
    const hash = this._hashOut[0]!;
    // Start at the hash's bucket, then scan forward: the first point >= hash, or wrap to 0.
    let i = s.index[hash >>> s.shift]!;
    while (i < n && points[i]! < hash) i++;
    return i === n ? 0 : i;
  }

  #hashInto(str: string, start: number, end: number): void {
    switch (this.#hashKind) {
      case HASH_MD5:
        md5Words(str, start, end);
        this._hashOut[0] = md5Out[0]!;
        return;
      case HASH_MURMUR3:
        murmur3Into(str, start, end, this._hashOut);
        return;
      default:
        this._hashOut[0] = this.#custom(
          start === 0 && end === str.length ? str : str.slice(start, end),
        );
    }
  }

  #custom(input: string): number {
    const h = this.#hashFn!(input);
    if (typeof h !== 'number' || !Number.isInteger(h) || h < -0x80000000 || h > 0xffffffff) {
      throw new LoadBalancerConfigError(
        'hash(input)',
        h,
        'an unsigned 32-bit integer (a signed int32 is read as its unsigned value)',
      );
    }
    return h >>> 0;
  }

  #build(): RingSnapshot {
    const entries = [...this.#entries.values()];
    const n = entries.length;
    // libketama divides weights in float32: weights past 2^64 could overflow it to Infinity and
    // leave every backend without a point. Scaling all weights by one power of two is exact and
    // changes no share, so rings of ordinary weights are built exactly as before.
    let heaviest = 0;
    for (const e of entries) if (e.weight > heaviest) heaviest = e.weight;
    const scale = heaviest > 2 ** 64 ? 2 ** (64 - Math.ceil(Math.log2(heaviest))) : 1;
    let totalWeight = 0;
    for (const e of entries) totalWeight += e.weight * scale;
    const perServer = this.#virtualNodes / this.#perHash;
    const counts = new Array<number>(n);
    let total = 0;
    for (let k = 0; k < n; k++) {
      const e = entries[k]!;
      const digests = ketamaDigestCount(e.weight * scale, totalWeight, n, perServer);
      this.#ensureDigests(e, digests);
      counts[k] = digests * this.#perHash;
      total += counts[k]!;
    }
    // Sort (point, ordinal) pairs packed into one float64 each: ties between backends break by
    // the order they were added, so every process that adds them in the same order agrees.
    const packed = new Float64Array(total);
    let p = 0;
    for (let k = 0; k < n; k++) {
      const cache = entries[k]!.cache;
      for (let j = 0; j < counts[k]!; j++) packed[p++] = cache[j]! * ORDINAL_SCALE + k;
    }
    packed.sort();
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const v = packed[i]!;
      const point = Math.floor(v / ORDINAL_SCALE);
      points[i] = point;
      owners[i] = v - point * ORDINAL_SCALE;
    }
    if (this.#seen.length < n) this.#seen = new Uint32Array(n);
    const snapshot: RingSnapshot = {
      points,
      owners,
      ids: entries.map((e) => e.id),
      ...bucketIndex(points),
    };
    this.#snapshot = snapshot;
    return snapshot;
  }

  /** Computes and caches the points of a backend's first `digests` hashed strings. */
  #ensureDigests(e: RingEntry, digests: number): void {
    if (e.digests >= digests) return;
    const per = this.#perHash;
    if (e.cache.length < digests * per) {
      const grown = new Uint32Array(Math.max(digests, e.digests * 2) * per);
      grown.set(e.cache.subarray(0, e.digests * per));
      e.cache = grown;
    }
    for (let i = e.digests; i < digests; i++) {
      const label = `${e.hashKey}-${i}`;
      if (this.#hashKind === HASH_MD5) {
        md5Words(label);
        e.cache[4 * i] = md5Out[0]!;
        e.cache[4 * i + 1] = md5Out[1]!;
        e.cache[4 * i + 2] = md5Out[2]!;
        e.cache[4 * i + 3] = md5Out[3]!;
      } else {
        e.cache[i] = this._hashRange(label, 0, label.length);
      }
    }
    e.digests = digests;
  }
}
