/**
 * `Retry-After` (RFC 9110 §10.2.3): either delta-seconds or an HTTP-date. Only the three date
 * formats of RFC 9110 §5.6.7 are accepted, because `Date.parse` alone would read strings such as
 * `"-1"` or `"5.5"` as dates.
 */
const DELTA_SECONDS = /^\d+$/;
const IMF_FIXDATE = /^[a-z]{3}, \d{2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/i;
const RFC850_DATE = /^[a-z]{6,9}, \d{2}-[a-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT$/i;
const ASCTIME_DATE = /^[a-z]{3} [a-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/i;

/**
 * Parses a `Retry-After` header value into a wait in milliseconds.
 *
 * @param value The header value (`"120"` or `"Wed, 21 Oct 2015 07:28:00 GMT"`).
 * @param now The current time in ms since the epoch, used for HTTP-dates. Pass your clock's
 *   `now()` (`systemClock.now()` reads epoch milliseconds).
 * @returns The wait in ms (0 for a date in the past), or `undefined` when the value is missing or
 *   malformed (RFC 9110 lets a recipient ignore an invalid field).
 *
 * @example
 * ```ts
 * const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), systemClock.now());
 * lease.release({ ok: false, status: res.status, retryAfterMs });
 * ```
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.trim();
  if (DELTA_SECONDS.test(v)) return Number(v) * 1000;
  let date: number;
  if (IMF_FIXDATE.test(v) || RFC850_DATE.test(v)) date = Date.parse(v);
  // asctime carries no zone; RFC 9110 says it is UTC, and Date.parse would read it as local time.
  else if (ASCTIME_DATE.test(v)) date = Date.parse(`${v} GMT`);
  else return undefined;
  if (Number.isNaN(date) || !Number.isFinite(now)) return undefined;
  return Math.max(0, date - now);
}
