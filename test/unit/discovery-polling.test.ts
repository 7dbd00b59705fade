import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  type BackendSpec,
  BaseDiscovery,
  type DiscoveryAnswer,
  DiscoveryBinding,
  DiscoveryError,
  LoadBalancerConfigError,
  LoadBalancerError,
  PollingDiscovery,
  type PollingDiscoveryOptions,
  type PollResult,
  PoolClosedError,
  StaticDiscovery,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { expectConfigErrors } from '../support/config-errors.js';

type Reply = readonly BackendSpec[] | PollResult | Error | 'hang';

/** A poll function that plays back replies in order (the last one repeats). */
function scripted(replies: Reply[]) {
  const calls: AbortSignal[] = [];
  const poll = (signal: AbortSignal): Promise<readonly BackendSpec[] | PollResult> => {
    calls.push(signal);
    const reply = replies[Math.min(calls.length - 1, replies.length - 1)]!;
    if (reply === 'hang') return new Promise(() => {});
    if (reply instanceof Error) return Promise.reject(reply);
    return Promise.resolve(reply);
  };
  return { poll, calls };
}

function source(replies: Reply[], options: Omit<PollingDiscoveryOptions, 'poll'> = {}) {
  const clock = new ManualClock();
  const s = scripted(replies);
  const src = new PollingDiscovery({
    poll: s.poll,
    clock,
    minRefreshMs: 1_000,
    maxRefreshMs: 60_000,
    intervalMs: 10_000,
    timeoutMs: 5_000,
    ...options,
  });
  const answers: DiscoveryAnswer[] = [];
  src.subscribe((a) => answers.push(a));
  return { clock, src, calls: s.calls, answers };
}

const A = ['http://10.0.0.1:80'];
const B = ['http://10.0.0.2:80'];

describe('PollingDiscovery', () => {
  it('polls on start, then after the TTL clamped to [minRefreshMs, maxRefreshMs]', async () => {
    const { clock, src, calls, answers } = source([
      { endpoints: A, ttlMs: 200 },
      { endpoints: B, ttlMs: 3_600_000 },
      { endpoints: A, ttlMs: 2_500 },
    ]);
    src.start();
    await src.settled();
    expect(calls).toHaveLength(1);
    expect(answers).toEqual([{ ok: true, endpoints: A }]);
    expect(src.lastTtlMs).toBe(200);
    expect(src.nextRefreshAt).toBe(1_000);

    await clock.advanceAsync(999);
    expect(calls).toHaveLength(1);
    await clock.advanceAsync(1);
    await src.settled();
    expect(calls).toHaveLength(2);
    expect(src.nextRefreshAt).toBe(1_000 + 60_000);

    await clock.advanceAsync(60_000);
    await src.settled();
    expect(calls).toHaveLength(3);
    expect(src.nextRefreshAt).toBe(61_000 + 2_500);
    expect(answers.map((a) => (a.ok ? a.endpoints : 'error'))).toEqual([A, B, A]);
    await src.close();
  });

  it('uses intervalMs when an answer has no TTL', async () => {
    const { clock, src, calls } = source([A]);
    src.start();
    await src.settled();
    expect(src.nextRefreshAt).toBe(10_000);
    await clock.advanceAsync(10_000);
    await src.settled();
    expect(calls).toHaveLength(2);
    await src.close();
  });

  it('retries failed and empty answers after minRefreshMs, doubling up to maxRefreshMs, and resets after a good one', async () => {
    const boom = new Error('registry down');
    const { clock, src, answers } = source([boom, [], boom, boom, boom, boom, A, boom], {
      maxRefreshMs: 10_000,
    });
    src.start();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      await src.settled();
      const due = src.nextRefreshAt!;
      delays.push(due - clock.now());
      if (i < 7) await clock.advanceAsync(due - clock.now());
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000, 1_000]);
    expect(answers.map((a) => (a.ok ? a.endpoints.length : 'fail'))).toEqual([
      'fail',
      0,
      'fail',
      'fail',
      'fail',
      'fail',
      1,
      'fail',
    ]);
    expect((answers[0] as { error: unknown }).error).toBe(boom);
    expect(src.consecutiveMisses).toBe(1);
    await src.close();
  });

  it('fails a poll that outlives timeoutMs and aborts its signal', async () => {
    const { clock, src, calls, answers } = source(['hang', A]);
    src.start();
    await clock.advanceAsync(4_999);
    expect(answers).toEqual([]);
    await clock.advanceAsync(1);
    await src.settled();
    expect(calls[0]!.aborted).toBe(true);
    expect(answers).toHaveLength(1);
    const failure = answers[0] as { ok: false; error: LoadBalancerError };
    expect(failure.ok).toBe(false);
    expect(failure.error).toBeInstanceOf(LoadBalancerError);
    expect(failure.error.code).toBe('LB_DISCOVERY_TIMEOUT');
    expect(failure.error).toBeInstanceOf(DiscoveryError);
    expect((failure.error as DiscoveryError).reason).toBe('timeout');
    expect(calls[0]!.reason).toBe(failure.error);
    await src.close();
  });

  it('coalesces refresh() calls while a poll runs and reschedules after a manual refresh', async () => {
    const { clock, src, calls } = source([A]);
    src.start();
    const p1 = src.refresh();
    const p2 = src.refresh();
    expect(p1).toBe(p2);
    await p1;
    expect(calls).toHaveLength(1);
    await clock.advanceAsync(4_000);
    await src.refresh();
    expect(calls).toHaveLength(2);
    expect(src.nextRefreshAt).toBe(14_000);
    expect(clock.pendingTimers()).toBe(1);
    await src.close();
  });

  it('reports a malformed poll result as a failure', async () => {
    const { src, answers } = source([{ nope: true } as unknown as PollResult]);
    src.start();
    await src.settled();
    expect(answers).toHaveLength(1);
    expect((answers[0] as { error: unknown }).error).toBeInstanceOf(LoadBalancerConfigError);
    await src.close();
  });

  it('close() stops the schedule, aborts a running poll and publishes nothing after', async () => {
    const { clock, src, calls, answers } = source(['hang']);
    src.start();
    await clock.advanceAsync(10);
    expect(clock.pendingTimers()).toBe(1);
    await src.close();
    expect(calls[0]!.aborted).toBe(true);
    await src.settled();
    expect(clock.pendingTimers()).toBe(0);
    await clock.advanceAsync(120_000);
    expect(calls).toHaveLength(1);
    expect(answers).toEqual([]);
    await expect(src.refresh()).resolves.toBeUndefined();
    expect(() => src.start()).toThrow(PoolClosedError);
  });

  it('every timer it sets is unref’d', async () => {
    const { clock, src } = source([A]);
    src.start();
    await src.settled();
    expect(clock.pendingTimers()).toBe(1);
    expect(clock.refedTimers()).toBe(0);
    await src.close();
  });

  it('rejects bad options with LoadBalancerConfigError naming the field', () => {
    const poll = () => Promise.resolve(A);
    const cases: [() => unknown, string][] = [
      [() => new PollingDiscovery({}), 'PollingDiscoveryOptions.poll'],
      [() => new PollingDiscovery({ poll, minRefreshMs: 0 }), 'minRefreshMs'],
      [() => new PollingDiscovery({ poll, minRefreshMs: 10, maxRefreshMs: 5 }), 'maxRefreshMs'],
      [() => new PollingDiscovery({ poll, intervalMs: Number.NaN }), 'intervalMs'],
      [() => new PollingDiscovery({ poll, timeoutMs: -1 }), 'timeoutMs'],
      [() => new PollingDiscovery({ poll, clock: {} as ManualClock }), 'clock'],
      [
        () => new PollingDiscovery({ poll, every: 1 } as PollingDiscoveryOptions),
        'PollingDiscoveryOptions.every',
      ],
    ];
    expectConfigErrors(cases);
  });

  it('drives a pool through a binding: the last good set survives failures', async () => {
    const boom = new Error('down');
    const clock = new ManualClock();
    const s = scripted([A, boom, [...A, ...B]]);
    const src = new PollingDiscovery({ poll: s.poll, clock, intervalMs: 1_000, minRefreshMs: 500 });
    const pool = new BackendPool({ clock, skew: false });
    const binding = new DiscoveryBinding(pool, src);
    const failures: unknown[] = [];
    binding.on('refresh-failed', (e) => failures.push(e.error));
    binding.start();
    await expect(binding.ready()).resolves.toBe(true);
    expect(pool.backends().map((b) => b.id)).toEqual(['10.0.0.1:80']);
    await clock.advanceAsync(1_000);
    await src.settled();
    expect(failures).toEqual([boom]);
    expect(pool.backends().map((b) => b.id)).toEqual(['10.0.0.1:80']);
    await clock.advanceAsync(500);
    await binding.refresh();
    expect(pool.backends().map((b) => b.id)).toEqual(['10.0.0.1:80', '10.0.0.2:80']);
    await pool.close();
    expect(src.closed).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });
});

describe('BaseDiscovery', () => {
  class Pushed extends BaseDiscovery {
    startCalls = 0;
    closedCalls = 0;
    constructor() {
      super('pushed');
    }
    push(endpoints: readonly BackendSpec[]): void {
      this.publish(endpoints);
    }
    protected override onStart(): void {
      this.startCalls++;
    }
    protected override onClose(): void {
      this.closedCalls++;
    }
  }

  it('hands the last good answer to late subscribers, not an empty one', () => {
    const src = new Pushed();
    src.start();
    src.start();
    expect(src.startCalls).toBe(1);
    expect(src.started).toBe(true);
    src.push(A);
    src.push([]);
    const seen: DiscoveryAnswer[] = [];
    const unsubscribe = src.subscribe((a) => seen.push(a));
    expect(seen).toEqual([{ ok: true, endpoints: A }]);
    expect(src.lastEndpoints).toEqual(A);
    unsubscribe();
    src.push(B);
    expect(seen).toHaveLength(1);
  });

  it('closes once, and publishes nothing afterwards', async () => {
    const src = new Pushed();
    const seen: DiscoveryAnswer[] = [];
    src.subscribe((a) => seen.push(a));
    src.start();
    await Promise.all([src.close(), src.close()]);
    expect(src.closedCalls).toBe(1);
    src.push(A);
    expect(seen).toEqual([]);
    expect(() => src.start()).toThrow(PoolClosedError);
  });
});

describe('StaticDiscovery', () => {
  it('publishes only once started, and again on set() and refresh()', async () => {
    const src = new StaticDiscovery(A, { name: 'cfg' });
    const seen: DiscoveryAnswer[] = [];
    src.subscribe((a) => seen.push(a));
    src.set(B);
    expect(seen).toEqual([]);
    src.start();
    expect(seen).toEqual([{ ok: true, endpoints: B }]);
    await src.refresh();
    expect(seen).toHaveLength(2);
    expect(src.name).toBe('cfg');
    expect(src.endpoints).toEqual(B);
  });
});
