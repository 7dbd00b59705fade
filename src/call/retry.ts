/**
 * The retry loop of the balanced fetch. The only module that imports p-retry: p-retry counts
 * attempts and stops; the decisions (may this failure be retried? is there budget?) and the
 * backoff wait, on the injected clock, are ours. p-retry's own delays are set to 0.
 * @internal
 */
import pRetry, { AbortError } from 'p-retry';

/** Wraps any thrown value so p-retry neither rewrites non-errors nor applies its TypeError rule. */
class Boxed extends Error {
  readonly value: unknown;
  constructor(value: unknown) {
    super('attempt failed');
    this.value = value;
  }
}

/** Marks a failure that must not be retried, whatever retries are left. */
export class FinalFailure {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/** How a retry loop runs. */
export interface RetryLoop<T> {
  /** Retries after the first attempt. */
  readonly retries: number;
  /**
   * Runs attempt `n` (from 1). Throw to fail it; throw a {@link FinalFailure} to stop at once
   * (the loop then rejects with its `error`).
   */
  attempt(n: number): Promise<T>;
  /**
   * Called after attempt `n` failed with `error` while retries are left: resolve `true` once it
   * is time to retry (after any backoff wait), `false` to stop (the loop rejects with `error`).
   * A rejection stops the loop with that rejection.
   */
  beforeRetry(error: unknown, n: number): Promise<boolean> | boolean;
}

const consumeRetry = (): boolean => true;

/**
 * Runs attempts until one succeeds, `beforeRetry` says stop, or retries run out. The first
 * attempt runs directly: most calls succeed at once, and they need no retry machinery (p-retry
 * and its callbacks cost a few microseconds per call). From the first failure on, p-retry runs
 * the retries.
 */
export function runWithRetries<T>(loop: RetryLoop<T>): Promise<T> {
  // A plain chain rather than an async function: this runs for every call, and the frame of an
  // async function is the largest allocation of a call that succeeds at once.
  return loop.attempt(1).then(undefined, (error: unknown) => retryAfterFirst(loop, error));
}

/** After attempt 1 failed with `error`: decides on the first retry, then hands over to p-retry. */
export async function retryAfterFirst<T>(loop: RetryLoop<T>, error: unknown): Promise<T> {
  if (error instanceof FinalFailure) throw error.error;
  if (loop.retries <= 0 || !(await loop.beforeRetry(error, 1))) throw error;
  return retryFrom2(loop);
}

/** Attempts 2 to `retries + 1`, through p-retry. */
async function retryFrom2<T>(loop: RetryLoop<T>): Promise<T> {
  let retry = false;
  try {
    return await pRetry(
      async (n) => {
        try {
          return await loop.attempt(n + 1);
        } catch (error) {
          // p-retry rethrows an AbortError's `originalError` without calling any hook.
          if (error instanceof FinalFailure) throw new AbortError(new Boxed(error.error));
          throw new Boxed(error);
        }
      },
      {
        retries: loop.retries - 1,
        // Waits happen in `beforeRetry`, on the injected clock.
        minTimeout: 0,
        maxTimeout: 0,
        randomize: false,
        onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
          retry = false;
          if (retriesLeft <= 0) return;
          retry = await loop.beforeRetry((error as Boxed).value, attemptNumber + 1);
        },
        shouldRetry: () => retry,
        // Every option p-retry would otherwise default: it copies the options and fills in the
        // missing ones, and on Node 20 growing that copy costs about 20 µs per call; a complete
        // object costs under 2 µs.
        factor: 1,
        maxRetryTime: Number.POSITIVE_INFINITY,
        shouldConsumeRetry: consumeRetry,
        signal: undefined,
        unref: false,
      },
    );
  } catch (error) {
    throw error instanceof Boxed ? error.value : error;
  }
}
