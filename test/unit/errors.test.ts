import { describe, expect, it } from 'vitest';
import { describe as describeValue } from '../../src/errors/config-error.js';
import {
  LoadBalancerConfigError,
  LoadBalancerError,
  NoBackendAvailableError,
  PoolClosedError,
  UnknownBackendError,
} from '../../src/index.js';

describe('error classes', () => {
  it.each([
    {
      error: new LoadBalancerConfigError('backends[0].weight', 0, 'a finite number > 0'),
      name: 'LoadBalancerConfigError',
      code: 'LB_CONFIG',
      message: 'Invalid backends[0].weight: expected a finite number > 0, got 0',
    },
    {
      error: new NoBackendAvailableError('all-draining', { draining: 2, healthy: 0 }),
      name: 'NoBackendAvailableError',
      code: 'LB_NO_BACKEND',
      message:
        'No backend available (all-draining: 2 draining): every backend is draining; undrain one or add new backends',
    },
    {
      error: new PoolClosedError(),
      name: 'PoolClosedError',
      code: 'LB_POOL_CLOSED',
      message: 'The pool is closed: create a new one instead of reusing it after close()',
    },
    {
      error: new UnknownBackendError('x', ['a', 'b']),
      name: 'UnknownBackendError',
      code: 'LB_UNKNOWN_BACKEND',
      message:
        'Unknown backend "x": pass the id of a backend the pool holds (host:port, plus the base path, unless you gave an id); it holds: a, b',
    },
  ])('$name has a stable code, a name and a message that says what to do', (t) => {
    expect(t.error).toBeInstanceOf(Error);
    expect(t.error).toBeInstanceOf(LoadBalancerError);
    expect(t.error.name).toBe(t.name);
    expect(t.error.code).toBe(t.code);
    expect(t.error.message).toBe(t.message);
    expect(String(t.error)).toBe(`${t.name}: ${t.message}`);
  });

  it('PoolClosedError is a NoBackendAvailableError with reason pool-closed', () => {
    const e = new PoolClosedError('health checker');
    expect(e).toBeInstanceOf(NoBackendAvailableError);
    expect(e.reason).toBe('pool-closed');
    expect(e.message).toMatch(/^The health checker is closed/);
  });

  it('keeps the cause', () => {
    const cause = new TypeError('Invalid URL');
    const e = new LoadBalancerConfigError('url', 'x', 'a URL', { cause });
    expect(e.cause).toBe(cause);
    expect(new LoadBalancerError('LB_CONFIG', 'm').cause).toBeUndefined();
    expect('cause' in new LoadBalancerError('LB_CONFIG', 'm')).toBe(false);
  });

  it('LoadBalancerConfigError keeps the field and the value', () => {
    const value = { a: 1 };
    const e = new LoadBalancerConfigError('options.retry', value, 'a number');
    expect(e.field).toBe('options.retry');
    expect(e.value).toBe(value);
  });

  it.each([
    ['empty', 'the pool has no backends'],
    ['all-unhealthy', 'every backend is unhealthy or ejected'],
    ['pool-closed', 'the pool was closed'],
  ] as const)('NoBackendAvailableError(%s) gives advice', (reason, advice) => {
    const e = new NoBackendAvailableError(reason);
    expect(e.reason).toBe(reason);
    expect(e.counts).toEqual({});
    expect(e.message.startsWith(`No backend available (${reason}): ${advice}`)).toBe(true);
  });

  it('UnknownBackendError shortens a long list', () => {
    const ids = Array.from({ length: 12 }, (_, i) => `b${i}`);
    expect(new UnknownBackendError('x', ids).message).toBe(
      'Unknown backend "x": pass the id of a backend the pool holds (host:port, plus the base path, unless you gave an id); it holds: b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, ...',
    );
    expect(new UnknownBackendError('x', []).message).toContain('(none)');
  });
});

describe('value rendering in messages', () => {
  it.each<[unknown, string]>([
    ['abc', '"abc"'],
    ['x'.repeat(100), `"${'x'.repeat(77)}..."`],
    [3, '3'],
    [Number.NaN, 'NaN'],
    [true, 'true'],
    [10n, '10'],
    [null, 'null'],
    [undefined, 'undefined'],
    [() => 1, 'a function'],
    [[1, 2], 'an array of length 2'],
    [Symbol('s'), 'Symbol(s)'],
    [{}, 'an object (Object)'],
    [new Map(), 'an object (Map)'],
  ])('%s renders as %s', (value, expected) => {
    expect(describeValue(value)).toBe(expected);
  });
});
