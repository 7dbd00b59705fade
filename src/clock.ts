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
}

/**
 * Read once: `performance.timeOrigin` is constant, and reading it goes through a checked getter
 * that cost as much as `performance.now()` itself (about 30 ns, and a heap number, per read on
 * Node 20; bench/picks.ts).
 */
const timeOrigin = performance.timeOrigin;

/**
 * The real clock: `performance.now()` offset by `performance.timeOrigin` (monotonic, in
 * milliseconds since the epoch) and the platform timers.
 */
export const systemClock: Clock = {
  now: () => timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as TimerHandle,
  clearTimeout: (handle) => clearTimeout(handle as Parameters<typeof clearTimeout>[0]),
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
