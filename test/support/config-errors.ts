/**
 * Table-driven checks of input validation: each call must throw a `LoadBalancerConfigError`
 * naming the expected field.
 */
import { expect } from 'vitest';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';

/** Expects every `fn` to throw a `LoadBalancerConfigError` whose `field` is `field`. */
export function expectConfigErrors(cases: readonly (readonly [() => unknown, string])[]): void {
  for (const [fn, field] of cases) {
    let caught: unknown;
    try {
      fn();
    } catch (error) {
      caught = error;
    }
    expect(caught, field).toBeInstanceOf(LoadBalancerConfigError);
    expect((caught as LoadBalancerConfigError).field).toBe(field);
  }
}

/** The `LoadBalancerConfigError` that `fn` throws; fails the test when it throws nothing else. */
export function configError(fn: () => unknown): LoadBalancerConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    return error as LoadBalancerConfigError;
  }
  throw new Error('expected a LoadBalancerConfigError');
}
