/**
 * The attempts' time limits on one platform timer (src/call/timeouts.ts), and the call loop's
 * token with its single listener slot (src/call/cancel.ts).
 */
import { describe, expect, it } from 'vitest';
import { Cancel } from '../../src/call/cancel.js';
import { type TimeoutEntry, TimeoutQueue } from '../../src/call/timeouts.js';
import { ManualClock } from '../../src/testing/manual-clock.js';

/** An entry that records when it expired. */
function entry(name: string, log: string[], clock: ManualClock): TimeoutEntry {
  return {
    dueAt: 0,
    prevDue: undefined,
    nextDue: undefined,
    queued: false,
    expire: () => log.push(`${name}@${clock.now()}`),
  };
}

describe('TimeoutQueue', () => {
  it('expires each entry at its own time, in order, on one timer', () => {
    const clock = new ManualClock();
    const queue = new TimeoutQueue(clock);
    const log: string[] = [];
    const a = entry('a', log, clock);
    const b = entry('b', log, clock);
    const c = entry('c', log, clock);
    queue.add(a, clock.now(), 100);
    clock.advance(10);
    queue.add(b, clock.now(), 100);
    // Out of order: due before both.
    queue.add(c, clock.now(), 50);
    expect(clock.pendingTimers()).toBe(1);
    expect(queue.size).toBe(3);
    clock.advance(49);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['c@60']);
    clock.advance(40);
    expect(log).toEqual(['c@60', 'a@100']);
    clock.advance(9);
    expect(log).toEqual(['c@60', 'a@100']);
    clock.advance(1);
    expect(log).toEqual(['c@60', 'a@100', 'b@110']);
    expect(queue.size).toBe(0);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('a removed entry never expires, and an empty queue leaves no timer', () => {
    const clock = new ManualClock();
    const queue = new TimeoutQueue(clock);
    const log: string[] = [];
    const a = entry('a', log, clock);
    const b = entry('b', log, clock);
    queue.add(a, 0, 100);
    queue.add(b, 0, 200);
    queue.remove(a);
    // Removing twice (or an entry never added) changes nothing.
    queue.remove(a);
    queue.remove(entry('x', log, clock));
    expect(queue.size).toBe(1);
    clock.advance(150);
    expect(log).toEqual([]);
    queue.remove(b);
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(1000);
    expect(log).toEqual([]);
  });

  it('re-adding an entry moves it to its new time', () => {
    const clock = new ManualClock();
    const queue = new TimeoutQueue(clock);
    const log: string[] = [];
    const a = entry('a', log, clock);
    queue.add(a, 0, 100);
    queue.add(a, 0, 300);
    expect(queue.size).toBe(1);
    clock.advance(299);
    expect(log).toEqual([]);
    clock.advance(1);
    expect(log).toEqual(['a@300']);
  });

  it('a lingering timer outlives an empty queue, serves later entries, and stops on close()', () => {
    const clock = new ManualClock();
    const queue = new TimeoutQueue(clock, true);
    const log: string[] = [];
    const a = entry('a', log, clock);
    queue.add(a, 0, 100);
    queue.remove(a);
    // Still armed: the next entry due later reuses it (no new timer).
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(50);
    const b = entry('b', log, clock);
    queue.add(b, clock.now(), 100);
    expect(clock.pendingTimers()).toBe(1);
    // Fires at 100 for nothing due, and re-arms for b.
    clock.advance(50);
    expect(log).toEqual([]);
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(50);
    expect(log).toEqual(['b@150']);
    // With nothing left when it fires, it stops by itself.
    expect(clock.pendingTimers()).toBe(0);
    queue.add(entry('c', log, clock), clock.now(), 100);
    queue.close();
    expect(clock.pendingTimers()).toBe(0);
    clock.advance(1000);
    expect(log).toEqual(['b@150']);
  });

  it('an entry added from an expiring one is kept and expires at its time', () => {
    const clock = new ManualClock();
    const queue = new TimeoutQueue(clock);
    const log: string[] = [];
    const later = entry('later', log, clock);
    const first: TimeoutEntry = {
      ...entry('first', log, clock),
      expire: () => {
        log.push(`first@${clock.now()}`);
        queue.add(later, clock.now(), 10);
      },
    };
    queue.add(first, 0, 10);
    clock.advance(10);
    clock.advance(10);
    expect(log).toEqual(['first@10', 'later@20']);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('Cancel', () => {
  it('tells every listener once, in the order they were added, slot or not', () => {
    const token = new Cancel();
    const heard: string[] = [];
    const a = (): number => heard.push('a');
    const b = (): number => heard.push('b');
    const c = (): number => heard.push('c');
    token.on(a);
    token.on(b);
    // The slot's listener leaves; a new one must still come after b.
    token.off(a);
    token.on(c);
    const child = new Cancel();
    token.on(child);
    token.on({ onCancel: (reason) => heard.push(`object:${String(reason)}`) });
    token.abort('why');
    token.abort('again');
    expect(heard).toEqual(['b', 'c', 'object:why']);
    expect(child.aborted).toBe(true);
    expect(child.reason).toBe('why');
  });

  it('off() of the only listener leaves nothing to tell; on() after abort() does nothing', () => {
    const token = new Cancel();
    let heard = 0;
    const l = (): void => {
      heard++;
    };
    token.on(l);
    token.off(l);
    token.abort(new Error('x'));
    token.on(l);
    expect(heard).toBe(0);
    expect(token.aborted).toBe(true);
  });
});
