import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/health/retry-after.js';

const NOW = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');

describe('parseRetryAfter', () => {
  it.each([
    ['delta-seconds', '120', 120_000],
    ['zero seconds', '0', 0],
    ['surrounding spaces', '  30 ', 30_000],
    ['IMF-fixdate 30 s ahead', 'Wed, 21 Oct 2015 07:28:30 GMT', 30_000],
    ['IMF-fixdate in the past', 'Wed, 21 Oct 2015 07:27:00 GMT', 0],
    ['RFC 850 date', 'Wednesday, 21-Oct-15 07:29:00 GMT', 60_000],
    ['asctime date (read as UTC)', 'Wed Oct 21 07:28:05 2015', 5_000],
    ['asctime with a padded day', 'Thu Oct  1 00:00:00 2015', 0],
  ])('reads %s', (_name, value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });

  it.each([
    ['a negative number', '-1'],
    ['a fraction', '5.5'],
    ['an exponent', '1e3'],
    ['an empty string', ''],
    ['a word', 'soon'],
    ['a date without zone', 'Wed, 21 Oct 2015 07:28:30'],
    ['an impossible date', 'Wed, 99 Oct 2015 07:28:30 GMT'],
    ['null', null],
    ['undefined', undefined],
  ])('ignores %s', (_name, value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });

  it('reads any delta-seconds as that many seconds', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000_000 }), fc.integer(), (seconds, now) => {
        expect(parseRetryAfter(String(seconds), now)).toBe(seconds * 1000);
      }),
      { seed: 42, numRuns: 200 },
    );
  });

  it('reads any HTTP-date relative to the given clock reading', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4_000_000_000 }),
        fc.integer({ min: -86_400, max: 86_400 }),
        (epochSeconds, offsetSeconds) => {
          const date = epochSeconds * 1000;
          const now = date - offsetSeconds * 1000;
          const header = new Date(date).toUTCString();
          expect(parseRetryAfter(header, now)).toBe(Math.max(0, offsetSeconds * 1000));
        },
      ),
      { seed: 42, numRuns: 200 },
    );
  });
});
