/**
 * Messages built from a failure kind read as English: "an other failure", "a protocol failure".
 */
import { describe, expect, it } from 'vitest';
import {
  AllAttemptsFailedError,
  BackendPool,
  createBalancedFetch,
  RoundRobin,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

async function failWith(error: Error): Promise<AllAttemptsFailedError> {
  const pool = new BackendPool({
    backends: ['http://b1', 'http://b2'],
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock: new ManualClock(),
    random: seededRandom(1),
    skew: false,
  });
  const fetch = createBalancedFetch(pool, {
    fetch: () => Promise.reject(error),
    retries: 2,
    random: seededRandom(2),
  });
  const caught = await fetch('/x').catch((e: unknown) => e);
  await pool.close();
  expect(caught).toBeInstanceOf(AllAttemptsFailedError);
  return caught as AllAttemptsFailedError;
}

describe('failure kinds in messages', () => {
  it.each([
    ['other', new Error('something odd'), 'no retry because an other failure is not retried'],
    [
      'protocol',
      Object.assign(new Error('parse error'), { code: 'HPE_INVALID_CONSTANT' }),
      'no retry because a protocol failure is not retried',
    ],
  ])('kind %s reads with the right article', async (_kind, error, text) => {
    const e = await failWith(error);
    expect(e.message).toContain(text);
    expect(e.message).not.toMatch(/\ba [aeiou]/);
  });
});
