/**
 * Discovery from etcd: the backends registered under a key prefix, each under a lease, followed
 * by a range read and then a watch. `etcd3` is an optional peer dependency: this module only
 * imports its types, and loads it at run time in {@link EtcdDiscovery.connect}.
 */
import { Buffer } from 'node:buffer';
import type { IOptions as Etcd3Options } from 'etcd3';
import { EventEmitter } from 'eventemitter3';
import { backoffDelay } from '../backoff.js';
import { backgroundTimer, type Clock, systemClock, type TimerHandle } from '../clock.js';
import { BaseDiscovery } from '../discovery/base-discovery.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { DiscoveryError } from '../errors/discovery-error.js';
import { normalizeBackend } from '../pool/normalize.js';
import { defaultRandom, type Random } from '../random.js';
import type { BackendInit, BackendSpec } from '../types.js';
import {
  checkClock,
  checkFunction,
  checkOptions,
  checkRandom,
  checkString,
  hasMethods,
  isPlainObject,
  optDuration,
  optNumber,
} from '../validate.js';

// ------------------------------------------------------------------ the client, structurally

/** One key-value pair as etcd3 returns it (`IKeyValue`). */
export interface EtcdKeyValueLike {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
  /** The revision of the last change of this key (an int64 as a decimal string). */
  readonly mod_revision: string;
}

/** The answer of a range read (`IRangeResponse`). */
export interface EtcdRangeResponseLike {
  readonly header: { readonly revision: string };
  readonly kvs: readonly EtcdKeyValueLike[];
  /** Whether keys past `limit` remain. */
  readonly more: boolean;
}

/** etcd3's `MultiRangeBuilder`, as far as this source uses it. */
export interface EtcdRangeBuilderLike {
  prefix(value: string): EtcdRangeBuilderLike;
  inRange(range: { start: string | Buffer; end: string | Buffer }): EtcdRangeBuilderLike;
  revision(revision: string): EtcdRangeBuilderLike;
  limit(count: number): EtcdRangeBuilderLike;
  exec(): Promise<EtcdRangeResponseLike>;
}

/** One watch response (`IWatchResponse`). */
export interface EtcdWatchResponseLike {
  readonly header: { readonly revision: string };
  readonly events: readonly {
    readonly type: string;
    readonly kv: EtcdKeyValueLike;
  }[];
}

/** etcd3's `Watcher`, as far as this source uses it. */
export interface EtcdWatcherLike {
  on(event: 'connected', handler: (res: EtcdWatchResponseLike) => void): unknown;
  on(event: 'data', handler: (res: EtcdWatchResponseLike) => void): unknown;
  on(event: 'disconnected', handler: (error: Error) => void): unknown;
  on(event: 'error', handler: (error: Error) => void): unknown;
  removeAllListeners(): unknown;
  cancel(): Promise<void>;
}

/** etcd3's `WatchBuilder`, as far as this source uses it. */
export interface EtcdWatchBuilderLike {
  prefix(value: string): EtcdWatchBuilderLike;
  startRevision(revision: string): EtcdWatchBuilderLike;
  /** Creates the watcher and attaches it at once (listeners added now see every event). */
  watcher(): EtcdWatcherLike;
}

/**
 * The calls the source makes. An `Etcd3` client from the `etcd3` package fits (version 1.1 or
 * later); so does any client with the same call shapes.
 */
export interface EtcdClientLike {
  getAll(): EtcdRangeBuilderLike;
  watch(): EtcdWatchBuilderLike;
}

// ------------------------------------------------------------------ options and events

/** Turns one registered value into an endpoint; `undefined` leaves the key out silently. */
export type EtcdDecoder = (key: string, value: string) => BackendSpec | undefined;

/** Options of {@link EtcdDiscovery}. */
export interface EtcdDiscoveryOptions {
  /** The etcd client (an `Etcd3` from the `etcd3` package), owned by the caller. */
  client: EtcdClientLike;
  /**
   * The key prefix under which backends register, e.g. `services/api/`. Every key under it is
   * one endpoint; its value is decoded by `decode`.
   */
  prefix: string;
  /**
   * A short name for events and logs.
   * @default `etcd:${prefix}`
   */
  name?: string;
  /**
   * Turns a key and its value into an endpoint. The default takes a value that starts with `{`
   * as a JSON {@link BackendInit} (`{"url": "http://10.0.1.10:8080", "weight": 2, "zone": "a"}`)
   * and any other value as a URL. A value it cannot turn into a valid endpoint (or one for which
   * it throws) is refused with an `invalid-value` event; the other keys are not affected.
   * @default decodeEtcdEndpoint
   */
  decode?: EtcdDecoder;
  /**
   * Keys read per page of the initial range read (all pages at one revision).
   * @default 1000
   */
  pageSize?: number;
  /**
   * How long watch changes are gathered before the set is handed on, in ms, so that a burst of
   * registrations (a deploy, 5,000 keys at once) is reconciled once rather than once per key.
   * 0 hands it on after every watch response.
   * @default 50
   */
  coalesceMs?: number;
  /**
   * The first wait before re-watching (or re-reading) after a failure, in ms; it doubles on
   * each failure in a row, with full jitter, up to `maxRetryMs`.
   * @default 250
   */
  minRetryMs?: number;
  /**
   * The longest wait between two attempts, in ms.
   * @default 10000
   */
  maxRetryMs?: number;
  /**
   * How long one page of the range read may take before it counts as failed, in ms.
   * @default 10000
   */
  timeoutMs?: number;
  /** @default systemClock */
  clock?: Clock;
  /** For the jitter of retries. @default defaultRandom */
  random?: Random;
}

/** Options of {@link EtcdDiscovery.connect}. */
export interface EtcdConnectOptions extends Omit<EtcdDiscoveryOptions, 'client'> {
  /**
   * Where etcd is: `host:port` strings or URLs, as etcd3's `hosts` option takes them.
   * @default '127.0.0.1:2379'
   */
  hosts?: string | string[];
  /**
   * Further etcd3 options (credentials, auth, gRPC channel options such as keepalive).
   * @default {}
   */
  etcd?: Omit<Etcd3Options, 'hosts'>;
}

/** Why the source read the whole prefix again. */
export type EtcdResyncReason = 'start' | 'compacted' | 'canceled' | 'reset' | 'retry';

/** Events of {@link EtcdDiscovery}. None is named `error`: failures are reported, never thrown. */
export interface EtcdDiscoveryEvents {
  /** A range read of the whole prefix was applied. */
  listed: (e: {
    source: string;
    reason: EtcdResyncReason;
    /** The store revision the read was taken at. */
    revision: number;
    /** Keys with a valid endpoint. */
    count: number;
    /** Keys refused (see `invalid-value`). */
    invalid: number;
  }) => void;
  /** A watch (re)started: the first event it delivers has a revision >= `fromRevision`. */
  watching: (e: { source: string; fromRevision: number }) => void;
  /** One watch response was applied, events in revision order, none seen before. */
  changes: (e: {
    source: string;
    /** The lowest and highest revision of the applied events. */
    fromRevision: number;
    toRevision: number;
    puts: number;
    deletes: number;
    /** Events at or below the last applied revision, dropped (a replay after a reconnect). */
    skipped: number;
  }) => void;
  /** The watch broke (etcd down, a network fault); it resumes from `revision + 1`. */
  disconnected: (e: {
    source: string;
    error: unknown;
    revision: number;
    retryInMs: number;
  }) => void;
  /** The range read failed; it is tried again after `retryInMs`. */
  'list-failed': (e: { source: string; error: unknown; retryInMs: number }) => void;
  /** A registered value was refused: not a valid endpoint. Nothing else changes. */
  'invalid-value': (e: {
    source: string;
    key: string;
    value: string;
    revision: number;
    error: unknown;
  }) => void;
}

const OPTION_KEYS = [
  'client',
  'prefix',
  'name',
  'decode',
  'pageSize',
  'coalesceMs',
  'minRetryMs',
  'maxRetryMs',
  'timeoutMs',
  'clock',
  'random',
] as const;

/** The client of a source made by {@link EtcdDiscovery.connect}, closed with the source. */
const ownedClients = new WeakMap<object, { close(): void }>();

/**
 * The default {@link EtcdDecoder}: a value starting with `{` is a JSON {@link BackendInit}, any
 * other value a URL. Leading and trailing white space is ignored.
 * @throws {LoadBalancerConfigError} for JSON that does not parse or is not an object.
 */
export function decodeEtcdEndpoint(key: string, value: string): BackendSpec {
  const text = value.trim();
  if (!text.startsWith('{')) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new LoadBalancerConfigError(`value of ${key}`, text, 'JSON of a backend', { cause });
  }
  if (!isPlainObject(parsed)) {
    throw new LoadBalancerConfigError(`value of ${key}`, text, 'a JSON object { url, ... }');
  }
  return parsed as unknown as BackendInit;
}

// ------------------------------------------------------------------ the source

/**
 * The backends registered in etcd under a key prefix. The usual registration is one key per
 * backend instance, written under a lease the instance keeps alive
 * (`services/api/10.0.1.10:8080` → `http://10.0.1.10:8080`): when the instance dies its lease
 * expires, etcd deletes the key, and the backend drains out of the pool.
 *
 * How it follows the prefix:
 * - **Initial list:** a range read of the prefix (in pages of `pageSize`, all at one revision),
 *   handed on as one answer.
 * - **Watch:** from that revision + 1, applying puts and deletes in revision order. Changes are
 *   gathered for `coalesceMs` and handed on as the complete set (never as a delta).
 * - **Disconnects:** the watch resumes from the last applied revision + 1, so no event is missed
 *   and none is applied twice (an event at or below that revision is dropped). The resume
 *   revision comes from the events themselves, never from a response header: etcd's header
 *   revision can run ahead of the events still to be delivered (a created response, a catch-up
 *   batch), and resuming from it would skip them.
 * - **Compaction:** when etcd has compacted the history past the resume revision, it cancels the
 *   watch; the source reads the prefix again and hands on the fresh set, which the binding
 *   reconciles (vanished backends drain, new ones join). A store whose revision went backwards
 *   (restored from an old backup, or a new cluster at the same address) is read again likewise.
 * - **Bad values:** a value that is not a valid endpoint is refused with an `invalid-value`
 *   event; the other keys are not affected. (A key updated to a bad value leaves the set: the
 *   endpoint it named is no longer registered.)
 *
 * Attach it with `attachDiscovery`, which applies the safety rules of every source: removal
 * drains, an empty answer (every lease expired at once) keeps the last good set, and an answer
 * removing most backends at once waits to be confirmed.
 *
 * @example
 * ```ts
 * import { BackendPool, attachDiscovery } from 'loadwise';
 * import { EtcdDiscovery } from 'loadwise/etcd';
 *
 * const pool = new BackendPool({ slowStartMs: 30_000 });
 * const source = await EtcdDiscovery.connect({ hosts: ['10.0.0.5:2379'], prefix: 'services/api/' });
 * source.on('invalid-value', (e) => log.warn(`bad registration ${e.key}`, e.error));
 * const binding = attachDiscovery(pool, source);
 * await binding.ready({ timeoutMs: 10_000 });
 * ```
 */
export class EtcdDiscovery extends BaseDiscovery {
  /** The key prefix followed. */
  readonly prefix: string;
  readonly #client: EtcdClientLike;
  readonly #decode: EtcdDecoder;
  readonly #pageSize: number;
  readonly #coalesceMs: number;
  readonly #minRetryMs: number;
  readonly #maxRetryMs: number;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #events = new EventEmitter<EtcdDiscoveryEvents>();
  readonly #owned: { close(): void } | undefined;

  /** Valid endpoints by key. */
  #entries = new Map<string, BackendSpec>();
  /** The store revision through which {@link EtcdDiscovery.#entries} is complete. */
  #revision = 0;
  /** Bumped whenever a read or a watch is abandoned, so its late callbacks are ignored. */
  #generation = 0;
  #watcher: EtcdWatcherLike | undefined;
  #failures = 0;
  #retryTimer: TimerHandle | undefined;
  #publishTimer: TimerHandle | undefined;
  /** Whether the watch broke since the set was last handed on. */
  #interrupted = false;

  constructor(options: EtcdDiscoveryOptions) {
    if (!isPlainObject(options)) {
      throw new LoadBalancerConfigError('EtcdDiscoveryOptions', options, '{ client, prefix, ... }');
    }
    const o = checkOptions('EtcdDiscoveryOptions', options, OPTION_KEYS);
    const prefix = checkString('prefix', o.prefix);
    super(o.name === undefined ? `etcd:${prefix}` : checkString('name', o.name));
    if (!hasMethods(o.client, ['getAll', 'watch'])) {
      throw new LoadBalancerConfigError(
        'client',
        o.client,
        'an etcd client (new Etcd3() from the etcd3 package) with getAll() and watch()',
      );
    }
    this.#client = o.client;
    this.prefix = prefix;
    this.#decode =
      o.decode === undefined ? decodeEtcdEndpoint : checkFunction<EtcdDecoder>('decode', o.decode);
    this.#pageSize = optNumber('pageSize', o.pageSize, 1000, {
      min: 1,
      max: 1_000_000,
      integer: true,
    });
    this.#coalesceMs = optDuration('coalesceMs', o.coalesceMs, 50);
    this.#minRetryMs = optDuration('minRetryMs', o.minRetryMs, 250, { min: 0, minExclusive: true });
    this.#maxRetryMs = optDuration('maxRetryMs', o.maxRetryMs, 10_000, { min: this.#minRetryMs });
    this.#timeoutMs = optDuration('timeoutMs', o.timeoutMs, 10_000, { min: 0, minExclusive: true });
    this.#clock = o.clock === undefined ? systemClock : checkClock('clock', o.clock);
    this.#random = o.random === undefined ? defaultRandom : checkRandom('random', o.random);
    this.#owned = ownedClients.get(options);
  }

  /**
   * Opens an etcd client (loading `etcd3`) and returns a source that owns it: `close()` closes
   * the client too.
   * @throws {Error} when `etcd3` is not installed.
   */
  static async connect(options: EtcdConnectOptions): Promise<EtcdDiscovery> {
    if (!isPlainObject(options)) {
      throw new LoadBalancerConfigError('EtcdConnectOptions', options, '{ hosts?, prefix, ... }');
    }
    const { hosts, etcd, ...rest } = options;
    const hostList = hosts === undefined ? ['127.0.0.1:2379'] : hosts;
    if (
      !(typeof hostList === 'string' && hostList !== '') &&
      !(
        Array.isArray(hostList) &&
        hostList.length > 0 &&
        hostList.every((h) => typeof h === 'string' && h !== '')
      )
    ) {
      throw new LoadBalancerConfigError('hosts', hosts, 'a "host:port" string or an array of them');
    }
    if (etcd !== undefined && !isPlainObject(etcd)) {
      throw new LoadBalancerConfigError('etcd', etcd, 'an etcd3 options object');
    }
    let Etcd3: typeof import('etcd3').Etcd3;
    try {
      ({ Etcd3 } = await import('etcd3'));
    } catch (cause) {
      throw new Error(
        'EtcdDiscovery.connect needs the optional peer dependency etcd3: npm install etcd3',
        { cause },
      );
    }
    const client = new Etcd3({ ...etcd, hosts: hostList });
    const sourceOptions: EtcdDiscoveryOptions = { ...rest, client };
    ownedClients.set(sourceOptions, client);
    try {
      return new EtcdDiscovery(sourceOptions);
    } catch (error) {
      client.close();
      throw error;
    }
  }

  /** The store revision through which the current set is complete (0 before the first read). */
  get revision(): number {
    return this.#revision;
  }

  /** How many keys hold a valid endpoint now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether a watch is attached now (it may still be connecting). */
  get watching(): boolean {
    return this.#watcher !== undefined;
  }

  /** Adds a listener for one of the {@link EtcdDiscoveryEvents}. */
  on<E extends keyof EtcdDiscoveryEvents>(event: E, listener: EtcdDiscoveryEvents[E]): this {
    this.#events.on(event, listener as never);
    return this;
  }

  /** Removes a listener added with {@link EtcdDiscovery.on}. */
  off<E extends keyof EtcdDiscoveryEvents>(event: E, listener: EtcdDiscoveryEvents[E]): this {
    this.#events.off(event, listener as never);
    return this;
  }

  protected override onStart(): void {
    void this.#list('start');
  }

  protected override async onClose(): Promise<void> {
    this.#generation++;
    const cancelled = this.#dropWatcher();
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    if (this.#publishTimer !== undefined) this.#clock.clearTimeout(this.#publishTimer);
    this.#retryTimer = undefined;
    this.#publishTimer = undefined;
    this.#events.removeAllListeners();
    // etcd3 keeps reconnecting a watcher whose client closed under it (and so keeps the process
    // alive): let the cancel reach etcd before the client may close, for a second at most.
    let timer: TimerHandle | undefined;
    await Promise.race([
      cancelled,
      new Promise<void>((resolve) => {
        timer = backgroundTimer(this.#clock, resolve, 1000);
      }),
    ]);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    this.#owned?.close();
  }

  // ---------------------------------------------------------------- range read

  async #list(reason: EtcdResyncReason): Promise<void> {
    const generation = ++this.#generation;
    void this.#dropWatcher();
    let entries: Map<string, BackendSpec>;
    let invalid = 0;
    let revision: number;
    try {
      const read = await this.#readAll(generation);
      if (read === undefined) return;
      revision = read.revision;
      entries = new Map();
      for (const kv of read.kvs) {
        const spec = this.#decodeKv(kv, revision);
        if (spec === undefined) invalid++;
        else entries.set(spec.key, spec.spec);
      }
    } catch (error) {
      if (generation !== this.#generation || this.closed) return;
      const retryInMs = this.#nextDelay();
      this.#events.emit('list-failed', { source: this.name, error, retryInMs });
      this.publishError(error);
      this.#retry(() => this.#list(reason === 'start' ? 'start' : 'retry'), retryInMs);
      return;
    }
    if (generation !== this.#generation || this.closed) return;
    this.#failures = 0;
    this.#entries = entries;
    this.#revision = revision;
    this.#events.emit('listed', {
      source: this.name,
      reason,
      revision,
      count: entries.size,
      invalid,
    });
    this.#publishNow();
    this.#watch();
  }

  /** Every key of the prefix at one revision, page by page. */
  async #readAll(
    generation: number,
  ): Promise<{ revision: number; kvs: EtcdKeyValueLike[] } | undefined> {
    const kvs: EtcdKeyValueLike[] = [];
    const end = prefixEnd(this.prefix);
    let res = await this.#withTimeout(
      this.#client.getAll().prefix(this.prefix).limit(this.#pageSize).exec(),
    );
    const revision = parseRevision(res.header.revision);
    for (;;) {
      if (generation !== this.#generation || this.closed) return undefined;
      for (const kv of res.kvs) kvs.push(kv);
      const last = res.kvs.at(-1);
      if (!res.more || last === undefined) break;
      // The next page starts just after the last key read ("\0" appended), at the same revision,
      // so the pages form one consistent snapshot.
      const start = Buffer.alloc(last.key.length + 1);
      start.set(last.key);
      res = await this.#withTimeout(
        this.#client
          .getAll()
          .inRange({ start, end })
          .revision(String(revision))
          .limit(this.#pageSize)
          .exec(),
      );
    }
    return { revision, kvs };
  }

  #withTimeout<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = backgroundTimer(
        this.#clock,
        () => reject(new DiscoveryError('timeout', this.name, this.#timeoutMs)),
        this.#timeoutMs,
      );
      promise.then(
        (value) => {
          this.#clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          this.#clock.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  // ---------------------------------------------------------------- watch

  #watch(): void {
    if (this.closed) return;
    const generation = ++this.#generation;
    const fromRevision = this.#revision + 1;
    let watcher: EtcdWatcherLike;
    try {
      watcher = this.#client
        .watch()
        .prefix(this.prefix)
        .startRevision(String(fromRevision))
        .watcher();
    } catch (error) {
      this.#onDisconnect(generation, error);
      return;
    }
    this.#watcher = watcher;
    const current = (): boolean => generation === this.#generation && !this.closed;
    watcher.on('connected', (res) => {
      if (!current()) return;
      // The created response carries the store's current revision. Below ours, the store lost
      // history we saw (a restore from backup, another cluster at this address): the events a
      // resume would wait for may never come, so read everything again.
      if (parseRevision(res.header.revision) < this.#revision) {
        void this.#list('reset');
        return;
      }
      this.#failures = 0;
      this.#events.emit('watching', { source: this.name, fromRevision });
      if (this.#interrupted) {
        this.#interrupted = false;
        // The set may not have changed while the watch was down, but listeners were told the
        // source failed: tell them it answers again.
        this.#schedulePublish();
      }
    });
    watcher.on('data', (res) => {
      if (current()) this.#applyChanges(res);
    });
    watcher.on('disconnected', (error) => this.#onDisconnect(generation, error));
    watcher.on('error', (error) => {
      if (!current()) return;
      // etcd cancelled the watch: most often the history was compacted past our revision
      // (etcd 3.4 gives no reason then). Either way the watch cannot resume; read it all again.
      void this.#dropWatcher();
      void this.#cancelReason(error).then((reason) => {
        if (current()) void this.#list(reason);
      });
    });
  }

  #onDisconnect(generation: number, error: unknown): void {
    if (generation !== this.#generation || this.closed) return;
    this.#generation++;
    void this.#dropWatcher();
    this.#interrupted = true;
    const retryInMs = this.#nextDelay();
    this.#events.emit('disconnected', {
      source: this.name,
      error,
      revision: this.#revision,
      retryInMs,
    });
    this.publishError(error);
    this.#retry(() => this.#watch(), retryInMs);
  }

  /**
   * Tells compaction from other cancellations: a read at the resume revision fails with etcd's
   * "required revision has been compacted" exactly when the history is gone.
   */
  async #cancelReason(error: unknown): Promise<EtcdResyncReason> {
    if (isCompacted(error)) return 'compacted';
    try {
      await this.#withTimeout(
        this.#client
          .getAll()
          .prefix(this.prefix)
          .revision(String(this.#revision + 1))
          .limit(1)
          .exec(),
      );
      return 'canceled';
    } catch (probe) {
      return isCompacted(probe) ? 'compacted' : 'canceled';
    }
  }

  #applyChanges(res: EtcdWatchResponseLike): void {
    let from = 0;
    let to = 0;
    let puts = 0;
    let deletes = 0;
    let skipped = 0;
    for (const event of res.events) {
      const revision = parseRevision(event.kv.mod_revision);
      // Already applied (a resumed watch replaying what the read or an earlier response gave).
      if (revision <= this.#revision) {
        skipped++;
        continue;
      }
      if (from === 0) from = revision;
      to = Math.max(to, revision);
      const key = decodeUtf8(event.kv.key);
      if (event.type === 'Delete') {
        deletes++;
        this.#entries.delete(key);
      } else {
        puts++;
        const spec = this.#decodeKv(event.kv, revision);
        if (spec === undefined) this.#entries.delete(key);
        else this.#entries.set(key, spec.spec);
      }
    }
    // Every event of one revision comes in one response (etcd's watch guarantee; fragments are
    // not requested), so the set is complete through the highest revision seen.
    this.#revision = Math.max(this.#revision, to);
    if (puts + deletes + skipped === 0) return;
    this.#events.emit('changes', {
      source: this.name,
      fromRevision: from,
      toRevision: to,
      puts,
      deletes,
      skipped,
    });
    if (puts + deletes > 0) this.#schedulePublish();
  }

  // ---------------------------------------------------------------- helpers

  #decodeKv(
    kv: EtcdKeyValueLike,
    revision: number,
  ): { key: string; spec: BackendSpec } | undefined {
    const key = decodeUtf8(kv.key);
    const value = decodeUtf8(kv.value);
    try {
      const spec = this.#decode(key, value);
      if (spec === undefined) return undefined;
      // Checked here, once per change, so a bad value is reported once with its key (the
      // binding checks the set again, with its address policy, on every answer).
      normalizeBackend(spec, `value of ${key}`);
      return { key, spec };
    } catch (error) {
      this.#events.emit('invalid-value', { source: this.name, key, value, revision, error });
      return undefined;
    }
  }

  /** Detaches the current watcher and asks etcd to cancel it; resolves once that is done. */
  #dropWatcher(): Promise<void> {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (watcher === undefined) return Promise.resolve();
    watcher.removeAllListeners();
    // etcd3 emits "error" on a watcher with no listener as an uncaught error; keep one.
    watcher.on('error', noop);
    // Cancelling is best effort: a watcher whose stream is gone is dropped by the client.
    return watcher.cancel().catch(noop);
  }

  #schedulePublish(): void {
    if (this.#coalesceMs === 0) {
      this.#publishNow();
      return;
    }
    if (this.#publishTimer !== undefined) return;
    this.#publishTimer = backgroundTimer(
      this.#clock,
      () => {
        this.#publishTimer = undefined;
        this.#publishNow();
      },
      this.#coalesceMs,
    );
  }

  #publishNow(): void {
    if (this.#publishTimer !== undefined) {
      this.#clock.clearTimeout(this.#publishTimer);
      this.#publishTimer = undefined;
    }
    this.publish([...this.#entries.values()]);
  }

  #nextDelay(): number {
    this.#failures++;
    // Full jitter, never below the floor.
    const delay = backoffDelay(this.#failures, this.#minRetryMs, this.#maxRetryMs, this.#random);
    return Math.max(this.#minRetryMs, delay);
  }

  #retry(fn: () => void, ms: number): void {
    if (this.#retryTimer !== undefined) this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = backgroundTimer(
      this.#clock,
      () => {
        this.#retryTimer = undefined;
        if (!this.closed) fn();
      },
      ms,
    );
  }
}

function noop(): void {}

/** Whether etcd refused for compaction ("required revision has been compacted"). */
function isCompacted(error: unknown): boolean {
  return /compact/i.test(String((error as { message?: unknown } | null)?.message ?? ''));
}

const utf8 = new TextDecoder();

function decodeUtf8(bytes: Uint8Array | string): string {
  return typeof bytes === 'string' ? bytes : utf8.decode(bytes);
}

function parseRevision(value: string | number): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new LoadBalancerConfigError('revision', value, 'an etcd revision (an integer >= 0)');
  }
  return n;
}

/**
 * The end of the key range of a prefix: the prefix with its last byte below 0xff incremented
 * and what follows dropped (etcd's `clientv3.GetPrefixRangeEnd`); "\0" for a prefix of only 0xff
 * bytes, which etcd reads as "to the end of the key space".
 */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = bytes.slice(0, i + 1);
      end[i] = bytes[i]! + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}
