import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../src/call/retry-budget.js';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { ManualClock } from '../../src/testing/index.js';

describe('RetryBudget (Finagle defaults: ttl 10 s, 10 retries/s floor, 20%)', () => {
  it('starts with the floor: minRetriesPerSec x ttl retries', () => {
    const budget = new RetryBudget({ clock: new ManualClock() });
    expect(budget.balance()).toBe(100);
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(100);
    expect(budget.balance()).toBe(0);
  });

  it('each call adds percentCanRetry of a retry', () => {
    const budget = new RetryBudget({ minRetriesPerSec: 0, clock: new ManualClock() });
    expect(budget.tryWithdraw()).toBe(false);
    for (let i = 0; i < 50; i++) budget.deposit();
    expect(budget.balance()).toBe(10);
    let granted = 0;
    while (budget.tryWithdraw()) granted++;
    expect(granted).toBe(10);
  });

  it('deposits expire after ttl, withdrawals too', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ minRetriesPerSec: 0, percentCanRetry: 0.5, clock });
    for (let i = 0; i < 10; i++) budget.deposit();
    expect(budget.balance()).toBe(5);
    clock.advance(5000);
    for (let i = 0; i < 4; i++) budget.deposit();
    expect(budget.balance()).toBe(7);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.balance()).toBe(6);
    // The first ten deposits leave the window; the later four and the withdrawal remain.
    clock.advance(5000);
    expect(budget.balance()).toBe(1);
    clock.advance(5000);
    expect(budget.balance()).toBe(0);
    clock.advance(60_000);
    for (let i = 0; i < 2; i++) budget.deposit();
    expect(budget.balance()).toBe(1);
  });

  it('with percentCanRetry 0 only the floor allows retries', () => {
    const budget = new RetryBudget({
      minRetriesPerSec: 1,
      percentCanRetry: 0,
      ttlMs: 2000,
      clock: new ManualClock(),
    });
    for (let i = 0; i < 1000; i++) budget.deposit();
    expect(budget.balance()).toBe(2);
  });

  it('with a vanishing percentCanRetry behaves as Finagle does (withdrawal capped at 2^31 - 1)', () => {
    // 5e-324 made the withdrawal infinite: the balance was NaN and the floor lost.
    const budget = new RetryBudget({
      minRetriesPerSec: 1,
      percentCanRetry: Number.MIN_VALUE,
      ttlMs: 2000,
      clock: new ManualClock(),
    });
    for (let i = 0; i < 1000; i++) budget.deposit();
    expect(budget.balance()).toBe(2);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    expect(budget.balance()).toBe(0);
  });

  it('bounds retries to about 20% of calls plus the floor under sustained failure', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ clock });
    let retries = 0;
    // 1000 calls/s for 30 s, every one of them wanting a retry.
    for (let ms = 0; ms < 30_000; ms++) {
      budget.deposit();
      if (budget.tryWithdraw()) retries++;
      clock.advance(1);
    }
    const perSecond = retries / 30;
    // 20% of 1000 calls/s, plus the floor of 10 retries/s: the reserve is renewed every window.
    expect(perSecond).toBeGreaterThan(205);
    expect(perSecond).toBeLessThanOrEqual(200 + 10 + 1);
  });

  it.each([
    [{ ttlMs: 500 }, 'ttlMs'],
    [{ ttlMs: 61_000 }, 'ttlMs'],
    [{ minRetriesPerSec: -1 }, 'minRetriesPerSec'],
    [{ percentCanRetry: -0.1 }, 'percentCanRetry'],
    [{ percentCanRetry: 1001 }, 'percentCanRetry'],
    [{ clock: {} }, 'clock'],
    [{ nope: 1 }, 'RetryBudgetOptions.nope'],
  ])('rejects %j', (options, field) => {
    let caught: unknown;
    try {
      new RetryBudget(options as never);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(LoadBalancerConfigError);
    expect((caught as LoadBalancerConfigError).field).toBe(field);
  });
});
