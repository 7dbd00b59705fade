import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { AlgorithmEnv, BackendView, PickContext } from '../types.js';
import { checkFunction, checkOneOf } from '../validate.js';

/**
 * The environment of an algorithm that is not attached to a pool yet: the pool attaches its own
 * before the first pick.
 * @internal
 */
export function requireEnv(env: AlgorithmEnv | undefined, name: string): AlgorithmEnv {
  if (env === undefined) {
    throw new LoadBalancerConfigError(
      `${name}.pick`,
      undefined,
      "an algorithm attached to a BackendPool (pass it as the pool's `algorithm` option)",
    );
  }
  return env;
}

/**
 * Which of the pool's eligible snapshots `candidates` is: its index among those announced by
 * `onEligibleChange` (one per priority tier that takes calls), or -1 for any other array, the
 * shorter list of a retry that excludes backends already tried, which an algorithm serves
 * without replacing the state it keeps per snapshot. Without a pool (nothing announced) every
 * array counts as snapshot 0. Allocates nothing.
 * @internal
 */
export function snapshotIndex(
  candidates: readonly BackendView[],
  snapshots: readonly (readonly BackendView[])[] | undefined,
): number {
  if (snapshots === undefined) return 0;
  for (let i = 0; i < snapshots.length; i++) if (snapshots[i] === candidates) return i;
  return -1;
}

/**
 * The index of the announced snapshot a retry's subset was cut from (the one holding its first
 * backend), or -1. O(n); for retries only.
 * @internal
 */
export function snapshotHolding(
  subset: readonly BackendView[],
  snapshots: readonly (readonly BackendView[])[] | undefined,
): number {
  const first = subset[0];
  if (snapshots === undefined || first === undefined) return -1;
  for (let i = 0; i < snapshots.length; i++) if (snapshots[i]!.includes(first)) return i;
  return -1;
}

/**
 * The zone every candidate is in (`undefined` being the zone of backends without one), or `null`
 * when they span several. With zone-aware routing the pool hands a pick the candidates of one
 * zone, and an algorithm that walks a table over every member (a ring, Maglev) must stay in it.
 * O(n); computed per snapshot, and per pick only for a retry's subset.
 * @internal
 */
export function commonZone(candidates: readonly BackendView[]): string | undefined | null {
  const first = candidates[0];
  if (first === undefined) return null;
  const zone = first.zone;
  for (let i = 1; i < candidates.length; i++) if (candidates[i]!.zone !== zone) return null;
  return zone;
}

/**
 * Remembers the zone of each of the pool's snapshots so a table walk can stay in the zone of the
 * candidates it was given: `null` (no restriction) without a pool or for arrays that span zones.
 * @internal
 */
export class SnapshotZones {
  #snapshots: readonly (readonly BackendView[])[] | undefined;
  #zones: (string | undefined | null)[] = [];

  /** Call from `onEligibleChange`. */
  update(snapshots: readonly (readonly BackendView[])[]): void {
    this.#snapshots = snapshots;
    this.#zones = snapshots.map(commonZone);
  }

  /** The zone a pick over `candidates` must stay in, or `null` for any. */
  of(candidates: readonly BackendView[]): string | undefined | null {
    const snapshots = this.#snapshots;
    if (snapshots === undefined) return null;
    const k = snapshotIndex(candidates, snapshots);
    return k >= 0 ? this.#zones[k]! : commonZone(candidates);
  }
}

/** In-flight calls per unit of effective weight: the load figure of least-loaded algorithms. @internal */
export function loadOf(b: BackendView): number {
  return b.inFlight / b.effectiveWeight;
}

/** A one-line summary of candidates' loads for `explain()`. @internal */
export function describeLoads(candidates: readonly BackendView[], limit = 8): string {
  const shown = candidates
    .slice(0, limit)
    .map((b) => `${b.id}=${b.inFlight}/${round(b.effectiveWeight)}`);
  return (
    shown.join(', ') + (candidates.length > limit ? `, ... (${candidates.length} in all)` : '')
  );
}

/** Rounds to 3 decimals for messages. @internal */
export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** What a hash-based algorithm does with a pick that carries no key. */
export type MissingKeyPolicy = 'random' | 'throw';

/** A `key` option of a hash-based algorithm: the affinity key of a pick, or `undefined`. @internal */
export type KeyFunction = (ctx: PickContext) => string | undefined;

/**
 * A key that was not a string, or a missing key under `missingKey: 'throw'`.
 * @internal
 */
export function badKeyError(name: string, field: string, value: unknown): LoadBalancerConfigError {
  return new LoadBalancerConfigError(
    `${name}: ${field}`,
    value,
    value === undefined
      ? `a key in the pick context (${name} routes by key; or set missingKey: 'random')`
      : 'a string (or undefined for no key)',
  );
}

/**
 * A random eligible candidate, for picks without a key.
 * @internal
 */
export function randomCandidate(
  env: AlgorithmEnv | undefined,
  name: string,
  candidates: readonly BackendView[],
): BackendView | undefined {
  if (candidates.length === 1) return candidates[0];
  const random = requireEnv(env, name).random;
  return candidates[Math.floor(random() * candidates.length)];
}

/** The `missingKey` option, checked; `'random'` when unset. @internal */
export function checkMissingKey(value: unknown): MissingKeyPolicy {
  return value === undefined ? 'random' : checkOneOf('missingKey', value, ['random', 'throw']);
}

/** The `key` option, checked; `undefined` when unset (the key is then `ctx.key`). @internal */
export function checkKeyFunction(value: unknown): KeyFunction | undefined {
  return value === undefined ? undefined : checkFunction<KeyFunction>('key', value);
}

/** Where the key comes from, as messages name it: `ctx.key` or `key(ctx)`. @internal */
export function keyFieldOf(key: KeyFunction | undefined): string {
  return key === undefined ? 'ctx.key' : 'key(ctx)';
}

/**
 * The affinity key of a pick: `key(ctx)`, or `ctx.key` without a key function. Throws when it is
 * neither a string nor `undefined` (no key).
 * @internal
 */
export function readKey(
  key: KeyFunction | undefined,
  ctx: PickContext,
  name: string,
  field: string,
): string | undefined {
  const k = key === undefined ? ctx.key : key(ctx);
  if (typeof k === 'string' || k === undefined) return k;
  throw badKeyError(name, field, k);
}

/**
 * A pick that carries no key: a random eligible candidate, or a throw under `missingKey: 'throw'`.
 * @internal
 */
export function pickWithoutKey(
  policy: MissingKeyPolicy,
  env: AlgorithmEnv | undefined,
  name: string,
  field: string,
  candidates: readonly BackendView[],
): BackendView | undefined {
  if (policy === 'throw') throw badKeyError(name, field, undefined);
  return randomCandidate(env, name, candidates);
}

/** What `explain()` says of a pick without a key. @internal */
export function missingKeyNote(field: string, policy: MissingKeyPolicy): string {
  return `no ${field} in the pick context: ${
    policy === 'throw' ? 'the pick throws' : 'a random eligible backend'
  }`;
}
