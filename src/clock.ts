/**
 * A timer handle returned by {@link Clock.setTimeout}. Node's `Timeout` objects fit this shape,
 * and so do the handles of `ManualClock`.
 */
export interface TimerHandle {
  /** Lets the process exit while this timer is pending (Node semantics). */
  unref?(): unknown;
  /** Undoes {@link TimerHandle.unref}. */
  ref?(): unknown;
}

/**
 * The source of time for every component. Inject `ManualClock` from `loadwise/testing` in tests
 * so that nothing waits in real time.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale. Only differences between two readings are meaningful. */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer created by {@link Clock.setTimeout}; unknown handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
  /**
   * Milliseconds since the Unix epoch by the wall clock: the one reading that means the same in
   * another process or on another host (a pool snapshot is stamped with it, so its durations
   * survive a restart). Unlike {@link Clock.now} it may jump when the system clock is set. A
   * clock without it has {@link Clock.now} read instead.
   */
  wallNow?(): number;
}

/**
 * Read once: `performance.timeOrigin` is constant, and reading it goes through a checked getter
 * that cost as much as `performance.now()` itself (about 30 ns, and a heap number, per read on
 * Node 20; bench/picks.ts).
 */
const timeOrigin = performance.timeOrigin;

/**
 * The longest delay a platform timer honours: Node, browsers, Deno and Bun store it in a signed
 * 32-bit integer and fire a longer one after 1 ms (Node's `TimeoutOverflowWarning`; HTML's timer
 * initialisation steps). Longer delays are chained, see {@link systemClock}.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

type PlatformTimer = ReturnType<typeof setTimeout>;

/**
 * A timer longer than {@link MAX_TIMER_MS}: a chain of platform timers, each at most that long,
 * aimed at the same due time, so the delay is honoured exactly.
 */
class ChainedTimer implements TimerHandle {
  readonly #fn: () => void;
  readonly #due: number;
  #timer: PlatformTimer | undefined;
  #refed = true;

  constructor(fn: () => void, ms: number) {
    this.#fn = fn;
    this.#due = performance.now() + ms;
    this.#arm();
  }

  #arm(): void {
    const left = this.#due - performance.now();
    this.#timer =
      left > MAX_TIMER_MS
        ? setTimeout(() => this.#arm(), MAX_TIMER_MS)
        : setTimeout(this.#fn, Math.max(0, left));
    if (!this.#refed) (this.#timer as { unref?: () => unknown }).unref?.();
  }

  unref(): this {
    this.#refed = false;
    (this.#timer as { unref?: () => unknown } | undefined)?.unref?.();
    return this;
  }

  ref(): this {
    this.#refed = true;
    (this.#timer as { ref?: () => unknown } | undefined)?.ref?.();
    return this;
  }

  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** The handle of a timer that never fires (an infinite delay). */
class NeverTimer implements TimerHandle {
  unref(): this {
    return this;
  }
  ref(): this {
    return this;
  }
}

/**
 * The real clock: `performance.now()` offset by `performance.timeOrigin` (monotonic, in
 * milliseconds since the epoch) and the platform timers; `wallNow()` is `Date.now()`.
 *
 * Every delay is honoured exactly: one longer than 2^31 - 1 ms (`MAX_TIMER_MS`, about 24.8
 * days), which a platform timer would fire after 1 ms, runs as a chain of shorter timers; an
 * infinite delay never fires; a negative or NaN delay fires as soon as possible, as the
 * platform's does.
 */
export const systemClock: Clock = {
  now: () => timeOrigin + performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => {
    if (ms <= MAX_TIMER_MS || Number.isNaN(ms)) return setTimeout(fn, ms) as unknown as TimerHandle;
    return ms === Number.POSITIVE_INFINITY ? new NeverTimer() : new ChainedTimer(fn, ms);
  },
  clearTimeout: (handle) => {
    if (handle instanceof ChainedTimer) handle.cancel();
    else if (!(handle instanceof NeverTimer)) clearTimeout(handle as PlatformTimer);
  },
};

/**
 * Schedules a background timer that never keeps the process alive.
 * @internal
 */
export function backgroundTimer(clock: Clock, fn: () => void, ms: number): TimerHandle {
  const handle = clock.setTimeout(fn, ms);
  handle.unref?.();
  return handle;
}

/**
 * Resolves after `ms` on the given clock (an unref'd timer; rejects when `signal` aborts).
 * @internal
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
