import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  ConsistentHashRing,
  checkRingPoints,
  type RingHash,
  type RingSnapshot,
} from '../hashing/consistent-hash-ring.js';
import type {
  Algorithm,
  AlgorithmEnv,
  AlgorithmExplanation,
  BackendView,
  PickContext,
} from '../types.js';
import { checkFunction, checkNumber, checkOptions, checkString } from '../validate.js';
import {
  checkKeyFunction,
  checkMissingKey,
  type KeyFunction,
  keyFieldOf,
  type MissingKeyPolicy,
  missingKeyNote,
  pickWithoutKey,
  readKey,
  SnapshotZones,
} from './shared.js';

export type { MissingKeyPolicy } from './shared.js';
// IpHash imports it from here.
export { badKeyError } from './shared.js';

/** Options shared by {@link ConsistentHash} and {@link IpHash}. */
export interface HashRingAlgorithmOptions {
  /**
   * Ring points per backend at the mean weight (libketama: 160). More points spread keys more
   * evenly; with `hash: 'md5'` it must be a multiple of 4. The ring holds at most 2^22 points in
   * all: a pool change that would make `virtualNodes × backends` exceed it throws a
   * `LoadBalancerConfigError` naming `virtualNodes` (and the pool stays as it was).
   * @default 160
   */
  virtualNodes?: number;
  /**
   * The ring hash: `'md5'` (ketama-compatible), `'murmur3'`, or your own
   * `(input: string) => uint32`. See {@link RingHash}.
   * @default 'md5'
   */
  hash?: RingHash;
  /**
   * Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam, 2016; HAProxy's
   * `hash-balance-factor`, Envoy's `hash_balance_factor`): a number c > 1. No backend takes more
   * than ceil(c × (calls in flight on eligible backends + 1) / eligible backends) calls; a key
   * whose owner is full walks on around the ring to the next backend under that cap, so a hot
   * key cannot overload one backend. 1.25 is a common choice (HAProxy's documentation suggests
   * 125%). Unset, keys always go to their owner.
   * @default undefined (no bound)
   */
  balanceFactor?: number;
  /**
   * The string a backend's ring points are hashed from (`"<ringKey>-<i>"`). The default, the
   * backend id, is `host:port` for a URL backend, which is what libketama hashes. For
   * libmemcached's form (the host alone at the default port 11211) pass
   * `(b) => b.id.replace(/:11211$/, '')`. Keep it unique per backend.
   * @default (backend) => backend.id
   */
  ringKey?: (backend: BackendView) => string;
  /**
   * A pick without a key: `'random'` picks a random eligible backend (from the pool's random
   * source), `'throw'` throws a {@link LoadBalancerConfigError} naming the missing key.
   * @default 'random'
   */
  missingKey?: MissingKeyPolicy;
}

/** Options of {@link ConsistentHash}. */
export interface ConsistentHashOptions extends HashRingAlgorithmOptions {
  /**
   * Where the affinity key comes from: a function of the pick context returning a string, or
   * `undefined` for no key.
   * @default (ctx) => ctx.key
   * @example
   * ```ts
   * new ConsistentHash({ key: (ctx) => ctx.key?.split(':')[0] }); // route by tenant prefix
   * ```
   */
  key?: (ctx: PickContext) => string | undefined;
}

const RING_OPTION_KEYS = [
  'virtualNodes',
  'hash',
  'balanceFactor',
  'ringKey',
  'missingKey',
] as const;

const byId = (b: BackendView): string => b.id;

/** "No load cap": above any count of calls in flight, and still a small integer. */
const NO_CAP = 0x3fffffff;

/**
 * The ring machinery shared by {@link ConsistentHash} and {@link IpHash}: a ketama ring over every
 * member (eligible or not), rebuilt only when membership or weights change. A pick walks from the
 * key's owner to the first eligible backend (under the load cap, with a balance factor): the key
 * moves on while its owner is unhealthy, draining or excluded, and comes back when it recovers.
 */
export abstract class HashRingAlgorithm implements Algorithm {
  abstract readonly name: string;
  readonly #ring: ConsistentHashRing;
  readonly #balanceFactor: number | undefined;
  readonly #ringKey: (backend: BackendView) => string;
  readonly #missingKey: MissingKeyPolicy;
  #env: AlgorithmEnv | undefined;
  #snapshot: RingSnapshot | undefined;
  /** Member views by ring ordinal. */
  #views: (BackendView | undefined)[] = [];
  /** The zone of each of the pool's snapshots (zone-aware routing hands over one zone). */
  readonly #zones = new SnapshotZones();

  protected constructor(
    label: string,
    options: HashRingAlgorithmOptions,
    extraKeys: readonly string[],
  ) {
    const o = checkOptions(`${label} options`, options, [...RING_OPTION_KEYS, ...extraKeys]);
    const ringOptions: { virtualNodes?: number; hash?: RingHash } = {};
    if (o.virtualNodes !== undefined) ringOptions.virtualNodes = o.virtualNodes;
    if (o.hash !== undefined) ringOptions.hash = o.hash;
    this.#ring = new ConsistentHashRing([], ringOptions);
    this.#balanceFactor =
      o.balanceFactor === undefined
        ? undefined
        : checkNumber('balanceFactor', o.balanceFactor, { min: 1, minExclusive: true });
    this.#ringKey =
      o.ringKey === undefined
        ? byId
        : checkFunction<(b: BackendView) => string>('ringKey', o.ringKey);
    this.#missingKey = checkMissingKey(o.missingKey);
  }

  /**
   * The key of this pick, or `undefined` for none.
   * @internal
   */
  protected abstract keyOf(ctx: PickContext): string | undefined;

  /**
   * Where hashing starts in the key (lets a subclass skip a prefix without slicing).
   * @internal
   */
  protected keyStart(_key: string): number {
    return 0;
  }

  /**
   * The name of the context field the key comes from, for messages.
   * @internal
   */
  protected abstract readonly keyField: string;

  attach(env: AlgorithmEnv): void {
    this.#env = env;
  }

  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.#zones.update(snapshots);
  }

  onMembershipChange(members: readonly BackendView[]): void {
    const ring = this.#ring;
    // Refused before the ring changes, so the pool can undo the change that brought it here.
    checkRingPoints(ring.virtualNodes, members.length);
    const present = new Map<string, BackendView>();
    for (const m of members) present.set(m.id, m);
    for (const id of ring.ids()) if (!present.has(id)) ring.remove(id);
    for (const m of members) {
      // The configured weight, not the slow-start ramp: placements must stay put while a
      // backend warms up (bounded loads still protect a cold backend from a hot key).
      ring.add(m.id, m.weight, checkString('ringKey(backend)', this.#ringKey(m)));
    }
    const snapshot = ring._snapshot();
    this.#snapshot = snapshot;
    this.#views = snapshot.ids.map((id) => present.get(id));
  }

  pick(candidates: readonly BackendView[], ctx: PickContext): BackendView | undefined {
    const key = this.keyOf(ctx);
    if (key === undefined) {
      return pickWithoutKey(this.#missingKey, this.#env, this.name, this.keyField, candidates);
    }
    // Only small integers cross calls here (the hash itself stays in the ring's typed array): a
    // 32-bit hash passed or returned across a call the optimizer did not inline would be boxed.
    const start = this.#ring._locate(key, this.keyStart(key), key.length);
    return this.#choose(candidates, start, this.#ring._hashOut[0]! % candidates.length);
  }

  /**
   * The load cap of bounded loads for this pick, or {@link NO_CAP} without a balance factor. An
   * integer in the small-integer range, so returning it never allocates.
   */
  #cap(candidates: readonly BackendView[]): number {
    const c = this.#balanceFactor;
    if (c === undefined) return NO_CAP;
    let total = 0;
    for (let i = 0; i < candidates.length; i++) total += candidates[i]!.inFlight;
    // The epsilon absorbs float error such as 1.1 × 10 = 11.000000000000002, which would
    // otherwise round the cap up by one.
    return Math.min(Math.ceil((c * (total + 1)) / candidates.length - 1e-9), NO_CAP) | 0;
  }

  /**
   * Walks the ring from index `start` to the first eligible backend of the candidates' tier (and
   * zone, under zone-aware routing) under the load cap; falls back to the candidates from
   * `fallback` (the hash mod their count).
   */
  #choose(
    candidates: readonly BackendView[],
    start: number,
    fallback: number,
  ): BackendView | undefined {
    const cap = this.#cap(candidates);
    // The pool draws a tier (and a zone) first: only backends there may take this pick.
    const tier = candidates[0]!.priority;
    const zone = this.#zones.of(candidates);
    const s = this.#snapshot;
    if (s !== undefined && start >= 0) {
      const owners = s.owners;
      const views = this.#views;
      const total = owners.length;
      let pos = start;
      for (let step = 0; step < total; step++) {
        const v = views[owners[pos]!];
        if (
          v?.eligible &&
          v.priority === tier &&
          (zone === null || v.zone === zone) &&
          v.inFlight < cap
        )
          return v;
        pos = pos + 1 === total ? 0 : pos + 1;
      }
    }
    // No eligible backend holds a point (the ring was not told about these candidates, or their
    // weights were too small for ketama to give them one): a deterministic choice by hash.
    const n = candidates.length;
    for (let i = 0; i < n; i++) {
      const v = candidates[(fallback + i) % n]!;
      if (v.inFlight < cap) return v;
    }
    return candidates[fallback];
  }

  explain(candidates: readonly BackendView[], ctx: PickContext): AlgorithmExplanation {
    const s = this.#snapshot;
    const ring = `ketama ring of ${s?.points.length ?? 0} points over ${s?.ids.length ?? 0} backends`;
    const key = this.keyOf(ctx);
    if (key === undefined) {
      return {
        wouldPick: undefined,
        note: `${ring}; ${missingKeyNote(this.keyField, this.#missingKey)}`,
      };
    }
    const start = this.#ring._locate(key, this.keyStart(key), key.length);
    const hash = this.#ring._hashOut[0]!;
    const picked = this.#choose(candidates, start, hash % candidates.length);
    const owner = s !== undefined && start >= 0 ? this.#views[s.owners[start]!] : undefined;
    const cap = this.#cap(candidates);
    const bound = cap === NO_CAP ? '' : `; load cap ${cap} in flight`;
    const moved =
      owner !== undefined && owner !== picked
        ? `; owner ${owner.id} (${owner.eligible ? `${owner.inFlight} in flight, at the cap` : owner.state}) is passed over`
        : '';
    return {
      wouldPick: picked,
      note: `${ring}; ${this.keyField} ${JSON.stringify(key)} hashes to 0x${hash
        .toString(16)
        .padStart(8, '0')} → ${picked?.id ?? 'nothing'}${moved}${bound}`,
    };
  }
}

/**
 * Consistent hashing by an affinity key (user id, cache key, tenant): every client with the same
 * backends sends a key to the same backend without sharing any state, and a membership change
 * moves as few keys as possible. The ring is ketama-compatible by default, so a Node service
 * agrees with memcached clients (libketama, libmemcached) on which server owns a key.
 *
 * The key comes from `ctx.key` (or the `key` option). When the owner is unhealthy, draining,
 * ejected or excluded, the key goes to the next backend on the ring and comes back when the
 * owner recovers. With `balanceFactor`, bounded loads cap every backend's in-flight calls.
 * A pick without a key goes to a random eligible backend (or throws, with
 * `missingKey: 'throw'`). A pick allocates nothing beyond hashing the key.
 *
 * Weights are the backends' configured weights; slow start does not move keys around.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({
 *   backends: ['http://10.0.1.10:8080', 'http://10.0.1.11:8080', 'http://10.0.1.12:8080'],
 *   algorithm: new ConsistentHash({ balanceFactor: 1.25 }),
 * });
 * const lease = pool.acquire({ key: 'user-42' }); // the same backend from every replica
 * ```
 */
export class ConsistentHash extends HashRingAlgorithm {
  readonly name: string = 'consistent-hash';
  protected readonly keyField: string;
  readonly #key: KeyFunction | undefined;

  constructor(options: ConsistentHashOptions = {}) {
    super('ConsistentHash', options, ['key']);
    this.#key = checkKeyFunction(options.key);
    this.keyField = keyFieldOf(this.#key);
  }

  protected keyOf(ctx: PickContext): string | undefined {
    return readKey(this.#key, ctx, this.name, this.keyField);
  }
}
