/**
 * Jittered exponential back-off, shared by the retry loop of the balanced fetch and by the
 * discovery sources that reconnect. Kept apart from the retry loop so that entries which only
 * reconnect (loadwise/etcd) do not pull in p-retry.
 * @internal
 */
import type { Random } from './random.js';

/**
 * The wait before retry `n` (from 1): Envoy's fully jittered exponential back-off, uniform in
 * [0, (2^n - 1) × base), capped at `max` (Envoy router docs, `x-envoy-max-retries`: default base
 * interval 25 ms, maximum 10 × base). Full jitter spreads retries of many clients apart (AWS
 * Architecture Blog, "Exponential Backoff And Jitter", 2015).
 */
export function backoffDelay(n: number, baseMs: number, maxMs: number, random: Random): number {
  const ceiling = Math.min(maxMs, (2 ** Math.min(n, 30) - 1) * baseMs);
  return Math.floor(random() * ceiling);
}
