import type { Clock, TimerHandle } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';

interface ManualTimer extends TimerHandle {
  readonly id: number;
  readonly due: number;
  readonly fn: () => void;
  cancelled: boolean;
  refed: boolean;
}

/**
 * A {@link Clock} that only moves when told to. Timers fire in order of due time (then creation
 * order) during {@link ManualClock.advance}, including timers that fired timers schedule.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * clock.setTimeout(() => console.log('fired'), 1000);
 * clock.advance(999); // nothing
 * clock.advance(1);   // logs "fired"
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: ManualTimer[] = [];

  /** @param start The initial reading of {@link ManualClock.now}. @default 0 */
  constructor(start = 0) {
    if (typeof start !== 'number' || !Number.isFinite(start)) {
      throw new LoadBalancerConfigError('ManualClock start', start, 'a finite number');
    }
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /**
   * The same reading as {@link ManualClock.now}: in tests the virtual time stands for the wall
   * clock too. Start a clock at an epoch time (`new ManualClock(Date.UTC(2025, 0, 1))`) to give
   * two "processes" wall clocks that agree, or disagree by a chosen skew.
   */
  wallNow(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (typeof fn !== 'function')
      throw new LoadBalancerConfigError('ManualClock.setTimeout fn', fn, 'a function');
    if (typeof ms !== 'number') {
      throw new LoadBalancerConfigError('ManualClock.setTimeout ms', ms, 'a number of ms');
    }
    // Like systemClock: every delay is honoured exactly, however long (an infinite one never
    // fires); a negative or NaN delay fires at the next advance.
    const delay = Number.isNaN(ms) ? 0 : Math.max(ms, 0);
    const timer: ManualTimer = {
      id: ++this.#seq,
      due: this.#now + delay,
      fn,
      cancelled: false,
      refed: true,
      unref() {
        timer.refed = false;
        return timer;
      },
      ref() {
        timer.refed = true;
        return timer;
      },
    };
    // Keep the list sorted by (due, id); insertion from the back is cheap for typical use.
    let i = this.#timers.length;
    while (i > 0) {
      const prev = this.#timers[i - 1]!;
      if (prev.due <= timer.due) break;
      i--;
    }
    this.#timers.splice(i, 0, timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    const i = this.#timers.indexOf(handle as ManualTimer);
    if (i >= 0) {
      this.#timers[i]!.cancelled = true;
      this.#timers.splice(i, 1);
    }
  }

  /** How many timers are pending. */
  pendingTimers(): number {
    return this.#timers.length;
  }

  /** How many pending timers would keep a real process alive (not unref'd). */
  refedTimers(): number {
    return this.#timers.filter((t) => t.refed).length;
  }

  /** The due time of the next pending timer, if any. */
  nextDue(): number | undefined {
    return this.#timers[0]?.due;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way, in order. A timer
   * sees {@link ManualClock.now} equal to its due time.
   */
  advance(ms: number): void {
    this.#checkStep(ms);
    const target = this.#now + ms;
    for (;;) {
      const timer = this.#timers[0];
      if (timer === undefined || timer.due > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, timer.due);
      timer.fn();
    }
    this.#now = target;
  }

  /**
   * Like {@link ManualClock.advance}, but lets pending promise callbacks and I/O callbacks run
   * before and after each timer, so async code awaiting a timer continues before the next fires.
   */
  async advanceAsync(ms: number): Promise<void> {
    this.#checkStep(ms);
    const target = this.#now + ms;
    await flush();
    for (;;) {
      const timer = this.#timers[0];
      if (timer === undefined || timer.due > target) break;
      this.#timers.shift();
      this.#now = Math.max(this.#now, timer.due);
      timer.fn();
      await flush();
    }
    this.#now = target;
    await flush();
  }

  /**
   * Fires timers until none is pending (at most `limit`, to stop runaway intervals). Timers with
   * an infinite delay never fire and stay pending.
   */
  runAll(limit = 10_000): void {
    if (typeof limit !== 'number' || !(limit >= 1)) {
      throw new LoadBalancerConfigError(
        'ManualClock.runAll limit',
        limit,
        'a number of timers >= 1 (Infinity for no limit)',
      );
    }
    for (let n = 0; n < limit; n++) {
      const timer = this.#timers[0];
      if (timer === undefined || timer.due === Number.POSITIVE_INFINITY) return;
      this.#timers.shift();
      this.#now = Math.max(this.#now, timer.due);
      timer.fn();
    }
    // Exactly `limit` timers may have been all there was: only timers still due are a runaway.
    const next = this.#timers[0];
    if (next === undefined || next.due === Number.POSITIVE_INFINITY) return;
    throw new Error(`ManualClock.runAll: still ${this.#timers.length} timers after ${limit} runs`);
  }

  #checkStep(ms: number): void {
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) {
      throw new LoadBalancerConfigError('ManualClock.advance ms', ms, 'a finite number >= 0');
    }
  }
}

/**
 * Lets queued microtasks and one turn of the event loop run (`setImmediate` where it exists,
 * as in Node and Bun; a zero-delay timer elsewhere).
 */
function flush(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  return new Promise<void>((resolve) => {
    if (typeof immediate === 'function') immediate(resolve);
    else setTimeout(resolve, 0);
  });
}
