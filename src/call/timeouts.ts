/**
 * The attempts' time limits of one client, on one platform timer. Every attempt of a call with a
 * time limit needs a timer, and almost every one is cancelled when the headers arrive: a
 * platform timer per attempt cost about 170 ns to set, unref and clear on Node 20 (plus the
 * closure and the `Timeout` object), where adding to and removing from this list costs a few
 * nanoseconds and allocates nothing (the attempt is its own list node). Deadlines are exact: the
 * timer is armed for the earliest one, and when it fires every entry whose time has come expires.
 *
 * When the list empties, the timer is cleared at once, so nothing is left pending between calls;
 * or, for a client with a `close()` that calls {@link TimeoutQueue.close} (the undici
 * dispatcher), it lingers until its time (it is unref'd, and stops when it finds nothing due):
 * with one call at a time the list empties after every call, and clearing the timer would bring
 * back the set-and-clear per call this queue exists to avoid (undici keeps its own request
 * timeouts on a shared timer wheel for the same reason).
 * @internal
 */
import { backgroundTimer, type Clock, type TimerHandle } from '../clock.js';

/** An entry of a {@link TimeoutQueue} (the attempt itself, so adding one allocates nothing). */
export interface TimeoutEntry {
  /** Clock reading at which the entry expires. */
  dueAt: number;
  prevDue: TimeoutEntry | undefined;
  nextDue: TimeoutEntry | undefined;
  queued: boolean;
  /** Called once when the entry's time has come (it is off the list by then). */
  expire(): void;
}

export class TimeoutQueue {
  readonly #clock: Clock;
  #head: TimeoutEntry | undefined = undefined;
  #tail: TimeoutEntry | undefined = undefined;
  #timer: TimerHandle | undefined = undefined;
  /** When the armed timer fires (clock reading). */
  #timerAt = 0;
  readonly #fire = (): void => this.#expire();
  readonly #linger: boolean;

  /** @param linger Whether the timer outlives an empty list (the owner then calls `close()`). */
  constructor(clock: Clock, linger = false) {
    this.#clock = clock;
    this.#linger = linger;
  }

  /** Clears the timer; entries still waiting no longer expire. */
  close(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Whether an entry is waiting (for tests). */
  get size(): number {
    let n = 0;
    for (let e = this.#head; e !== undefined; e = e.nextDue) n++;
    return n;
  }

  /** Expires `entry` `ms` after `now` (a reading of the queue's clock). */
  add(entry: TimeoutEntry, now: number, ms: number): void {
    if (entry.queued) this.remove(entry);
    const dueAt = now + ms;
    entry.dueAt = dueAt;
    entry.queued = true;
    // Entries of one client mostly share one limit, so they arrive in order: walk from the tail.
    let after = this.#tail;
    while (after !== undefined && after.dueAt > dueAt) after = after.prevDue;
    entry.prevDue = after;
    if (after === undefined) {
      entry.nextDue = this.#head;
      if (this.#head !== undefined) this.#head.prevDue = entry;
      this.#head = entry;
    } else {
      entry.nextDue = after.nextDue;
      if (after.nextDue !== undefined) after.nextDue.prevDue = entry;
      after.nextDue = entry;
    }
    if (entry.nextDue === undefined) this.#tail = entry;
    if (this.#head === entry && (this.#timer === undefined || this.#timerAt > dueAt)) {
      this.#arm(dueAt, ms);
    }
  }

  /** Takes `entry` off the list (nothing happens if it is not on it). */
  remove(entry: TimeoutEntry): void {
    if (!entry.queued) return;
    entry.queued = false;
    const { prevDue, nextDue } = entry;
    if (prevDue === undefined) this.#head = nextDue;
    else prevDue.nextDue = nextDue;
    if (nextDue === undefined) this.#tail = prevDue;
    else nextDue.prevDue = prevDue;
    entry.prevDue = undefined;
    entry.nextDue = undefined;
    // A timer armed for an earlier entry is left to fire and re-arm; with nothing left, it goes
    // (unless it lingers).
    if (this.#head === undefined && this.#timer !== undefined && !this.#linger) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #arm(at: number, ms: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = backgroundTimer(this.#clock, this.#fire, ms);
  }

  #expire(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    let e = this.#head;
    while (e !== undefined && e.dueAt <= now) {
      this.remove(e);
      e.expire();
      e = this.#head;
    }
    // A platform timer may fire a little early by the monotonic clock (it counts whole ms).
    if (e !== undefined && this.#timer === undefined) this.#arm(e.dueAt, e.dueAt - now);
  }
}
