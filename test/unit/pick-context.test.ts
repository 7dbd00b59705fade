/**
 * The pick context of an attempt from a client's `key` and `context` hooks, one rule for the
 * balanced fetch and the undici dispatcher.
 */
import { describe, expect, it } from 'vitest';
import { attemptContext } from '../../src/call/pick-context.js';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';

/** A source whose request is 'x'. */
const x = { hookRequest: () => 'x' };

describe('attemptContext', () => {
  it('without hooks: nothing on the first attempt, the tried backends excluded after', () => {
    const none = { key: undefined, context: undefined };
    let read = 0;
    const request = {
      hookRequest: () => {
        read++;
        return 'req';
      },
    };
    expect(attemptContext(none, request, 'request', 1, [])).toBeUndefined();
    expect(attemptContext(none, request, 'request', 2, ['a'])).toEqual({ exclude: ['a'] });
    expect(read).toBe(0);
  });

  it('merges the key, the hook and the tried backends; a pin to a tried backend is dropped', () => {
    const hooks = {
      key: (r: string) => `k-${r}`,
      context: () => ({ exclude: ['b'], affinity: { id: 'a' } }),
    };
    expect(attemptContext(hooks, x, 'options', 2, ['a'])).toEqual({
      key: 'k-x',
      exclude: ['b', 'a'],
    });
  });

  it('waits for an async hook only when it returns a promise', async () => {
    const hooks = { key: undefined, context: async () => ({ key: 'late' }) };
    const ctx = attemptContext(hooks, x, 'request', 1, []);
    expect(ctx).toBeInstanceOf(Promise);
    await expect(ctx).resolves.toEqual({ key: 'late' });
  });

  it('refuses a key that is not a string and a context that is not an object, naming the hook', () => {
    const badKey = { key: () => 42 as unknown as string, context: undefined };
    expect(() => attemptContext(badKey, x, 'options', 1, [])).toThrow(LoadBalancerConfigError);
    expect(() => attemptContext(badKey, x, 'options', 1, [])).toThrow(/key\(options\)/);
    const badContext = { key: undefined, context: () => 'sticky' as never };
    expect(() => attemptContext(badContext, x, 'request', 1, [])).toThrow(/context\(request\)/);
  });
});
