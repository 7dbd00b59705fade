/**
 * The Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
 * Balancer", NSDI 2016, section 3.4), built the way Envoy's `MaglevTable` builds it so that both
 * agree slot for slot.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { checkNumber, checkOptions, checkString, isPlainObject } from '../validate.js';
import { xxh64Words } from './xxhash64.js';

/** A backend of a {@link MaglevTable}. */
export interface MaglevBackend {
  /** The id lookups return. Unique within the table. */
  id: string;
  /**
   * Relative share of table slots, a finite number > 0 (applied as Envoy applies host weights).
   * @default 1
   */
  weight?: number;
  /**
   * The string hashed into the backend's offset and skip, and the order of filling (ascending).
   * Envoy hashes the host's address, e.g. `127.0.0.1:90`.
   * @default id
   */
  key?: string;
  /**
   * The start of the backend's preference list, in [0, tableSize). Given together with `skip`,
   * it replaces the hash (to reproduce published tables, or to bring your own hash).
   * @default XXH64(key, seed 0) mod tableSize
   */
  offset?: number;
  /**
   * The stride of the backend's preference list, in [1, tableSize).
   * @default XXH64(key, seed 1) mod (tableSize - 1) + 1
   */
  skip?: number;
}

/** Options of {@link MaglevTable}. */
export interface MaglevTableOptions {
  /**
   * The number of slots M, a prime at most 5000011 (Envoy's limit). The paper advises M well above 100 × the number
   * of backends to keep shares within 1% of their weights; Envoy's default is 65537.
   * @default 65537
   */
  tableSize?: number;
}

/** Envoy's `MaglevTable::DefaultTableSize`. */
const DEFAULT_TABLE_SIZE = 65537;
/**
 * The largest table: Envoy's limit ("The table size must be prime number limited to 5000011",
 * maglev.proto `table_size`). Memory and build time grow with M: measured with
 * `bench/hash-limits.ts` (Node 20, two shared cores), 5,000,011 slots over 1,000 equal backends
 * keep 19 MB and build in about 1 s of CPU; the former limit, 2^26 slots, kept 256 MB and took
 * 10 s with two backends. It also keeps (hash mod M) × (2^32 mod M) below 2^53, so slot
 * arithmetic stays exact in doubles.
 */
const MAX_TABLE_SIZE = 5_000_011;
const MASK64 = (1n << 64n) - 1n;

/** Whether n is prime (trial division: n <= 5000011, so at most ~1120 odd divisors). */
function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Validates a Maglev table size: a prime in [2, 5000011].
 * @internal
 */
export function checkTableSize(field: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > MAX_TABLE_SIZE) {
    throw new LoadBalancerConfigError(
      field,
      value,
      `a prime of at most ${MAX_TABLE_SIZE} (Envoy's limit; a table keeps 4 bytes per slot and builds in seconds at that size)`,
    );
  }
  const m = checkNumber(field, value, { min: 2, max: MAX_TABLE_SIZE, integer: true });
  if (!isPrime(m)) {
    throw new LoadBalancerConfigError(field, m, 'a prime number (e.g. 65537 or 5000011)');
  }
  return m;
}

/**
 * x mod m for integers 0 <= x < 2^53 and 0 < m, given `inv` = 1 / m: a multiplication and a
 * floor, then one correction step, since the rounded quotient is off by at most one. V8 runs `%`
 * on values beyond int32 as a call to `fmod`, which costs several times more.
 */
function modExact(x: number, m: number, inv: number): number {
  const r = x - Math.floor(x * inv) * m;
  return r < 0 ? r + m : r >= m ? r - m : r;
}

/**
 * (hi × 2^32 + lo) mod m for unsigned 32-bit halves, m <= 2^26, `inv` = 1 / m and `twoTo32` =
 * 2^32 mod m: every intermediate stays below 2^53, so the double arithmetic is exact.
 */
function mod64(hi: number, lo: number, m: number, inv: number, twoTo32: number): number {
  return modExact(modExact(hi, m, inv) * twoTo32 + modExact(lo, m, inv), m, inv);
}

/** Compares two strings by Unicode code point, which is the byte order of their UTF-8 forms. */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

interface BuildEntry {
  id: string;
  key: string;
  weight: number;
  offset: number;
  skip: number;
}

/**
 * A Maglev lookup table: M slots (M prime), each owned by one backend, filled by letting the
 * backends take turns claiming the next free slot of their own preference list
 * `(offset + j × skip) mod M`. Shares follow the weights closely, and removing a backend
 * reassigns its slots while moving few others. Build it once per membership change; a lookup is
 * one array read.
 *
 * Compatible with Envoy's Maglev load balancer: offset = XXH64(key, 0) mod M,
 * skip = XXH64(key, 1) mod (M − 1) + 1, backends filled in ascending order of their keys, and
 * weights applied as Envoy does (each turn, a backend claims a slot only while its claims trail
 * its normalized weight × the turn number).
 *
 * @example
 * ```ts
 * const table = new MaglevTable([{ id: 'a:80' }, { id: 'b:80', weight: 2 }], { tableSize: 65537 });
 * table.lookupKey('user-42');       // XXH64('user-42') mod M, then the slot's owner
 * table.lookup(0x1234abcdn);        // a 64-bit hash you computed yourself
 * ```
 */
export class MaglevTable {
  /** The number of slots M. */
  readonly tableSize: number;
  /** Backend ids in fill order (ascending by key); slots hold indices into this list. */
  readonly ids: readonly string[];
  readonly #slots: Uint32Array;
  /** 2^32 mod M: folds the high half of a 64-bit hash into the slot. */
  readonly #twoTo32: number;
  /** 1 / M, for reductions by multiplication. */
  readonly #inverse: number;
  readonly #words = new Uint32Array(2);

  /**
   * @param backends At least one backend; ids must be unique.
   * @param options See {@link MaglevTableOptions}.
   */
  constructor(backends: readonly MaglevBackend[], options: MaglevTableOptions = {}) {
    const o = checkOptions('MaglevTable options', options, ['tableSize']);
    const m =
      o.tableSize === undefined ? DEFAULT_TABLE_SIZE : checkTableSize('tableSize', o.tableSize);
    this.tableSize = m;
    this.#twoTo32 = 2 ** 32 % m;
    this.#inverse = 1 / m;
    if (!Array.isArray(backends) || backends.length === 0) {
      throw new LoadBalancerConfigError(
        'backends',
        backends,
        'a non-empty array of { id, weight? }',
      );
    }
    const seen = new Set<string>();
    const words = new Uint32Array(2);
    const entries: BuildEntry[] = backends.map((b, i) => {
      const field = `backends[${i}]`;
      if (!isPlainObject(b))
        throw new LoadBalancerConfigError(field, b, 'an object { id, weight? }');
      const e = checkOptions(field, b, ['id', 'weight', 'key', 'offset', 'skip']);
      const id = checkString(`${field}.id`, e.id);
      if (seen.has(id)) throw new LoadBalancerConfigError(`${field}.id`, id, 'a unique id');
      seen.add(id);
      const key = e.key === undefined ? id : checkString(`${field}.key`, e.key);
      const weight =
        e.weight === undefined
          ? 1
          : checkNumber(`${field}.weight`, e.weight, { min: 0, minExclusive: true });
      let offset: number;
      let skip: number;
      if (e.offset !== undefined || e.skip !== undefined) {
        if (e.offset === undefined || e.skip === undefined) {
          throw new LoadBalancerConfigError(
            `${field}.${e.offset === undefined ? 'offset' : 'skip'}`,
            undefined,
            'offset and skip given together',
          );
        }
        offset = checkNumber(`${field}.offset`, e.offset, { min: 0, max: m - 1, integer: true });
        skip = checkNumber(`${field}.skip`, e.skip, { min: 1, max: m - 1, integer: true });
      } else {
        xxh64Words(key, 0, key.length, 0, 0, words);
        offset = this.#mod(words[0]!, words[1]!);
        xxh64Words(key, 0, key.length, 0, 1, words);
        skip = mod64(words[0]!, words[1]!, m - 1, 1 / (m - 1), 2 ** 32 % (m - 1)) + 1;
      }
      return { id, key, weight, offset, skip };
    });
    // Envoy sorts hosts by their hash key so that every client fills the table in one order.
    entries.sort((a, b) => compareCodePoints(a.key, b.key) || compareCodePoints(a.id, b.id));
    this.ids = Object.freeze(entries.map((e) => e.id));
    this.#slots = populate(entries, m);
  }

  /** (hi × 2^32 + lo) mod M. */
  #mod(hi: number, lo: number): number {
    return mod64(hi, lo, this.tableSize, this.#inverse, this.#twoTo32);
  }

  /**
   * The backend for a 64-bit hash: the owner of slot `hash mod M`.
   * @param hash An unsigned 64-bit hash, e.g. {@link xxhash64} of the request's key.
   */
  lookup(hash: bigint): string {
    if (typeof hash !== 'bigint' || hash < 0n || hash > MASK64) {
      throw new LoadBalancerConfigError('hash', hash, 'an unsigned 64-bit bigint');
    }
    return this.ids[this.#slots[Number(hash % BigInt(this.tableSize))]!]!;
  }

  /** The backend for a key: slot XXH64(key, seed 0) mod M, allocation-free. */
  lookupKey(key: string): string {
    if (typeof key !== 'string') throw new LoadBalancerConfigError('key', key, 'a string');
    return this.ids[this.#slots[this._slotOf(key, 0, key.length)]!]!;
  }

  /** The index (into {@link MaglevTable.ids}) of the backend owning a slot. */
  indexAt(slot: number): number {
    checkNumber('slot', slot, { min: 0, max: this.tableSize - 1, integer: true });
    return this.#slots[slot]!;
  }

  /** The id owning each slot, in slot order. */
  toArray(): string[] {
    return Array.from(this.#slots, (i) => this.ids[i]!);
  }

  /**
   * The slot of `str[start, end)`: XXH64 with seed 0, mod M.
   * @internal
   */
  _slotOf(str: string, start: number, end: number): number {
    const w = this.#words;
    xxh64Words(str, start, end, 0, 0, w);
    return mod64(w[0]!, w[1]!, this.tableSize, this.#inverse, this.#twoTo32);
  }

  /**
   * The raw table: index into {@link MaglevTable.ids} per slot.
   * @internal
   */
  get _slots(): Uint32Array {
    return this.#slots;
  }
}

/**
 * Fills the table as Envoy's `MaglevTable` does: weights are normalized to sum 1, and on turn t a
 * backend claims a slot only if t × weight is no less than its target, which grows by the largest
 * normalized weight at each claim. With equal weights every backend claims on every turn, which
 * is the paper's Pseudocode 1 exactly.
 */
function populate(entries: readonly BuildEntry[], m: number): Uint32Array {
  const n = entries.length;
  let sum = 0;
  for (const e of entries) sum += e.weight;
  const weight = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    weight[i] = entries[i]!.weight / sum;
    if (weight[i]! > maxWeight) maxWeight = weight[i]!;
  }
  const target = new Float64Array(n);
  const skips = new Int32Array(n);
  // Each backend's position in its own preference list (offset + next × skip) mod M, advanced by
  // adding skip rather than multiplying.
  const pos = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    pos[i] = entries[i]!.offset;
    skips[i] = entries[i]!.skip;
  }
  const slots = new Int32Array(m).fill(-1);
  let filled = 0;
  for (let turn = 1; filled < m; turn++) {
    for (let i = 0; i < n && filled < m; i++) {
      if (turn * weight[i]! < target[i]!) continue;
      target[i]! += maxWeight;
      const skip = skips[i]!;
      let c = pos[i]!;
      while (slots[c] !== -1) {
        c += skip;
        if (c >= m) c -= m;
      }
      slots[c] = i;
      c += skip;
      pos[i] = c >= m ? c - m : c;
      filled++;
    }
  }
  return new Uint32Array(slots.buffer);
}
