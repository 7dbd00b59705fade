/**
 * `node:diagnostics_channel` publishing, the way undici publishes `undici:request:create`: APMs
 * and tests subscribe by channel name, with no reference to the pool and no options. A message
 * is built and published only while its channel has subscribers.
 */
import '../disposable.js';
import diagnosticsChannel from 'node:diagnostics_channel';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type {
  FetchAttemptEvent,
  FetchFailureEvent,
  FetchHedgeEvent,
  FetchResponseEvent,
  FetchRetryEvent,
  ObservableFetch,
} from '../observability/types.js';
import type { BackendPool } from '../pool/backend-pool.js';
import type { PoolEvents } from '../types.js';

/**
 * The channel names loadwise publishes on. Subscribe with
 * `diagnostics_channel.subscribe(DIAGNOSTICS_CHANNELS.pick, (message) => ...)`.
 */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  /** A backend was picked and leased: {@link PoolPickMessage}. */
  pick: 'loadwise:pool:pick',
  /** A lease was released: {@link PoolReleaseMessage}. */
  release: 'loadwise:pool:release',
  /** A backend changed state: {@link PoolStateMessage}. */
  state: 'loadwise:pool:state',
  /** Panic mode started or ended: {@link PoolPanicMessage}. */
  panic: 'loadwise:pool:panic',
  /** The skew monitor flagged a backend: {@link PoolSkewMessage}. */
  skew: 'loadwise:pool:skew',
  /** A backend joined the pool: {@link PoolMembershipMessage}. */
  added: 'loadwise:pool:added',
  /** A backend left the pool: {@link PoolMembershipMessage}. */
  removed: 'loadwise:pool:removed',
  /** A drain finished or ran out of time: {@link PoolDrainedMessage}. */
  drained: 'loadwise:pool:drained',
  /** A balanced fetch attempt is about to be sent: {@link FetchAttemptMessage}. */
  attempt: 'loadwise:fetch:attempt',
  /** A balanced fetch attempt failed and will be retried: {@link FetchRetryMessage}. */
  retry: 'loadwise:fetch:retry',
  /** Response headers arrived for a balanced fetch attempt: {@link FetchResponseMessage}. */
  response: 'loadwise:fetch:response',
  /** A balanced fetch attempt failed without a response: {@link FetchFailureMessage}. */
  failure: 'loadwise:fetch:failure',
  /** A balanced fetch sent a hedge because an attempt was slow: {@link FetchHedgeMessage}. */
  hedge: 'loadwise:fetch:hedge',
} as const);

/** The payload of pool event `K`, as published on its channel (with the pool added). */
export type PoolPayload<K extends keyof PoolEvents> = Parameters<PoolEvents[K]>[0];

/** Message on `loadwise:pool:pick`. */
export type PoolPickMessage = { readonly pool: BackendPool } & PoolPayload<'acquire'>;
/** Message on `loadwise:pool:release`. */
export type PoolReleaseMessage = { readonly pool: BackendPool } & PoolPayload<'release'>;
/** Message on `loadwise:pool:state`. */
export type PoolStateMessage = { readonly pool: BackendPool } & PoolPayload<'state'>;
/** Message on `loadwise:pool:panic`. */
export type PoolPanicMessage = { readonly pool: BackendPool } & PoolPayload<'panic'>;
/** Message on `loadwise:pool:skew`. */
export type PoolSkewMessage = { readonly pool: BackendPool } & PoolPayload<'skew'>;
/** Message on `loadwise:pool:added` and `loadwise:pool:removed`. */
export type PoolMembershipMessage = { readonly pool: BackendPool } & PoolPayload<'added'>;
/** Message on `loadwise:pool:drained`. */
export type PoolDrainedMessage = { readonly pool: BackendPool } & PoolPayload<'drained'>;
/** Message on `loadwise:fetch:attempt`. */
export type FetchAttemptMessage = { readonly fetch: ObservableFetch } & FetchAttemptEvent;
/** Message on `loadwise:fetch:retry`. */
export type FetchRetryMessage = { readonly fetch: ObservableFetch } & FetchRetryEvent;
/** Message on `loadwise:fetch:response`. */
export type FetchResponseMessage = { readonly fetch: ObservableFetch } & FetchResponseEvent;
/** Message on `loadwise:fetch:failure`. */
export type FetchFailureMessage = { readonly fetch: ObservableFetch } & FetchFailureEvent;
/** Message on `loadwise:fetch:hedge`. */
export type FetchHedgeMessage = { readonly fetch: ObservableFetch } & FetchHedgeEvent;

/** A handle returned by {@link enableDiagnostics}. */
export interface DiagnosticsHandle {
  /** Stops publishing for the sources this call enabled. Idempotent. */
  close(): void;
  /** Same as {@link DiagnosticsHandle.close}, for `using`. */
  [Symbol.dispose](): void;
}

// Held for the life of the module: Node keeps channels only while something references them.
const channels = {
  pick: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.pick),
  release: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.release),
  state: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.state),
  panic: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.panic),
  skew: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.skew),
  added: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.added),
  removed: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.removed),
  drained: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.drained),
  attempt: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.attempt),
  retry: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.retry),
  response: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.response),
  failure: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.failure),
  hedge: diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.hedge),
};

/** Sources wired to the channels, with how many handles hold them. */
const wired = new WeakMap<object, { count: number; unwire: () => void }>();

/**
 * Publishes the events of pools and balanced fetches on the `loadwise:*` diagnostics channels
 * ({@link DIAGNOSTICS_CHANNELS}). Call it once per pool or fetch, where you create them; any code
 * can then subscribe by channel name. Nothing is attached to a source while its channels have no
 * subscriber (the pool does not even build its event objects), and a message is built only for
 * a channel with subscribers. Enabling a source twice publishes once.
 *
 * @example
 * ```ts
 * import diagnostics_channel from 'node:diagnostics_channel';
 * import { DIAGNOSTICS_CHANNELS, enableDiagnostics, type PoolStateMessage } from 'loadwise/node';
 *
 * enableDiagnostics(pool, fetch);
 * diagnostics_channel.subscribe(DIAGNOSTICS_CHANNELS.state, (message) => {
 *   const { pool, backend, from, to } = message as PoolStateMessage;
 *   console.log(`${pool.name}/${backend.id}: ${from} -> ${to}`);
 * });
 * ```
 */
export function enableDiagnostics(
  ...sources: ReadonlyArray<BackendPool | ObservableFetch>
): DiagnosticsHandle {
  if (sources.length === 0) {
    throw new LoadBalancerConfigError('enableDiagnostics()', undefined, 'a pool or a fetch');
  }
  const wirers = sources.map((s, i) => wirerFor(s, `enableDiagnostics() argument ${i}`));
  const held = new Set<object>();
  sources.forEach((source, i) => {
    if (held.has(source)) return;
    held.add(source);
    const entry = wired.get(source);
    if (entry !== undefined) entry.count++;
    else wired.set(source, { count: 1, unwire: wirers[i]!() });
  });
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const source of held) {
      const entry = wired.get(source);
      if (entry === undefined) continue;
      if (--entry.count === 0) {
        wired.delete(source);
        entry.unwire();
      }
    }
  };
  return { close, [Symbol.dispose]: close };
}

function wirerFor(source: unknown, field: string): () => () => void {
  const s = source as Partial<Record<string, unknown>> | null;
  if (
    typeof s === 'object' &&
    s !== null &&
    typeof s['on'] === 'function' &&
    typeof s['off'] === 'function' &&
    typeof s['backends'] === 'function'
  ) {
    return () => wirePool(source as BackendPool);
  }
  const events = (s as { events?: Partial<Record<string, unknown>> } | null)?.events;
  if (
    (typeof s === 'function' || typeof s === 'object') &&
    s !== null &&
    typeof events === 'object' &&
    events !== null &&
    typeof events['on'] === 'function' &&
    typeof events['off'] === 'function'
  ) {
    return () => wireFetch(source as ObservableFetch);
  }
  throw new LoadBalancerConfigError(field, source, 'a BackendPool or a balanced fetch');
}

// ------------------------------------------------------------------ following subscriptions

/** One listener that is attached to its source only while its channel has subscribers. */
interface Wire {
  readonly channel: diagnosticsChannel.Channel;
  readonly attach: () => void;
  readonly detach: () => void;
  attached: boolean;
}

/** The wires of one source, and whether the source is still wired at all. */
interface Wiring {
  readonly wires: readonly Wire[];
  live: boolean;
}

/**
 * Every wiring, weakly: a source nobody unwires can still be collected (its `wired` entry, keyed
 * by the source, holds the wiring alive exactly as long as the source).
 */
const wirings = new Set<WeakRef<Wiring>>();

function sync(w: Wiring): void {
  for (const wire of w.wires) {
    const want = w.live && wire.channel.hasSubscribers;
    if (want === wire.attached) continue;
    wire.attached = want;
    if (want) wire.attach();
    else wire.detach();
  }
}

function syncAll(): void {
  for (const ref of wirings) {
    const w = ref.deref();
    if (w === undefined) wirings.delete(ref);
    else sync(w);
  }
}

/** Registers the wires of a source and returns its unwire function. */
function follow(wires: Wire[]): () => void {
  const wiring: Wiring = { wires, live: true };
  const ref = new WeakRef(wiring);
  wirings.add(ref);
  sync(wiring);
  return () => {
    wiring.live = false;
    sync(wiring);
    wirings.delete(ref);
  };
}

function wire(channel: diagnosticsChannel.Channel, attach: () => void, detach: () => void): Wire {
  return { channel, attach, detach, attached: false };
}

const WATCHERS = Symbol.for('loadwise.diagnostics.watchers');

/**
 * Calls `onChange` after every subscribe and unsubscribe on `ch`. Node has no notification for
 * this, and even an empty listener on the pick path costs about as much as the pick itself, so
 * the channel object's own `subscribe`/`unsubscribe` are wrapped (`diagnostics_channel.subscribe()`
 * calls them too). Only the `loadwise:*` channels are touched; the wrappers defer to the current
 * prototype's methods (Node swaps the prototype as a channel becomes active), and a second copy
 * of loadwise in the process shares the same wrappers through a registered symbol.
 */
function watchSubscriptions(ch: diagnosticsChannel.Channel, onChange: () => void): void {
  const holder = ch as unknown as Record<PropertyKey, unknown>;
  let watchers = holder[WATCHERS] as Set<() => void> | undefined;
  if (watchers === undefined) {
    const set = new Set<() => void>();
    watchers = set;
    Object.defineProperty(ch, WATCHERS, { value: set });
    for (const method of ['subscribe', 'unsubscribe'] as const) {
      Object.defineProperty(ch, method, {
        configurable: true,
        writable: true,
        value(this: diagnosticsChannel.Channel, fn: diagnosticsChannel.ChannelListener): unknown {
          const proto = Object.getPrototypeOf(this) as Record<string, (f: unknown) => unknown>;
          const result = proto[method]!.call(this, fn);
          for (const w of set) w();
          return result;
        },
      });
    }
  }
  watchers.add(onChange);
}

for (const ch of Object.values(channels)) watchSubscriptions(ch, syncAll);

// ------------------------------------------------------------------ sources

function wirePool(pool: BackendPool): () => void {
  // Each listener still checks hasSubscribers before it builds the message.
  const onAcquire: PoolEvents['acquire'] = (e) => {
    if (channels.pick.hasSubscribers)
      channels.pick.publish({ pool, backend: e.backend, ctx: e.ctx } satisfies PoolPickMessage);
  };
  const onRelease: PoolEvents['release'] = (e) => {
    if (channels.release.hasSubscribers) {
      channels.release.publish({
        pool,
        backend: e.backend,
        outcome: e.outcome,
        latencyMs: e.latencyMs,
      } satisfies PoolReleaseMessage);
    }
  };
  const onState: PoolEvents['state'] = (e) => {
    if (channels.state.hasSubscribers)
      channels.state.publish({ pool, ...e } satisfies PoolStateMessage);
  };
  const onPanic: PoolEvents['panic'] = (e) => {
    if (channels.panic.hasSubscribers)
      channels.panic.publish({ pool, ...e } satisfies PoolPanicMessage);
  };
  const onSkew: PoolEvents['skew'] = (e) => {
    if (channels.skew.hasSubscribers)
      channels.skew.publish({ pool, ...e } satisfies PoolSkewMessage);
  };
  const onAdded: PoolEvents['added'] = (e) => {
    if (channels.added.hasSubscribers)
      channels.added.publish({ pool, backend: e.backend } satisfies PoolMembershipMessage);
  };
  const onRemoved: PoolEvents['removed'] = (e) => {
    if (channels.removed.hasSubscribers)
      channels.removed.publish({ pool, backend: e.backend } satisfies PoolMembershipMessage);
  };
  const onDrained: PoolEvents['drained'] = (e) => {
    if (channels.drained.hasSubscribers)
      channels.drained.publish({ pool, ...e } satisfies PoolDrainedMessage);
  };
  return follow([
    wire(
      channels.pick,
      () => pool.on('acquire', onAcquire),
      () => pool.off('acquire', onAcquire),
    ),
    wire(
      channels.release,
      () => pool.on('release', onRelease),
      () => pool.off('release', onRelease),
    ),
    wire(
      channels.state,
      () => pool.on('state', onState),
      () => pool.off('state', onState),
    ),
    wire(
      channels.panic,
      () => pool.on('panic', onPanic),
      () => pool.off('panic', onPanic),
    ),
    wire(
      channels.skew,
      () => pool.on('skew', onSkew),
      () => pool.off('skew', onSkew),
    ),
    wire(
      channels.added,
      () => pool.on('added', onAdded),
      () => pool.off('added', onAdded),
    ),
    wire(
      channels.removed,
      () => pool.on('removed', onRemoved),
      () => pool.off('removed', onRemoved),
    ),
    wire(
      channels.drained,
      () => pool.on('drained', onDrained),
      () => pool.off('drained', onDrained),
    ),
  ]);
}

function wireFetch(fetch: ObservableFetch): () => void {
  const { events } = fetch;
  const onAttempt = (e: FetchAttemptEvent): void => {
    if (channels.attempt.hasSubscribers)
      channels.attempt.publish({ fetch, ...e } satisfies FetchAttemptMessage);
  };
  const onRetry = (e: FetchRetryEvent): void => {
    if (channels.retry.hasSubscribers)
      channels.retry.publish({ fetch, ...e } satisfies FetchRetryMessage);
  };
  const onResponse = (e: FetchResponseEvent): void => {
    if (channels.response.hasSubscribers)
      channels.response.publish({ fetch, ...e } satisfies FetchResponseMessage);
  };
  const onFailure = (e: FetchFailureEvent): void => {
    if (channels.failure.hasSubscribers)
      channels.failure.publish({ fetch, ...e } satisfies FetchFailureMessage);
  };
  const onHedge = (e: FetchHedgeEvent): void => {
    if (channels.hedge.hasSubscribers)
      channels.hedge.publish({ fetch, ...e } satisfies FetchHedgeMessage);
  };
  // The fetch builds its event objects (and a Request) only while someone listens.
  return follow([
    wire(
      channels.attempt,
      () => events.on('attempt', onAttempt),
      () => events.off('attempt', onAttempt),
    ),
    wire(
      channels.retry,
      () => events.on('retry', onRetry),
      () => events.off('retry', onRetry),
    ),
    wire(
      channels.response,
      () => events.on('response', onResponse),
      () => events.off('response', onResponse),
    ),
    wire(
      channels.failure,
      () => events.on('failure', onFailure),
      () => events.off('failure', onFailure),
    ),
    wire(
      channels.hedge,
      () => events.on('hedge', onHedge),
      () => events.off('hedge', onHedge),
    ),
  ]);
}
