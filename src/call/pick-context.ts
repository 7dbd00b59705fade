/**
 * The pick context of one attempt, from a client's `key` and `context` hooks: the same rule for
 * the balanced fetch and the undici dispatcher.
 * @internal
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { PickContext } from '../types.js';
import { checkString } from '../validate.js';
import { isThenable } from './call.js';

/** What the `context` hook receives besides the request. */
export interface ContextInfo {
  /** The attempt about to be made, from 1. */
  readonly attempt: number;
  /** Ids of the backends tried so far in this call, in order. */
  readonly tried: readonly string[];
}

/** A client's hooks over its request type `Q`. */
export interface PickHooks<Q> {
  readonly key: ((request: Q) => string | undefined) | undefined;
  readonly context:
    | ((
        request: Q,
        info: ContextInfo,
      ) => PickContext | undefined | Promise<PickContext | undefined>)
    | undefined;
}

/** Where the request the hooks receive comes from (made only when a hook needs it). */
export interface HookSource<Q> {
  hookRequest(): Q;
}

/**
 * The pick context of attempt `attempt`: the key, what the `context` hook adds (awaited only when
 * it returns a promise), and the backends already tried excluded. `source` gives the request only
 * when a hook needs it; `argument` names it in errors (`key(request)`, `context(options)`).
 */
export function attemptContext<Q>(
  hooks: PickHooks<Q>,
  source: HookSource<Q>,
  argument: string,
  attempt: number,
  tried: readonly string[],
): PickContext | undefined | Promise<PickContext | undefined> {
  const { key, context } = hooks;
  if (key === undefined && context === undefined) {
    return tried.length === 0 ? undefined : { exclude: tried };
  }
  const req = source.hookRequest();
  const ctx: PickContext = {};
  if (key !== undefined) {
    const k = key(req);
    if (k !== undefined) ctx.key = checkString(`key(${argument})`, k, { nonEmpty: false });
  }
  if (context === undefined) return withTried(ctx, tried);
  const value = context(req, { attempt, tried: tried.slice() });
  return isThenable(value)
    ? value.then((extra) => withTried(merge(ctx, extra, argument), tried))
    : withTried(merge(ctx, value, argument), tried);
}

/** Adds the backends tried in this call to `ctx.exclude`. */
function withTried(ctx: PickContext, tried: readonly string[]): PickContext {
  if (tried.length > 0) {
    const own = ctx.exclude;
    ctx.exclude = own === undefined ? tried : [...new Set([...own, ...tried])];
    // A sticky pin to a backend that already failed in this call would send the retry back to
    // it; retries go elsewhere.
    if (ctx.affinity !== undefined && tried.includes(ctx.affinity.id)) delete ctx.affinity;
  }
  return ctx;
}

/** `ctx` with what the `context` hook returned merged in. */
function merge(ctx: PickContext, extra: PickContext | undefined, argument: string): PickContext {
  if (extra === undefined) return ctx;
  if (typeof extra !== 'object' || extra === null) {
    throw new LoadBalancerConfigError(`context(${argument})`, extra, 'a PickContext or undefined');
  }
  return Object.assign(ctx, extra);
}
