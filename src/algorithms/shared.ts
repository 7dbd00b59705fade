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
 * Whether `candidates` is a retry's subset rather than the pool's eligible snapshot. The pool
 * announces every new snapshot through `onEligibleChange` before the next pick, so any other
 * array is the shorter list of a retry that excludes backends already tried: an algorithm serves
 * it without replacing the state it keeps for the snapshot. Without a pool (no snapshot
 * announced) every array counts as a snapshot.
 * @internal
 */
export function isRetrySubset(
  candidates: readonly BackendView[],
  snapshot: readonly BackendView[] | undefined,
): boolean {
  return snapshot !== undefined && candidates !== snapshot;
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
