/**
 * The transport-neutral loop of one balanced call: pick a backend, send an attempt through the
 * transport, classify how it went, retry or hedge under the budgets and the deadline, and release
 * every lease exactly once with its real outcome. The balanced fetch and the undici dispatcher
 * are thin adapters over it: they translate requests, responses and errors, nothing more.
 * @internal
 */
import { backoffDelay } from '../backoff.js';
import { backgroundTimer, type Clock, type TimerHandle } from '../clock.js';
import { AllAttemptsFailedError, type AttemptRecord } from '../errors/all-attempts-failed-error.js';
import { LocalFailureError } from '../errors/local-failure-error.js';
import { NoBackendAvailableError } from '../errors/no-backend-error.js';
import { TimeoutError } from '../errors/timeout-error.js';
import type { Random } from '../random.js';
import type { BackendView, FailureKind, Lease, LeaseOutcome, PickContext } from '../types.js';
import { Cancel } from './cancel.js';
import { localCode } from './error-codes.js';
import type { Hedging } from './hedging.js';
import { FinalFailure, type RetryLoop, retryAfterFirst } from './retry.js';
import type { RetryBudget } from './retry-budget.js';
import type { TimeoutEntry, TimeoutQueue } from './timeouts.js';

/** What a call balances over: a `BackendPool`, or a router's pool for this request. */
export interface CallTarget {
  acquire(ctx?: PickContext): Lease;
  /** The target's clock: when it is the call's, a lease's `acquiredAt` starts the attempt. */
  readonly clock?: Clock;
}

/** A client's configuration, shared by all its calls. */
export interface CallConfig {
  readonly clock: Clock;
  readonly random: Random;
  readonly retries: number;
  readonly retryOn: ReadonlySet<number>;
  readonly retryMethods: ReadonlySet<string>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly budget: RetryBudget | undefined;
  readonly hedging: Hedging | undefined;
  /** The per-attempt limit; `'auto'`: a share of the deadline for retryable requests. */
  readonly timeoutMs: number | 'auto' | undefined;
  readonly deadlineMs: number | undefined;
  /** Whether the deadline also bounds the response body (only when set explicitly). */
  readonly deadlineCoversBody: boolean;
  /** The attempts' time limits, on the client's clock. */
  readonly timeouts: TimeoutQueue;
}

/**
 * How the loop reaches one transport for one call, and the facts about the request its retry
 * rules need. `R` is the transport's response (a fetch `Response`, undici's response head).
 */
export interface CallTransport<R> {
  /** The request's method, upper-cased. */
  readonly method: string;
  /** Whether the request carries an idempotency key (so it may be repeated). */
  readonly idempotencyKey: boolean;
  /** Whether the request's body can be sent again (false for a one-shot stream). */
  readonly replayable: boolean;
  /** The caller's signal, when it has one. */
  readonly signal: AbortSignal | undefined;
  /**
   * Whether the adapter may give up on the call itself, through `call.abort(reason)` (the call
   * is its own token): the call then always has a token, even without a signal or a deadline.
   */
  readonly abortable?: boolean;
  /** The pick context of attempt `attempt`; may be a promise (an async hook). */
  pickContext(
    attempt: number,
    tried: readonly string[],
  ): PickContext | undefined | Promise<PickContext | undefined>;
  /**
   * Sends one attempt to `backend`; resolves when the response headers arrive. Should abort the
   * request when `cancel` aborts (the loop races it anyway, and discards a response that arrives
   * later); after delivery, an abort of `cancel` must cut the response body.
   */
  send(backend: BackendView, cancel: Cancel | undefined): Promise<R>;
  /**
   * Callback form of `send`, preferred when present (it saves a promise per attempt): tells
   * `listener` of the response headers or of the attempt's failure, once. Must settle when
   * `cancel` aborts.
   */
  sendThen?(backend: BackendView, cancel: Cancel | undefined, listener: AttemptListener<R>): void;
  status(response: R): number;
  /** `Retry-After` of a 429/503, in ms. */
  retryAfterMs(response: R): number | undefined;
  /** Throws a response away: cancels its body so the connection is freed. */
  discard(response: R): void;
  /**
   * Whether `send` always settles when its token aborts (so the loop need not race it). A fetch
   * implementation may ignore its signal; a transport of our own does not.
   */
  readonly honoursCancel?: boolean;
  /** How a thrown error failed, in the pool's terms (per transport and runtime). */
  classify(error: unknown): FailureKind;
  /** An attempt is about to be sent; a throw fails the call without blaming the backend. */
  onAttempt?(backend: BackendView, attempt: number, hedge: boolean): void;
  /** Response headers arrived; a throw fails the call. */
  onResponse?(backend: BackendView, attempt: number, status: number, latencyMs: number): void;
  /** An attempt failed without a response (`backend` undefined when none could be picked). */
  onFailure?(backend: BackendView | undefined, attempt: number, error: unknown): void;
  /** A retry follows after `delayMs`. */
  onRetry?(attempt: number, backend: BackendView, reason: string, delayMs: number): void;
  /** A hedge goes to `backend` because `slow` had not answered within `delayMs`. */
  onHedge?(backend: BackendView, slow: BackendView, attempt: number, delayMs: number): void;
}

/** Hears how one attempt sent with `sendThen` went: one of the two, once. */
export interface AttemptListener<R> {
  /** The response headers arrived. */
  responded(response: R): void;
  /** The attempt failed without a response. */
  failed(error: unknown): void;
}

/** Hears how a call started with {@link BalancedCall.start} came out: one of the two, once. */
export interface CallSink<R> {
  /** The response to deliver, its lease still held (report its body's end to `finish`). */
  deliver(held: Held<R>): void;
  /** The call's final error. */
  fail(error: unknown): void;
}

/** Per-call overrides (a router's route). */
export interface CallOverrides {
  retries?: number;
  timeoutMs?: number | 'auto' | undefined;
}

/** A response whose lease is still held, and everything needed to release it. */
export interface Held<R> {
  readonly response: R;
  readonly lease: Lease;
  readonly attempt: number;
  /** Clock reading when the lease was taken. */
  readonly start: number;
  readonly status: number;
  readonly ok: boolean;
  readonly headersMs: number;
  readonly retryAfterMs: number | undefined;
  /** The token the attempt was sent with (aborting it cuts the body). */
  readonly cancel: Cancel | undefined;
  /** The call's token the attempt's own token hangs from, to unlink when the body ends. */
  readonly parent: Cancel | undefined;
}

/** How the body of a delivered response ended. */
export type BodyEnd = 'end' | 'cancel' | 'error' | 'unread';

/** A failed attempt, as thrown into the retry loop. */
class AttemptFailure<R> extends Error {
  readonly kind: FailureKind;
  readonly error: unknown;
  readonly backend: BackendView;
  /** Set for a retryable status: the response, whose lease is still held. */
  readonly held: Held<R> | undefined;
  constructor(kind: FailureKind, error: unknown, backend: BackendView, held?: Held<R>) {
    super(`attempt failed: ${kind}`);
    this.kind = kind;
    this.error = error;
    this.backend = backend;
    this.held = held;
  }
}

/** A `BackendPool`'s lease, which can take a clock reading its holder already has. */
interface InternalLease extends Lease {
  releaseAt(outcome: LeaseOutcome, now: number): boolean;
}

/** Raised into a superseded attempt: another attempt of the call answered first. */
const SUPERSEDED = Object.freeze({ superseded: true });

const NONE: readonly never[] = Object.freeze([]);

/**
 * One attempt of a call, from before its pick to its release. One object serves every role an
 * attempt has: the state a hedge race shares with it, its own token (aborted by its timeout,
 * when superseded, or with the call's), the listener its transport reports to, and, once the
 * headers arrive, the {@link Held} response. Four objects and two closures did these jobs, and
 * they were the larger part of what a balanced call allocated on top of its transport.
 */
class AttemptRun<R> extends Cancel implements Held<R>, AttemptListener<R>, TimeoutEntry {
  readonly #call: BalancedCall<R>;
  readonly hedge: boolean;
  /** Whether the attempt may be superseded (so it needs a token of its own). */
  readonly racing: boolean;
  /** Where its response or failure goes; the call itself (its first attempt) when undefined. */
  readonly onHeld: ((held: Held<R>) => void) | undefined;
  readonly onFail: ((error: unknown) => void) | undefined;
  /** Set when another attempt of the call answered first. */
  superseded = false;
  /** Whether the transport reported (once: a second report is ignored). */
  reported = false;
  attempt = 0;
  /** Unset until the pick. */
  lease!: Lease;
  start = 0;
  /** The token the attempt is sent with: this one, or the call's. */
  cancel: Cancel | undefined = undefined;
  /** The call's token this one hangs from, while linked. */
  parent: Cancel | undefined = undefined;
  /** The attempt's time limit, while it runs (see {@link TimeoutQueue}). */
  timeoutMs = 0;
  dueAt = 0;
  prevDue: TimeoutEntry | undefined = undefined;
  nextDue: TimeoutEntry | undefined = undefined;
  queued = false;
  // The held response, once the headers arrived.
  response!: R;
  status = 0;
  headersMs = 0;
  retryAfterMs: number | undefined = undefined;

  constructor(
    call: BalancedCall<R>,
    hedge: boolean,
    racing: boolean,
    onHeld?: (held: Held<R>) => void,
    onFail?: (error: unknown) => void,
  ) {
    super();
    this.#call = call;
    this.hedge = hedge;
    this.racing = racing;
    this.onHeld = onHeld;
    this.onFail = onFail;
  }

  /** The backend, once picked. */
  get backend(): BackendView | undefined {
    return (this.lease as Lease | undefined)?.backend;
  }

  get ok(): boolean {
    return statusOk(this.status);
  }

  /** The attempt's time limit passed before its headers arrived. */
  expire(): void {
    this.abort(new TimeoutError('attempt', this.timeoutMs, { backend: this.backend!.id }));
  }

  /** Whether the attempt is sent with a token of its own. */
  get ownToken(): boolean {
    return this.cancel === this;
  }

  responded(response: R): void {
    if (this.reported) return;
    this.reported = true;
    this.#call.runResponded(this, response);
  }

  failed(error: unknown): void {
    if (this.reported) return;
    this.reported = true;
    this.#call.runFailed(this, error);
  }
}

/** One attempt in flight in a hedge race. */
interface Running<R> {
  readonly promise: Promise<Held<R>>;
  readonly run: AttemptRun<R>;
}

/** Aborts an attempt because another one answered; its lease is released as `cancelled`. */
function supersede<R>(r: Running<R>): void {
  const run = r.run;
  if (run.superseded) return;
  run.superseded = true;
  // Racing attempts are always sent with their own token.
  run.abort(SUPERSEDED);
}

/** Whether a rejection is a superseded (or never sent) hedge: nothing happened. */
function isSuperseded(error: unknown): boolean {
  return error instanceof FinalFailure && error.error === SUPERSEDED;
}

/** The reason an abort rejects with when the signal carries none. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Whether a response status counts as the backend's success (5xx and 429 do not). */
export function statusOk(status: number): boolean {
  return status < 500 && status !== 429;
}

/**
 * One balanced call. `run()` resolves with the response to deliver, its lease still held; the
 * adapter then reports how the body ended through `finish()`. Everything else (the pick, the
 * attempts, retries, hedges, timers, releases of failed or superseded attempts) happens here.
 *
 * The call is its own token (a {@link Cancel}), aborted by the caller (its signal, or the
 * adapter's `abort()`) or by the deadline. An adapter may extend the call and be its transport
 * and sink too (pass no transport): one object per call instead of three.
 */
export class BalancedCall<R> extends Cancel implements RetryLoop<Held<R>> {
  readonly #cfg: CallConfig;
  readonly #target: CallTarget;
  readonly #t: CallTransport<R>;
  readonly #retries: number;
  readonly #timeoutMs: number | 'auto' | undefined;
  #sink: CallSink<R> | undefined;

  /** The call's token (this call) when it needs one: a caller who can abort, or a deadline. */
  #callCancel: Cancel | undefined;
  #onCallerAbort: (() => void) | undefined;
  #deadlineTimer: TimerHandle | undefined;
  /**
   * Clock reading when the deadline falls, fixed at its first need (usually from the first
   * pick's reading, which saves a clock read); its timer is armed only when needed.
   */
  #deadlineAt: number | undefined;
  /** Whether the deadline applies (until the response is delivered, unless it covers bodies). */
  #deadlineLive = false;
  #deadlineFired = false;

  /** The first backend tried; the list of all is made when a second attempt begins. */
  #firstTried: string | undefined;
  #tried: string[] | undefined;
  #attempts: AttemptRecord[] | undefined;
  #attemptNo = 0;
  #hedged = false;
  #stoppedBecause = '';
  #ended = false;
  #retryableTimeout: boolean | undefined;

  /**
   * @param transport How to send attempts; omitted by a subclass that is its own transport.
   */
  constructor(
    cfg: CallConfig,
    target: CallTarget,
    transport?: CallTransport<R>,
    o?: CallOverrides,
  ) {
    super();
    this.#cfg = cfg;
    this.#target = target;
    this.#t = transport ?? (this as unknown as CallTransport<R>);
    this.#retries = o?.retries ?? cfg.retries;
    this.#timeoutMs = o !== undefined && 'timeoutMs' in o ? o.timeoutMs : cfg.timeoutMs;
  }

  /** Every attempt that did not deliver, in order. */
  get attempts(): readonly AttemptRecord[] {
    return this.#attempts ?? NONE;
  }

  #record(r: AttemptRecord): void {
    if (this.#attempts === undefined) this.#attempts = [r];
    else this.#attempts.push(r);
  }

  /** Runs the call to its first deliverable response; rejects with the call's final error. */
  run(): Promise<Held<R>> {
    return new Promise<Held<R>>((resolve, reject) =>
      this.start({ deliver: resolve, fail: reject }),
    );
  }

  /**
   * Callback form of {@link BalancedCall.run}: `sink` gets the response to deliver or the call's
   * final error, exactly once. A call whose first attempt answers goes through no promise but
   * the transport's own: the first attempt runs here, retries in the retry loop.
   */
  start(sink: CallSink<R>): void {
    this.#sink = sink;
    const caller = this.#t.signal;
    if (this.aborted || caller?.aborted === true) {
      sink.fail(this.aborted ? this.reason : abortReason(caller!));
      return;
    }
    this.#linkCaller();
    const delay = this.#hedgeDelay();
    if (delay !== undefined) {
      this.#race(this.#attempt(false, true, undefined, 0), delay).then(
        (held) => sink.deliver(held),
        (error: unknown) => this.#retryFirst(error),
      );
      return;
    }
    // The first attempt reports to the call itself (no callbacks to make).
    this.#attemptThen(new AttemptRun<R>(this, false, false), undefined, 0);
  }

  /** The first round failed: the retry loop takes over, or the call fails. */
  #retryFirst(error: unknown): void {
    const sink = this.#sink!;
    retryAfterFirst(this, error).then(
      (held) => sink.deliver(held),
      (final: unknown) => this.#settle(final),
    );
  }

  /** The retry loop gave up: a response to deliver after all, or the call's final error. */
  #settle(error: unknown): void {
    const sink = this.#sink!;
    if (error instanceof AttemptFailure && error.held !== undefined) {
      sink.deliver(error.held);
      return;
    }
    this.end();
    sink.fail(this.#finalError(error));
  }

  /**
   * Releases the delivered response's lease once its body ended, and ends the call. `'cancel'`
   * and `'unread'` report the headers: the backend did its part.
   */
  finish(held: Held<R>, end: BodyEnd, error?: unknown): void {
    unlink(held);
    this.end();
    const clock = this.#cfg.clock;
    if (end === 'end') {
      const now = clock.now();
      this.#release(held.lease, outcomeOf(held, now - held.start), now);
    } else if (end === 'error') {
      const failure: FailureKind = this.#callerAborted()
        ? 'aborted'
        : this.#deadlineFired
          ? 'timeout'
          : bodyErrorKind(this.#t.classify(error));
      const now = clock.now();
      this.#release(
        held.lease,
        { ok: false, status: held.status, failure, error, latencyMs: now - held.start },
        now,
      );
    } else {
      held.lease.release(outcomeOf(held, held.headersMs));
    }
  }

  /**
   * Releases `lease` with an outcome made here (so already valid) and a reading of the call's
   * clock: a pool lease on the same clock takes the reading instead of reading the clock again.
   */
  #release(lease: Lease, outcome: LeaseOutcome, now: number): void {
    const releaseAt = (lease as Partial<InternalLease>).releaseAt;
    if (releaseAt !== undefined && this.#target.clock === this.#cfg.clock) {
      releaseAt.call(lease, outcome, now);
    } else {
      lease.release(outcome);
    }
  }

  /**
   * The response is about to be handed over: unless the deadline was set explicitly, it bounded
   * the time to a response only, and stops here.
   */
  delivering(): void {
    if (this.#cfg.deadlineCoversBody) this.#ensureDeadline();
    else {
      this.#clearDeadline();
      this.#deadlineLive = false;
      this.#deadlineAt = undefined;
    }
  }

  /** Clears the deadline and unhooks the caller's signal. Safe to call more than once. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#clearDeadline();
    if (this.#onCallerAbort !== undefined) {
      this.#t.signal?.removeEventListener('abort', this.#onCallerAbort);
      this.#onCallerAbort = undefined;
    }
  }

  // ---------------------------------------------------------------- signals

  /**
   * Sets up the call's token (the call itself): aborted by the caller and by the deadline. A
   * call without either has none, and its attempts need no signal unless they time out.
   */
  #linkCaller(): void {
    const caller = this.#t.signal;
    const deadlineMs = this.#cfg.deadlineMs;
    this.#deadlineLive = deadlineMs !== undefined;
    if (deadlineMs === undefined && caller === undefined && this.#t.abortable !== true) return;
    this.#callCancel = this;
    if (caller !== undefined) {
      const onAbort = (): void => this.abort(abortReason(caller));
      this.#onCallerAbort = onAbort;
      caller.addEventListener('abort', onAbort, { once: true });
    }
  }

  /**
   * Arms the deadline's timer, unless it is armed already. It is armed only when something may
   * outlive an attempt's own timer: an attempt without a shorter timeout, a retry, a hedge race,
   * or a body the deadline covers. Most calls answer on their first attempt and never need it.
   */
  #ensureDeadline(): void {
    if (this.#deadlineTimer !== undefined || this.#deadlineFired) return;
    const at = this.#deadline(undefined);
    if (at === undefined) return;
    const deadlineMs = this.#cfg.deadlineMs!;
    const clock = this.#cfg.clock;
    this.#deadlineTimer = backgroundTimer(
      clock,
      () => {
        this.#deadlineTimer = undefined;
        this.#deadlineFired = true;
        this.abort(new TimeoutError('deadline', deadlineMs));
      },
      Math.max(0, at - clock.now()),
    );
  }

  /** When the deadline falls, or undefined when none applies; `now` is a reading if known. */
  #deadline(now: number | undefined): number | undefined {
    if (!this.#deadlineLive) return undefined;
    if (this.#deadlineAt === undefined) {
      this.#deadlineAt = (now ?? this.#cfg.clock.now()) + this.#cfg.deadlineMs!;
    }
    return this.#deadlineAt;
  }

  #clearDeadline(): void {
    if (this.#deadlineTimer !== undefined) {
      this.#cfg.clock.clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
  }

  /** Whether the caller gave up (not the deadline, which aborts the same token). */
  #callerAborted(): boolean {
    return this.aborted && !this.#deadlineFired;
  }

  // ---------------------------------------------------------------- rounds

  /** Retries after the first round (for the retry loop). */
  get retries(): number {
    return this.#retries;
  }

  /**
   * Round `n` of the retry loop: one attempt, plus one hedge when the call may be hedged and the
   * attempt has not answered within the hedge delay. The first response wins.
   */
  attempt(_n: number): Promise<Held<R>> {
    const delay = this.#hedgeDelay();
    if (delay === undefined) return this.#attempt(false, false, undefined, 0).promise;
    return this.#race(this.#attempt(false, true, undefined, 0), delay);
  }

  /** Decides on a retry and waits its backoff (for the retry loop). */
  beforeRetry(error: unknown, n: number): Promise<boolean> {
    return this.#beforeRetry(error, n);
  }

  /** The delay before this call's hedge, or undefined when it will not be hedged. */
  #hedgeDelay(): number | undefined {
    const hedging = this.#cfg.hedging;
    if (hedging === undefined || this.#hedged) return undefined;
    if (!this.#timeoutRetryable()) return undefined;
    return hedging.delayMs();
  }

  #race(first: Running<R>, delayMs: number): Promise<Held<R>> {
    const cfg = this.#cfg;
    this.#ensureDeadline();
    const hedging = cfg.hedging!;
    return new Promise<Held<R>>((resolve, reject) => {
      const running: Running<R>[] = [first];
      let pending = 1;
      let settled = false;
      /** The round's failure so far, preferring one with a response to return. */
      let failure: AttemptFailure<R> | undefined;
      let timer: TimerHandle | undefined;

      const settle = (winner: Running<R> | undefined): void => {
        settled = true;
        if (timer !== undefined) cfg.clock.clearTimeout(timer);
        timer = undefined;
        for (const r of running) if (r !== winner) supersede(r);
      };
      const keep = (f: AttemptFailure<R>): void => {
        // Prefer a failure with a response: it is returned when no retry follows.
        if (failure?.held !== undefined && f.held === undefined) return;
        if (failure?.held !== undefined) this.#discard(failure.held);
        failure = f;
      };
      const watch = (r: Running<R>): void => {
        r.promise.then(
          (held) => {
            pending--;
            if (settled) return; // a late winner was superseded inside the attempt
            settle(r);
            if (failure?.held !== undefined) this.#discard(failure.held);
            resolve(held);
          },
          (error: unknown) => {
            pending--;
            if (settled) {
              if (error instanceof AttemptFailure && error.held !== undefined) {
                this.#discard(error.held);
              }
              return;
            }
            if (isSuperseded(error)) {
              // A hedge that found no other backend: the first attempt goes on alone.
              if (pending === 0) {
                settle(undefined);
                reject(failure ?? error);
              }
              return;
            }
            if (!(error instanceof AttemptFailure)) {
              settle(undefined);
              if (failure?.held !== undefined) this.#discard(failure.held);
              reject(error);
              return;
            }
            keep(error);
            // Another attempt may still answer; otherwise the round failed (a hedge not sent
            // yet is not waited for: the retry loop takes over).
            if (pending > 0) return;
            settle(undefined);
            reject(failure);
          },
        );
      };
      watch(first);
      timer = backgroundTimer(
        cfg.clock,
        () => {
          timer = undefined;
          if (settled || this.#callCancel?.aborted) return;
          if (!hedging.affordable() || (cfg.budget !== undefined && cfg.budget.balance() === 0)) {
            return;
          }
          this.#hedged = true;
          const hedge = this.#attempt(true, true, first.run, delayMs);
          running.push(hedge);
          pending++;
          watch(hedge);
        },
        delayMs,
      );
    });
  }

  // ---------------------------------------------------------------- attempts

  /**
   * One attempt, as a promise of its response (the retry loop's and hedge races' form). A racing
   * attempt gets a token of its own (so it can be superseded); otherwise it shares the call's
   * unless a timeout needs one. A hedge names the attempt it backs up (`slow`) and the delay it
   * waited.
   */
  #attempt(
    hedge: boolean,
    racing: boolean,
    slow: AttemptRun<R> | undefined,
    delayMs: number,
  ): Running<R> {
    let run!: AttemptRun<R>;
    const promise = new Promise<Held<R>>((resolve, reject) => {
      run = new AttemptRun<R>(this, hedge, racing, resolve, reject);
    });
    this.#attemptThen(run, slow, delayMs);
    return { promise, run };
  }

  /**
   * One attempt, in callback form: the pick (waiting for the context hook only when it is
   * async), the send, and what came of it, reported to the run's callbacks (a response to
   * deliver, or an {@link AttemptFailure} or a {@link FinalFailure}). No async frame and no
   * closure: this runs for every call.
   */
  #attemptThen(run: AttemptRun<R>, slow: AttemptRun<R> | undefined, delayMs: number): void {
    const callCancel = this.#callCancel;
    if (callCancel?.aborted) {
      this.#runEnded(run, new FinalFailure(callCancel.reason));
      return;
    }
    run.attempt = ++this.#attemptNo;
    let ctx: PickContext | undefined | Promise<PickContext | undefined>;
    try {
      ctx = this.#t.pickContext(run.attempt, this.#triedIds());
    } catch (error) {
      this.#runEnded(run, new FinalFailure(error));
      return;
    }
    if (isThenable(ctx)) {
      // The wait for the hook counts against the deadline.
      this.#deadline(undefined);
      ctx.then(
        (c) => this.#beginAndSend(run, c, slow, delayMs),
        (error: unknown) => this.#runEnded(run, new FinalFailure(error)),
      );
      return;
    }
    this.#beginAndSend(run, ctx, slow, delayMs);
  }

  #beginAndSend(
    run: AttemptRun<R>,
    ctx: PickContext | undefined,
    slow: AttemptRun<R> | undefined,
    delayMs: number,
  ): void {
    try {
      this.#begin(run, ctx, slow, delayMs);
    } catch (error) {
      this.#runEnded(run, error);
      return;
    }
    const t = this.#t;
    const backend = run.backend!;
    if (t.sendThen !== undefined) {
      try {
        t.sendThen(backend, run.cancel, run);
      } catch (error) {
        run.failed(error);
      }
      return;
    }
    let pending: Promise<R>;
    try {
      pending = t.send(backend, run.cancel);
    } catch (error) {
      pending = Promise.reject(error);
    }
    if (run.cancel !== undefined && t.honoursCancel !== true) {
      pending = raceCancel(pending, run.cancel, t.discard);
    }
    pending.then(
      (response) => run.responded(response),
      (error: unknown) => run.failed(error),
    );
  }

  /** @internal The transport answered attempt `run` with response headers. */
  runResponded(run: AttemptRun<R>, response: R): void {
    let held: Held<R>;
    try {
      held = this.#received(run, response);
    } catch (error) {
      this.#runEnded(run, error);
      return;
    }
    if (run.onHeld === undefined) this.#sink!.deliver(held);
    else run.onHeld(held);
  }

  /** @internal Attempt `run` failed without a response. */
  runFailed(run: AttemptRun<R>, error: unknown): void {
    try {
      this.#attemptFailed(run, error);
    } catch (failure) {
      this.#runEnded(run, failure);
    }
  }

  /** Attempt `run` did not deliver: its round goes on (a retry, the other attempt of a race). */
  #runEnded(run: AttemptRun<R>, failure: unknown): void {
    if (run.onFail === undefined) this.#retryFirst(failure);
    else run.onFail(failure);
  }

  /** Counts the call once in the retry and hedge budgets, with a reading of the call's clock. */
  #deposit(now: number): void {
    const cfg = this.#cfg;
    cfg.budget?.depositAt(cfg.clock, now);
    cfg.hedging?.budget.depositAt(cfg.clock, now);
  }

  /** The ids of the backends tried so far (the list is made at a second attempt). */
  #triedIds(): readonly string[] {
    if (this.#tried !== undefined) return this.#tried;
    if (this.#firstTried === undefined) return NONE;
    this.#tried = [this.#firstTried];
    return this.#tried;
  }

  /** Picks the backend of attempt `run`, and arms its token and timer. Throws to fail it. */
  #begin(
    run: AttemptRun<R>,
    ctx: PickContext | undefined,
    slow: AttemptRun<R> | undefined,
    delayMs: number,
  ): void {
    const cfg = this.#cfg;
    const t = this.#t;
    const n = run.attempt;
    const hedge = run.hedge;
    const callCancel = this.#callCancel;
    if (callCancel?.aborted) throw new FinalFailure(callCancel.reason);
    let lease: Lease;
    try {
      lease = this.#target.acquire(ctx);
    } catch (error) {
      if (n === 1) this.#deposit(cfg.clock.now());
      if (hedge) throw new FinalFailure(SUPERSEDED);
      this.#record({ backend: '(none)', outcome: 'no-backend', error });
      t.onFailure?.(undefined, n, error);
      throw new FinalFailure(error);
    }
    const backend = lease.backend;
    if (hedge) {
      if (this.#triedIds().includes(backend.id) || run.superseded) {
        // No other backend to hedge on (or no longer needed): give the lease back untouched.
        lease.release({ ok: false, failure: 'aborted', latencyMs: 0 });
        throw new FinalFailure(SUPERSEDED);
      }
      // The hedge is sent: it spends the hedge budget, and the retry budget too (Finagle: the
      // backend never gets more extra load than the retry budget allows).
      cfg.hedging?.budget.tryWithdraw();
      cfg.budget?.tryWithdraw();
      if (slow?.backend !== undefined) t.onHedge?.(backend, slow.backend, n, delayMs);
    }
    // Latencies are measured on the call's own clock, which may differ from the target's (the
    // lease was taken just now: on the same clock its reading serves).
    const start = this.#target.clock === cfg.clock ? lease.acquiredAt : cfg.clock.now();
    if (n === 1) this.#deposit(start);
    if (this.#firstTried === undefined) this.#firstTried = backend.id;
    else (this.#triedIds() as string[]).push(backend.id);
    if (t.onAttempt !== undefined) {
      try {
        t.onAttempt(backend, n, hedge);
      } catch (error) {
        // Nothing was sent: release without blaming the backend, and fail the call.
        lease.release({ ok: false, failure: 'aborted', error, latencyMs: 0 });
        throw new FinalFailure(error);
      }
    }
    run.lease = lease;
    run.start = start;
    run.cancel = callCancel;
    // This attempt's token: the call's, or its own (linked to the call's) when it may be
    // superseded or has a timeout.
    const timeoutMs = this.#attemptTimeoutMs();
    const deadlineAt = this.#deadline(start);
    if (deadlineAt !== undefined && (timeoutMs === undefined || start + timeoutMs >= deadlineAt)) {
      this.#ensureDeadline();
    }
    if (run.racing || timeoutMs !== undefined) {
      run.cancel = run;
      if (callCancel !== undefined) {
        callCancel.on(run);
        run.parent = callCancel;
      }
      if (timeoutMs !== undefined) {
        run.timeoutMs = timeoutMs;
        cfg.timeouts.add(run, start, timeoutMs);
      }
    }
  }

  /** Response headers arrived for attempt `run`: it becomes the held response. */
  #received(run: AttemptRun<R>, response: R): Held<R> {
    const cfg = this.#cfg;
    const t = this.#t;
    cfg.timeouts.remove(run);
    const backend = run.lease.backend;
    const headersMs = cfg.clock.now() - run.start;
    const status = t.status(response);
    run.response = response;
    run.status = status;
    run.headersMs = headersMs;
    run.retryAfterMs = t.retryAfterMs(response);
    if (run.superseded) {
      // Answered just as another attempt won: not needed.
      this.#supersededRelease(run, true);
      throw new FinalFailure(SUPERSEDED);
    }
    cfg.hedging?.record(headersMs);
    if (t.onResponse !== undefined) {
      try {
        t.onResponse(backend, run.attempt, status, headersMs);
      } catch (error) {
        this.#discard(run);
        throw new FinalFailure(error);
      }
    }
    if (cfg.retryOn.has(status)) {
      this.#record(record(backend.id, 'http', undefined, status, run.hedge));
      throw new AttemptFailure<R>('http', undefined, backend, run);
    }
    return run;
  }

  /**
   * This call's per-attempt limit. Unless set, a request that may be retried after a timeout
   * gives each attempt an equal share of the deadline (`deadlineMs / (retries + 1)`, 5 s with the
   * defaults), so a hanging backend leaves time to try others; a request that may not be
   * retried after a timeout has only the deadline, so a slow but working backend can finish.
   */
  #attemptTimeoutMs(): number | undefined {
    const t = this.#timeoutMs;
    if (t !== 'auto') return t;
    const deadline = this.#cfg.deadlineMs;
    if (deadline === undefined || this.#retries === 0) return undefined;
    if (!this.#timeoutRetryable()) return undefined;
    return deadline / (this.#retries + 1);
  }

  /** Whether a timed-out attempt may be retried (the request's facts do not change). */
  #timeoutRetryable(): boolean {
    this.#retryableTimeout ??= this.#whyNotRetry('timeout') === undefined;
    return this.#retryableTimeout;
  }

  /** Releases the lease of an attempt that got no response, and says what happens next. */
  #attemptFailed(run: AttemptRun<R>, thrown: unknown): never {
    const cfg = this.#cfg;
    cfg.timeouts.remove(run);
    const own = run.ownToken;
    if (own) run.parent?.off(run);
    // Whatever comes next (a retry, a wait, the other attempt of a race) is under the deadline.
    this.#ensureDeadline();
    const { lease, start, hedge, attempt: n } = run;
    const backend = lease.backend;
    if (run.superseded && !this.#callerAborted() && !this.#deadlineFired) {
      this.#supersededRelease(run, false);
      throw new FinalFailure(SUPERSEDED);
    }
    let kind: FailureKind;
    let error = thrown;
    let final = false;
    if (this.#callerAborted()) {
      kind = 'aborted';
      error = this.reason;
      final = true;
    } else if (this.#deadlineFired) {
      kind = 'timeout';
      error = this.reason;
      final = true;
    } else if (own && run.aborted) {
      kind = 'timeout';
      error = run.reason;
    } else {
      kind = this.#t.classify(thrown);
      // Failed in this process: another backend would fail the same way.
      if (kind === 'local') final = true;
    }
    lease.release({ ok: false, failure: kind, error, latencyMs: cfg.clock.now() - start });
    this.#record(record(backend.id, kind, error, undefined, hedge));
    this.#t.onFailure?.(backend, n, error);
    const failure = new AttemptFailure<R>(kind, error, backend);
    throw final ? new FinalFailure(failure) : failure;
  }

  /**
   * Releases an attempt another one beat: not the backend's failure, but its time so far is a
   * lower bound of its latency, which latency-aware algorithms should see.
   */
  #supersededRelease(run: AttemptRun<R>, answered: boolean): void {
    const latencyMs = answered ? run.headersMs : this.#cfg.clock.now() - run.start;
    if (answered) {
      this.#t.discard(run.response);
      unlink(run);
    }
    run.lease.release({ ok: false, failure: 'cancelled', latencyMs });
    this.#record(record(run.lease.backend.id, 'cancelled', undefined, undefined, run.hedge));
  }

  // ---------------------------------------------------------------- retrying

  async #beforeRetry(error: unknown, n: number): Promise<boolean> {
    if (!(error instanceof AttemptFailure)) return false;
    const cfg = this.#cfg;
    const why = this.#whyNotRetry(error.kind);
    if (why !== undefined) {
      this.#stoppedBecause = why;
      return false;
    }
    if (cfg.budget !== undefined && !cfg.budget.tryWithdraw()) {
      this.#stoppedBecause =
        'the retry budget is spent (retries may add only a share of the call rate)';
      return false;
    }
    if (error.held !== undefined) this.#discard(error.held);
    this.#ensureDeadline();
    const delayMs = backoffDelay(n, cfg.backoffBaseMs, cfg.backoffMaxMs, cfg.random);
    this.#t.onRetry?.(
      n,
      error.backend,
      error.held === undefined ? error.kind : `status ${error.held.status}`,
      delayMs,
    );
    if (delayMs > 0) await sleepUnless(cfg.clock, delayMs, this.#callCancel);
    return true;
  }

  /** Why a failure of this kind must not be retried, or undefined when it may be. */
  #whyNotRetry(kind: FailureKind): string | undefined {
    if (kind !== 'connect' && kind !== 'reset' && kind !== 'timeout' && kind !== 'http') {
      return `${article(kind)} ${kind} failure is not retried`;
    }
    const t = this.#t;
    if (!t.replayable) {
      return 'the request body is a stream that cannot be replayed (set bufferBody: true to retry it)';
    }
    // A refused connection sent nothing: any method may go to another backend.
    if (kind === 'connect') return undefined;
    if (this.#cfg.retryMethods.has(t.method)) return undefined;
    if (t.idempotencyKey) return undefined;
    return `${t.method} is not idempotent and the request may have reached the server (send an Idempotency-Key header to allow retries)`;
  }

  /** Drops a response that is not delivered: cancels its body and releases its lease. */
  #discard(held: Held<R>): void {
    this.#t.discard(held.response);
    unlink(held);
    held.lease.release(outcomeOf(held, held.headersMs));
  }

  #finalError(error: unknown): unknown {
    if (this.#callerAborted()) return this.reason;
    if (this.#deadlineFired) {
      return new TimeoutError('deadline', this.#cfg.deadlineMs!, {
        attempts: this.attempts,
        cause: error instanceof AttemptFailure ? error.error : error,
      });
    }
    if (error instanceof AttemptFailure && error.kind === 'local') {
      const code = localCode(error.error);
      return new LocalFailureError(
        error.backend.id,
        code ?? errorMessage(error.error),
        this.attempts,
        { cause: error.error, localCode: code },
      );
    }
    if (error instanceof AttemptFailure) {
      const stopped =
        this.#stoppedBecause ||
        this.#whyNotRetry(error.kind) ||
        (this.#retries === 0
          ? 'retries are off (retries: 0)'
          : `all ${this.#retries} retries were used`);
      return new AllAttemptsFailedError(this.attempts, stopped, { cause: error.error });
    }
    if (error instanceof NoBackendAvailableError && this.attempts.length > 1) {
      return new AllAttemptsFailedError(this.attempts, 'no backend was available for a retry', {
        cause: error,
      });
    }
    // Hook errors, and a pool with nothing to pick on the first attempt, reach the caller as is.
    return error;
  }
}

// ------------------------------------------------------------------ helpers

/** Unlinks a response's own token from the call's. */
function unlink<R>(held: Held<R>): void {
  if (held.parent !== undefined && held.cancel !== undefined) held.parent.off(held.cancel);
}

/** The outcome of a response's lease. */
function outcomeOf<R>(held: Held<R>, latencyMs: number): LeaseOutcome {
  const outcome: LeaseOutcome = { ok: held.ok, status: held.status, latencyMs };
  if (!held.ok) outcome.failure = 'http';
  if (held.retryAfterMs !== undefined) outcome.retryAfterMs = held.retryAfterMs;
  return outcome;
}

function record(
  backend: string,
  outcome: string,
  error: unknown,
  status: number | undefined,
  hedge: boolean,
): AttemptRecord {
  const r: { -readonly [K in keyof AttemptRecord]: AttemptRecord[K] } = { backend, outcome };
  if (status !== undefined) r.status = status;
  if (error !== undefined) r.error = error;
  if (hedge) r.hedge = true;
  return r;
}

/** A body that breaks after the headers broke its connection, whatever the error says. */
function bodyErrorKind(kind: FailureKind): FailureKind {
  return kind === 'other' || kind === 'local' ? 'reset' : kind;
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Rejects as soon as `cancel` aborts, even when the transport ignores it; a response that arrives
 * later is discarded so its connection is freed.
 */
function raceCancel<R>(
  pending: Promise<R>,
  cancel: Cancel,
  discard: (response: R) => void,
): Promise<R> {
  if (cancel.aborted) {
    pending.then(discard, noop);
    return Promise.reject(cancel.reason);
  }
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      reject(cancel.reason);
      pending.then(discard, noop);
    };
    cancel.on(onAbort);
    pending.then(
      (response) => {
        cancel.off(onAbort);
        if (settled) return;
        settled = true;
        resolve(response);
      },
      (error: unknown) => {
        cancel.off(onAbort);
        if (settled) return;
        settled = true;
        reject(error);
      },
    );
  });
}

/** Waits `ms` on the clock; rejects with the token's reason if it aborts first. */
function sleepUnless(clock: Clock, ms: number, cancel: Cancel | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (cancel?.aborted) {
      reject(cancel.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(cancel?.reason);
    };
    const handle = clock.setTimeout(() => {
      cancel?.off(onAbort);
      resolve();
    }, ms);
    cancel?.on(onAbort);
  });
}

function noop(): void {}

export function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
