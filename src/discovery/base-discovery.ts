import '../disposable.js';
import { PoolClosedError } from '../errors/pool-closed-error.js';
import type { BackendSpec } from '../types.js';
import { checkFunction, checkString } from '../validate.js';
import type { Discovery, DiscoveryAnswer, DiscoveryListener } from './types.js';

/**
 * The plumbing every {@link Discovery} source shares: listeners, the last good answer handed to
 * late subscribers, and an idempotent lifecycle. A push-based source (a Kubernetes watch, a
 * Consul blocking query, an etcd watch) extends it and calls {@link BaseDiscovery.publish} with
 * the complete set whenever it changes.
 *
 * @example
 * ```ts
 * class WatchDiscovery extends BaseDiscovery {
 *   #stop?: () => void;
 *   constructor(private readonly watch: Watcher) { super('registry-watch'); }
 *   protected override onStart(): void {
 *     this.#stop = this.watch.onChange(
 *       (urls) => this.publish(urls),
 *       (error) => this.publishError(error),
 *     );
 *   }
 *   protected override onClose(): void { this.#stop?.(); }
 * }
 * ```
 */
export abstract class BaseDiscovery implements Discovery {
  readonly name: string;
  readonly #listeners = new Set<DiscoveryListener>();
  #lastGood: DiscoveryAnswer | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** @param name A short name for events and logs. */
  constructor(name: string) {
    this.name = checkString('name', name);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether `start()` was called. */
  get started(): boolean {
    return this.#started;
  }

  /** The endpoints of the last successful answer, if there was one. */
  get lastEndpoints(): readonly BackendSpec[] | undefined {
    return this.#lastGood?.ok === true ? this.#lastGood.endpoints : undefined;
  }

  subscribe(listener: DiscoveryListener): () => void {
    checkFunction<DiscoveryListener>('listener', listener);
    if (this.#closed) return noop;
    this.#listeners.add(listener);
    if (this.#lastGood !== undefined) deliver(listener, this.#lastGood);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Begins producing answers (calls {@link BaseDiscovery.onStart} once). */
  start(): void {
    if (this.#closed) throw new PoolClosedError(`discovery source ${this.name}`);
    if (this.#started) return;
    this.#started = true;
    this.onStart();
  }

  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#listeners.clear();
    this.#closing = Promise.resolve().then(() => this.onClose());
    return this.#closing;
  }

  /** Same as {@link BaseDiscovery.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Hands the complete current set of endpoints to every listener. Ignored after close. An empty
   * set is handed on (the binding reports it) but is not kept as the last good answer.
   */
  protected publish(endpoints: readonly BackendSpec[]): void {
    if (this.#closed) return;
    const answer: DiscoveryAnswer = { ok: true, endpoints: Object.freeze([...endpoints]) };
    if (endpoints.length > 0) this.#lastGood = answer;
    for (const listener of [...this.#listeners]) deliver(listener, answer);
  }

  /** Tells every listener that the source could not answer. Ignored after close. */
  protected publishError(error: unknown): void {
    if (this.#closed) return;
    const answer: DiscoveryAnswer = { ok: false, error };
    for (const listener of [...this.#listeners]) deliver(listener, answer);
  }

  /** Called once by the first `start()`. */
  protected onStart(): void {}

  /** Called once by the first `close()`: stop timers, watches and requests here. */
  protected onClose(): void | Promise<void> {}
}

function noop(): void {}

/**
 * Calls one listener. A listener that throws has a bug of its own; its error must not stop the
 * other listeners nor break the source's refresh loop, so it is rethrown on a fresh stack, where
 * the host reports it as an uncaught exception (as a throwing event listener would be).
 */
function deliver(listener: DiscoveryListener, answer: DiscoveryAnswer): void {
  try {
    listener(answer);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
