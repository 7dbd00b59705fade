import { describe, expect, it } from 'vitest';
import { backgroundTimer, sleep } from '../../src/clock.js';
import { LoadBalancerConfigError, systemClock } from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';

describe('ManualClock', () => {
  it('starts where told and moves only when advanced', () => {
    const clock = new ManualClock(1000);
    expect(clock.now()).toBe(1000);
    clock.advance(0);
    expect(clock.now()).toBe(1000);
    clock.advance(250);
    expect(clock.now()).toBe(1250);
  });

  it('fires timers in due order, ties in creation order, each seeing its due time', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const at = (name: string) => () => fired.push(`${name}@${clock.now()}`);
    clock.setTimeout(at('c'), 300);
    clock.setTimeout(at('a'), 100);
    clock.setTimeout(at('b1'), 200);
    clock.setTimeout(at('b2'), 200);
    clock.setTimeout(at('late'), 1000);
    clock.advance(500);
    expect(fired).toEqual(['a@100', 'b1@200', 'b2@200', 'c@300']);
    expect(clock.now()).toBe(500);
    expect(clock.pendingTimers()).toBe(1);
    expect(clock.nextDue()).toBe(1000);
  });

  it('fires timers scheduled by timers within the same advance', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    const tick = () => {
      fired.push(clock.now());
      if (fired.length < 10) clock.setTimeout(tick, 100);
    };
    clock.setTimeout(tick, 100);
    clock.advance(450);
    expect(fired).toEqual([100, 200, 300, 400]);
    clock.advance(1000);
    expect(fired).toHaveLength(10);
  });

  it('fires a zero-delay timer scheduled during advance in the same advance', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    clock.setTimeout(() => {
      fired.push('first');
      clock.setTimeout(() => fired.push(`now@${clock.now()}`), 0);
    }, 50);
    clock.advance(50);
    expect(fired).toEqual(['first', 'now@50']);
  });

  it('clearTimeout cancels, also from another timer, and ignores unknown handles', () => {
    const clock = new ManualClock();
    const fired: string[] = [];
    const b = clock.setTimeout(() => fired.push('b'), 200);
    clock.setTimeout(() => {
      fired.push('a');
      clock.clearTimeout(b);
    }, 100);
    const c = clock.setTimeout(() => fired.push('c'), 300);
    clock.clearTimeout(c);
    clock.clearTimeout(c);
    clock.clearTimeout({});
    clock.advance(1000);
    expect(fired).toEqual(['a']);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('tracks unref and ref', () => {
    const clock = new ManualClock();
    const h = clock.setTimeout(() => {}, 10);
    expect(clock.refedTimers()).toBe(1);
    h.unref?.();
    expect(clock.refedTimers()).toBe(0);
    h.ref?.();
    expect(clock.refedTimers()).toBe(1);
  });

  it('advanceAsync lets awaited promises run between timers', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    const worker = async () => {
      await sleep(clock, 100);
      log.push(`slept@${clock.now()}`);
      // Scheduled only after the await resumed: a sync advance would have passed it by.
      await sleep(clock, 100);
      log.push(`slept again@${clock.now()}`);
    };
    const done = worker();
    clock.setTimeout(() => log.push('timer@150'), 150);
    await clock.advanceAsync(300);
    await done;
    expect(log).toEqual(['slept@100', 'timer@150', 'slept again@200']);
    expect(clock.now()).toBe(300);
  });

  it('a sync advance does not wait for promise callbacks', async () => {
    const clock = new ManualClock();
    const log: string[] = [];
    const done = (async () => {
      await sleep(clock, 100);
      log.push(`first@${clock.now()}`);
      await sleep(clock, 100);
      log.push(`second@${clock.now()}`);
    })();
    clock.advance(300);
    await new Promise((r) => setImmediate(r));
    // The second sleep was scheduled at 300, after the advance had finished.
    expect(log).toEqual(['first@300']);
    clock.advance(100);
    await done;
    expect(log).toEqual(['first@300', 'second@400']);
  });

  it('runAll fires everything and stops a runaway interval', () => {
    const clock = new ManualClock();
    let n = 0;
    clock.setTimeout(() => n++, 5000);
    clock.runAll();
    expect([n, clock.now()]).toEqual([1, 5000]);
    const forever = () => clock.setTimeout(forever, 1);
    forever();
    expect(() => clock.runAll(50)).toThrow(/still 1 timers after 50/);
  });

  it('runAll with a limit equal to the timers pending fires them all and does not throw', () => {
    // Found by the property suite: runAll(1) with one timer reported "still 0 timers".
    const clock = new ManualClock();
    let n = 0;
    clock.setTimeout(() => n++, 1);
    expect(() => clock.runAll(1)).not.toThrow();
    expect([n, clock.pendingTimers()]).toEqual([1, 0]);
  });

  it.each([
    { call: (c: ManualClock) => c.advance(-1), field: 'ManualClock.advance ms' },
    { call: (c: ManualClock) => c.advance(Number.NaN), field: 'ManualClock.advance ms' },
    { call: (c: ManualClock) => c.advance('5' as never), field: 'ManualClock.advance ms' },
    {
      call: (c: ManualClock) => c.setTimeout('code' as never, 1),
      field: 'ManualClock.setTimeout fn',
    },
    { call: () => new ManualClock(Number.POSITIVE_INFINITY), field: 'ManualClock start' },
    // Found by the property suite: a TypeError (BigInt, Symbol), and a runaway report with no
    // timer at all ("still 0 timers after  runs").
    {
      call: (c: ManualClock) => c.setTimeout(() => undefined, 1n as never),
      field: 'ManualClock.setTimeout ms',
    },
    {
      call: (c: ManualClock) => c.setTimeout(() => undefined, Symbol('ms') as never),
      field: 'ManualClock.setTimeout ms',
    },
    { call: (c: ManualClock) => c.runAll('' as never), field: 'ManualClock.runAll limit' },
    { call: (c: ManualClock) => c.runAll(Number.NaN), field: 'ManualClock.runAll limit' },
    { call: (c: ManualClock) => c.runAll(0), field: 'ManualClock.runAll limit' },
  ])('rejects bad input ($field)', ({ call, field }) => {
    expect(() => call(new ManualClock())).toThrow(expect.objectContaining({ field }));
    expect(() => call(new ManualClock())).toThrow(LoadBalancerConfigError);
  });

  it('rejects advanceAsync with a bad step', async () => {
    await expect(new ManualClock().advanceAsync(-5)).rejects.toBeInstanceOf(
      LoadBalancerConfigError,
    );
  });

  it('treats a negative or NaN delay as 0', () => {
    const clock = new ManualClock();
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(1), -10);
    clock.setTimeout(() => fired.push(2), Number.NaN);
    clock.advance(0);
    expect(fired).toEqual([1, 2]);
  });
});

describe('clock helpers', () => {
  it('backgroundTimer schedules an unref-ed timer', () => {
    const clock = new ManualClock();
    let fired = false;
    backgroundTimer(
      clock,
      () => {
        fired = true;
      },
      10,
    );
    expect(clock.refedTimers()).toBe(0);
    clock.advance(10);
    expect(fired).toBe(true);
  });

  it('sleep resolves on the clock and rejects when aborted, clearing its timer', async () => {
    const clock = new ManualClock();
    const slept = sleep(clock, 1000);
    await clock.advanceAsync(1000);
    await expect(slept).resolves.toBeUndefined();

    const controller = new AbortController();
    const aborted = sleep(clock, 1000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(clock.pendingTimers()).toBe(0);

    await expect(sleep(clock, 10, AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
    expect(clock.pendingTimers()).toBe(0);
  });

  it('systemClock reads a monotonic millisecond clock and runs real timers', async () => {
    const a = systemClock.now();
    const b = systemClock.now();
    expect(b).toBeGreaterThanOrEqual(a);
    expect(Math.abs(a - Date.now())).toBeLessThan(60_000);
    let fired = false;
    const h = systemClock.setTimeout(() => {
      fired = true;
    }, 0);
    expect(typeof h.unref).toBe('function');
    await new Promise((r) => setTimeout(r, 5));
    expect(fired).toBe(true);
    const cancelled = systemClock.setTimeout(() => {
      throw new Error('should not fire');
    }, 0);
    systemClock.clearTimeout(cancelled);
    await new Promise((r) => setTimeout(r, 5));
  });
});
