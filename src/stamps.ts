/**
 * The one rule for time stamps read back from outside this process (a session store record's
 * `createdAt`, a cookie's issue and last-use times, a pool snapshot's `takenAt`): a stamp later
 * than now is not trusted beyond a small allowance for
 * clocks that disagree. Without it a stamp set in the future never grows old, so the session
 * outlives its idle TTL and maximum life, or a snapshot's durations never run out.
 * @internal
 */

/**
 * How far ahead of this process's clock a stamp may be: RFC 7519 §4.1.4 lets readers of time
 * stamps allow "some small leeway, usually no more than a few minutes, to account for clock
 * skew"; one minute covers hosts whose clocks are kept by NTP with room to spare.
 */
export const DEFAULT_CLOCK_SKEW_MS = 60_000;

/**
 * The age of a stamp at `now`, or `undefined` when the stamp lies more than `skewMs` in the
 * future (then it is invalid). A stamp within the allowance counts as age 0.
 */
export function stampAge(at: number, now: number, skewMs: number): number | undefined {
  if (!Number.isFinite(at) || at > now + skewMs) return undefined;
  return Math.max(0, now - at);
}
