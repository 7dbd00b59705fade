import '../disposable.js';
import { EventEmitter } from 'eventemitter3';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { BackendPool, DrainResult } from '../pool/backend-pool.js';
import { type NormalizedBackend, normalizeBackend } from '../pool/normalize.js';
import { redactUrl } from '../redact.js';
import type { BackendInit, BackendSpec, BackendView } from '../types.js';
import {
  checkBoolean,
  checkDuration,
  checkOptions,
  hasMethods,
  isPlainObject,
  optDuration,
  optNumber,
} from '../validate.js';
import { AddressPolicy, type AddressPolicyOptions } from './address-policy.js';
import type { Discovery, DiscoveryAnswer } from './types.js';

/** Options of {@link attachDiscovery} and {@link DiscoveryBinding}. */
export interface DiscoveryBindingOptions {
  /**
   * The largest share of the discovered backends one answer may remove at once. An answer that
   * would remove more is held back and applied only when the next answer says the same (the
   * same set of endpoints seen twice in a row), so one bad answer from a registry in trouble
   * cannot wipe out most of the pool. 1 turns the guard off; 0 holds back every removal once.
   *
   * The risk is the one Envoy's service-discovery design names ("On eventually consistent
   * service discovery"): a registry's view can be briefly and badly wrong, so its removals are
   * not trusted blindly.
   * @default 0.5
   */
  maxRemovalShare?: number;
  /**
   * How long a vanished endpoint may finish its calls in flight before it is forgotten, in ms.
   * @default the pool's `drainGraceMs`
   */
  drainGraceMs?: number;
  /**
   * Set when a health checker watches the pool: new endpoints join marked unhealthy ("awaiting
   * first health check") and take traffic only once a probe passes. Without it they take
   * traffic at once (in slow start when the pool has `slowStartMs`). A `HealthChecker` with
   * `initialState: 'unknown'` does the same by itself; this option serves other checkers (the
   * pool then needs the checker's `healthyThreshold` passes to let the backend in).
   * @default false
   */
  awaitHealthCheck?: boolean;
  /**
   * Treat the backends the pool already holds as discovered ones: they are removed when an
   * answer no longer lists them. By default they are left alone unless an answer lists them
   * (then they are adopted).
   * @default false
   */
  manageExisting?: boolean;
  /**
   * Close the source when the binding closes (and when the pool closes).
   * @default true
   */
  closeSource?: boolean;
  /**
   * Which endpoint addresses may become backends, whatever the source (static list, DNS, a
   * registry). Port 0, the unspecified addresses (`0.0.0.0`, `::`) and 255.255.255.255 are
   * always refused; beyond that, `deny` refuses categories and CIDR ranges and `allow`, when
   * given, admits only what it lists. A refused endpoint is left out and reported as an
   * `invalid-endpoint` event with the reason. Pass `{ deny: [] }` to refuse only what is always
   * refused.
   * @default { deny: ['metadata', 'link-local', 'multicast'] }
   * @example { deny: ['metadata', 'link-local', 'multicast', 'loopback'], allow: ['10.20.0.0/16'] }
   */
  addressPolicy?: AddressPolicyOptions | AddressPolicy;
}

/** Events of a {@link DiscoveryBinding}. None is named `error`: nothing here throws. */
export interface DiscoveryEvents {
  /** An answer was applied (emitted for every applied answer, even one that changed nothing). */
  applied: (e: {
    source: string;
    /** Ids that joined the pool. */
    added: readonly string[];
    /** Ids that left the answer and started draining. */
    removing: readonly string[];
    /** Ids whose weight changed in place. */
    updated: readonly string[];
    /** Ids whose URL, zone, priority or metadata changed, re-added with fresh statistics. */
    replaced: readonly string[];
    /** Discovered backends in the pool now (draining ones not counted). */
    total: number;
  }) => void;
  /** A vanished endpoint finished draining (or ran out of grace) and left the pool. */
  removed: (e: { source: string; id: string; completed: boolean; remaining: number }) => void;
  /** The source could not answer; the pool keeps its last good set. */
  'refresh-failed': (e: {
    source: string;
    error: unknown;
    consecutiveFailures: number;
    /** Discovered backends kept. */
    kept: number;
  }) => void;
  /** The source answered with no (valid) endpoint; the pool keeps its last good set. */
  'empty-answer': (e: { source: string; invalid: number; kept: number }) => void;
  /** An answer would have removed too many backends at once and waits to be confirmed. */
  'held-back': (e: {
    source: string;
    /** The ids it would remove. */
    removals: readonly string[];
    /** Their share of the discovered backends. */
    share: number;
    maxRemovalShare: number;
    kept: number;
  }) => void;
  /**
   * One endpoint of an answer was malformed or refused by the address policy and was left out;
   * the rest was used.
   */
  'invalid-endpoint': (e: {
    source: string;
    /** The endpoint as the source gave it, with any credentials in its URL redacted. */
    endpoint: unknown;
    /** A `LoadBalancerConfigError` naming the endpoint's field. */
    error: unknown;
    /** Why it was left out, in words (the address policy's reason, or the error's message). */
    reason: string;
  }) => void;
  /** The pool refused a change (for example, it closed meanwhile). */
  'apply-failed': (e: {
    source: string;
    id: string;
    operation: 'add' | 'remove' | 'update';
    error: unknown;
  }) => void;
}

const BINDING_KEYS = [
  'maxRemovalShare',
  'drainGraceMs',
  'awaitHealthCheck',
  'manageExisting',
  'closeSource',
  'addressPolicy',
] as const;

/** The reason given to the pool for endpoints that wait for their first probe. */
export const AWAITING_HEALTH_CHECK = 'awaiting first health check';

/**
 * Keeps a pool's backends in line with a {@link Discovery} source, through the pool's public API
 * only. For each answer:
 * - new endpoints are added (`pool.add`): in slow start when the pool has `slowStartMs`, and
 *   marked unhealthy until a probe passes with `awaitHealthCheck`;
 * - vanished endpoints are drained, not cut (`pool.remove(id, { drain: true })`): calls in
 *   flight finish, then the backend leaves; one that comes back meanwhile rejoins after;
 * - endpoints that stay keep their state and statistics; a new weight is applied in place
 *   (`pool.setWeight`); a new URL, zone, priority or metadata replaces the backend.
 *
 * Safety: an empty or failed answer never empties the pool (the last good set stays and an
 * event says why); an answer removing more than `maxRemovalShare` of the discovered backends
 * waits until it is seen twice in a row. Nothing is thrown into callers: trouble is reported
 * as events.
 *
 * Construct it to add event listeners before the first answer, then call `start()`; or use
 * {@link attachDiscovery}, which does both.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({ slowStartMs: 30_000 });
 * const binding = new DiscoveryBinding(pool, new DnsDiscovery({ hostname: 'api.internal', port: 8080 }));
 * binding.on('refresh-failed', (e) => log.warn(`discovery ${e.source} failed`, e.error));
 * binding.on('held-back', (e) => log.warn(`held back removal of ${e.removals.length} backends`));
 * binding.start();
 * await binding.ready({ timeoutMs: 10_000 });
 * ```
 */
export class DiscoveryBinding extends EventEmitter<DiscoveryEvents> {
  /** The pool this binding keeps up to date. */
  readonly pool: BackendPool;
  /** The source of endpoints. */
  readonly source: Discovery;
  readonly #maxRemovalShare: number;
  readonly #drainGraceMs: number | undefined;
  readonly #awaitHealthCheck: boolean;
  readonly #closeSource: boolean;
  readonly #addressPolicy: AddressPolicy;
  /** Ids this binding added or adopted, still in the pool and not being removed. */
  readonly #managed = new Set<string>();
  /** Ids draining on their way out, with the removal in progress. */
  readonly #removing = new Map<string, Promise<void>>();
  /** The endpoints of the last applied answer, by id. */
  #desired = new Map<string, NormalizedBackend>();
  /** The id set of an answer held back by the removal guard. */
  #held: string | undefined;
  #failures = 0;
  #applied = 0;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #readyWaiters: Array<(applied: boolean) => void> = [];
  readonly #onPoolClose = (): void => {
    void this.close();
  };

  constructor(pool: BackendPool, source: Discovery, options: DiscoveryBindingOptions = {}) {
    super();
    checkPool(pool);
    checkSource(source);
    const o = checkOptions('DiscoveryBindingOptions', options, BINDING_KEYS);
    this.pool = pool;
    this.source = source;
    this.#maxRemovalShare = optNumber('maxRemovalShare', o.maxRemovalShare, 0.5, {
      min: 0,
      max: 1,
    });
    this.#drainGraceMs =
      o.drainGraceMs === undefined
        ? undefined
        : optDuration('drainGraceMs', o.drainGraceMs, 0, { min: 0 });
    this.#awaitHealthCheck =
      o.awaitHealthCheck === undefined
        ? false
        : checkBoolean('awaitHealthCheck', o.awaitHealthCheck);
    this.#closeSource =
      o.closeSource === undefined ? true : checkBoolean('closeSource', o.closeSource);
    this.#addressPolicy =
      o.addressPolicy instanceof AddressPolicy
        ? o.addressPolicy
        : new AddressPolicy(o.addressPolicy, 'addressPolicy');
    const manageExisting =
      o.manageExisting === undefined ? false : checkBoolean('manageExisting', o.manageExisting);
    if (manageExisting) for (const b of pool.backends()) this.#managed.add(b.id);
  }

  /**
   * Subscribes to the source and starts it. An answer the source already has is applied before
   * this returns (a {@link StaticDiscovery} fills the pool at once). Idempotent.
   */
  start(): this {
    if (this.#closed) return this;
    if (this.#started) return this;
    this.#started = true;
    if (this.pool.closed) {
      void this.close();
      return this;
    }
    this.pool.once('close', this.#onPoolClose);
    this.#unsubscribe = this.source.subscribe((answer) => this.#onAnswer(answer));
    this.source.start();
    return this;
  }

  /**
   * Resolves `true` once an answer has been applied, or `false` if the binding closes first or
   * `timeoutMs` (on the pool's clock) runs out. It never rejects.
   *
   * Give a `timeoutMs` wherever nothing else keeps the process alive (a script, a CLI, start-up
   * before a server listens): the source's retry timers are unref'd, so without one a
   * process whose only task is this wait exits (Node: exit code 13, "unsettled top-level
   * await") while the source is still failing. The timeout's timer is not unref'd: it holds the
   * process up until the answer or the timeout, then is cleared.
   *
   * @example
   * ```ts
   * if (!(await binding.ready({ timeoutMs: 10_000 }))) {
   *   throw new Error(`no answer from ${binding.source.name} within 10 s`);
   * }
   * ```
   */
  ready(options: { timeoutMs?: number } = {}): Promise<boolean> {
    const o = checkOptions('ready options', options, ['timeoutMs']);
    const timeoutMs =
      o.timeoutMs === undefined ? undefined : checkDuration('timeoutMs', o.timeoutMs, { min: 0 });
    if (this.#applied > 0) return Promise.resolve(true);
    if (this.#closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      if (timeoutMs === undefined) {
        this.#readyWaiters.push(resolve);
        return;
      }
      const clock = this.pool.clock;
      const waiter = (applied: boolean): void => {
        clock.clearTimeout(timer);
        resolve(applied);
      };
      // A caller waits on this one: it keeps a real process alive, unlike background timers.
      const timer = clock.setTimeout(() => {
        const i = this.#readyWaiters.indexOf(waiter);
        if (i >= 0) this.#readyWaiters.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      this.#readyWaiters.push(waiter);
    });
  }

  /** Asks the source for a fresh answer when it can fetch one on demand. Never rejects. */
  refresh(): Promise<void> {
    if (this.#closed || !this.#started || this.source.refresh === undefined)
      return Promise.resolve();
    return this.source.refresh().catch((error: unknown) => {
      this.#onAnswer({ ok: false, error });
    });
  }

  /** Resolves once every removal started so far has finished draining. */
  async settled(): Promise<void> {
    while (this.#removing.size > 0) await Promise.all([...this.#removing.values()]);
  }

  /** Ids of the backends this binding manages (in the pool, not being removed). */
  managed(): readonly string[] {
    return [...this.#managed];
  }

  /** Ids being drained on their way out. */
  removing(): readonly string[] {
    return [...this.#removing.keys()];
  }

  /** Whether an answer is held back by the removal guard, waiting to be confirmed. */
  get holding(): boolean {
    return this.#held !== undefined;
  }

  /** Failed answers in a row (0 after a good one). */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Answers applied so far. */
  get appliedCount(): number {
    return this.#applied;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops following the source (and closes it, unless `closeSource: false`). Backends stay in
   * the pool as they are; drains already started finish. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.pool.off('close', this.#onPoolClose);
    for (const resolve of this.#readyWaiters.splice(0)) resolve(false);
    this.#closing = this.#closeSource ? this.source.close() : Promise.resolve();
    return this.#closing;
  }

  /** Same as {@link DiscoveryBinding.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- answers

  #onAnswer(answer: DiscoveryAnswer): void {
    if (this.#closed || this.pool.closed) return;
    if (!answer.ok) {
      this.#failures++;
      this.emit('refresh-failed', {
        source: this.source.name,
        error: answer.error,
        consecutiveFailures: this.#failures,
        kept: this.#liveManagedCount(),
      });
      return;
    }
    this.#failures = 0;
    const { next, invalid } = this.#validate(answer.endpoints);
    if (next.size === 0) {
      this.emit('empty-answer', {
        source: this.source.name,
        invalid,
        kept: this.#liveManagedCount(),
      });
      return;
    }
    this.#apply(next);
  }

  #validate(endpoints: readonly BackendSpec[]): {
    next: Map<string, NormalizedBackend>;
    invalid: number;
  } {
    const next = new Map<string, NormalizedBackend>();
    let invalid = 0;
    endpoints.forEach((endpoint, i) => {
      const field = `${this.source.name} endpoints[${i}]`;
      let n: NormalizedBackend;
      try {
        n = normalizeBackend(endpoint, field);
      } catch (error) {
        invalid++;
        const reason = error instanceof Error ? error.message : String(error);
        this.emit('invalid-endpoint', {
          source: this.source.name,
          endpoint: redactEndpoint(endpoint),
          error,
          reason,
        });
        return;
      }
      const reason = this.#addressPolicy.check(n.url);
      if (reason !== undefined) {
        invalid++;
        const error = new LoadBalancerConfigError(
          `${field}.url`,
          n.url,
          `an address the address policy admits (${reason})`,
        );
        this.emit('invalid-endpoint', {
          source: this.source.name,
          endpoint: redactEndpoint(endpoint),
          error,
          reason,
        });
        return;
      }
      // The first of two entries with one id wins; sources list their preferred one first.
      if (!next.has(n.id)) next.set(n.id, n);
    });
    return { next, invalid };
  }

  #apply(next: Map<string, NormalizedBackend>): void {
    const pool = this.pool;
    // Backends removed behind our back (pool.remove by the user) are no longer ours to count.
    for (const id of this.#managed) if (!pool.has(id)) this.#managed.delete(id);
    const removals = [...this.#managed].filter((id) => !next.has(id));
    const base = this.#managed.size;
    const share = base === 0 ? 0 : removals.length / base;
    if (share > this.#maxRemovalShare) {
      const fingerprint = [...next.keys()].sort().join('\n');
      if (this.#held !== fingerprint) {
        this.#held = fingerprint;
        this.emit('held-back', {
          source: this.source.name,
          removals,
          share,
          maxRemovalShare: this.#maxRemovalShare,
          kept: base,
        });
        return;
      }
    }
    this.#held = undefined;
    this.#desired = next;

    const added: string[] = [];
    const updated: string[] = [];
    const replaced: string[] = [];
    for (const id of removals) this.#startRemoval(id);
    for (const [id, n] of next) {
      // Still draining from an earlier answer: it rejoins once the drain is over.
      if (this.#removing.has(id)) continue;
      const current = pool.get(id);
      if (current === undefined) {
        if (this.#add(n)) added.push(id);
        continue;
      }
      this.#managed.add(id);
      if (!sameIdentity(current, n)) {
        if (this.#replace(n)) replaced.push(id);
      } else if (current.weight !== n.weight) {
        try {
          pool.setWeight(id, n.weight);
          updated.push(id);
        } catch (error) {
          this.emit('apply-failed', { source: this.source.name, id, operation: 'update', error });
        }
      }
    }
    this.#applied++;
    for (const resolve of this.#readyWaiters.splice(0)) resolve(true);
    this.emit('applied', {
      source: this.source.name,
      added,
      removing: removals,
      updated,
      replaced,
      total: this.#liveManagedCount(),
    });
  }

  #add(n: NormalizedBackend): boolean {
    try {
      this.pool.add(toInit(n));
      this.#managed.add(n.id);
      if (this.#awaitHealthCheck) this.pool.setHealthy(n.id, false, AWAITING_HEALTH_CHECK);
      return true;
    } catch (error) {
      this.emit('apply-failed', { source: this.source.name, id: n.id, operation: 'add', error });
      return false;
    }
  }

  /**
   * The pool keeps URL, zone, priority and metadata fixed for a backend's life, so a change there
   * makes a new backend under the same id. The old one is forgotten at once (its calls in flight
   * still finish and release harmlessly); the id cannot be shared with a draining twin.
   */
  #replace(n: NormalizedBackend): boolean {
    this.#managed.delete(n.id);
    const removal = this.pool.remove(n.id, { drain: false });
    const fail = (error: unknown): void => {
      this.emit('apply-failed', { source: this.source.name, id: n.id, operation: 'remove', error });
    };
    // Without draining, the pool forgets the backend before remove() returns; should it not,
    // the new one joins when the removal settles.
    if (!this.pool.has(n.id)) {
      removal.catch(fail);
      return this.#add(n);
    }
    removal.then(() => {
      if (!this.#closed && !this.pool.closed && !this.pool.has(n.id)) this.#add(n);
    }, fail);
    return true;
  }

  #startRemoval(id: string): void {
    this.#managed.delete(id);
    const options = this.#drainGraceMs === undefined ? {} : { graceMs: this.#drainGraceMs };
    const removal = this.pool
      .remove(id, { drain: true, ...options })
      .then(
        (result: DrainResult) => {
          this.emit('removed', {
            source: this.source.name,
            id,
            completed: result.completed,
            remaining: result.remaining,
          });
        },
        (error: unknown) => {
          if (this.pool.has(id))
            this.emit('apply-failed', { source: this.source.name, id, operation: 'remove', error });
        },
      )
      .then(() => {
        this.#removing.delete(id);
        // Back in the latest answer while it drained: it joins again as a new backend.
        const wanted = this.#desired.get(id);
        if (wanted !== undefined && !this.#closed && !this.pool.closed && !this.pool.has(id))
          this.#add(wanted);
      });
    this.#removing.set(id, removal);
  }

  #liveManagedCount(): number {
    let n = 0;
    for (const id of this.#managed) if (this.pool.has(id)) n++;
    return n;
  }
}

/**
 * Keeps `pool` in line with `source` and starts at once: the usual way to use discovery. See
 * {@link DiscoveryBinding} for the rules; construct that class directly to add listeners before
 * the first answer.
 *
 * @example
 * ```ts
 * import { BackendPool, StaticDiscovery, attachDiscovery } from 'loadwise';
 * import { DnsSrvDiscovery } from 'loadwise/node';
 *
 * const pool = new BackendPool({ slowStartMs: 30_000 });
 * const binding = attachDiscovery(pool, new DnsSrvDiscovery({ service: '_http._tcp.api.internal' }));
 * await binding.ready({ timeoutMs: 10_000 });
 * // ... pool.acquire() as usual; close the pool (or the binding) to stop refreshing.
 * ```
 */
export function attachDiscovery(
  pool: BackendPool,
  source: Discovery,
  options: DiscoveryBindingOptions = {},
): DiscoveryBinding {
  return new DiscoveryBinding(pool, source, options).start();
}

function toInit(n: NormalizedBackend): BackendInit {
  const init: BackendInit = {
    url: n.url,
    id: n.id,
    weight: n.weight,
    priority: n.priority,
    metadata: n.metadata,
  };
  if (n.zone !== undefined) init.zone = n.zone;
  return init;
}

/** The endpoint for an event: its URL never shows credentials (events end up in logs). */
function redactEndpoint(endpoint: unknown): unknown {
  if (typeof endpoint === 'string') return redactUrl(endpoint);
  if (isPlainObject(endpoint) && typeof endpoint['url'] === 'string')
    return { ...endpoint, url: redactUrl(endpoint['url']) };
  return endpoint;
}

function sameIdentity(current: BackendView, n: NormalizedBackend): boolean {
  if (current.url !== n.url || current.zone !== n.zone || current.priority !== n.priority)
    return false;
  const a = current.metadata;
  const b = n.metadata;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && Object.is(a[k], b[k]));
}

function checkPool(pool: unknown): void {
  if (!hasMethods(pool, ['add', 'remove', 'setWeight', 'backends'])) {
    throw new LoadBalancerConfigError('pool', pool, 'a BackendPool');
  }
}

function checkSource(source: unknown): void {
  if (
    !hasMethods(source, ['subscribe', 'start', 'close']) ||
    typeof (source as { name?: unknown }).name !== 'string'
  ) {
    throw new LoadBalancerConfigError(
      'source',
      source,
      'a Discovery source { name, subscribe(), start(), close() } such as new StaticDiscovery([...])',
    );
  }
}
