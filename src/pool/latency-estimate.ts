import { LoadBalancerConfigError } from '../errors/config-error.js';

/** How a backend's latency estimate comes down after a peak. @internal */
export interface LatencyDecay {
  /** Time constant, in ms: the estimate falls by a factor e over this long (Finagle's `decayTime`). */
  readonly ms: number;
  /**
   * Successful calls that bring a peak down by a factor e however quickly they come;
   * `Infinity` leaves the decay to time alone, as in Finagle.
   */
  readonly calls: number;
  /**
   * The most weight the estimate keeps against a successful call's sample: e^(−1/calls), 1 for
   * `Infinity`.
   */
  readonly callKeep: number;
}

/** The decay of a pool's latency estimates, with its per-call weight computed once. @internal */
export function latencyDecay(ms: number, calls: number): LatencyDecay {
  return { ms, calls, callKeep: Math.exp(-1 / calls) };
}

/** The pool's mutable latency fields of one backend. @internal */
export interface LatencyFields {
  latencyEwma: number;
  latencyStamp: number;
}

/**
 * Folds one latency sample into a backend's peak-sensitive EWMA (Finagle's `PeakEwma` metric,
 * finagle-core/.../loadbalancer/PeakEwma.scala `observe`): a sample above the estimate replaces
 * it at once; a lower one pulls it down with weight 1 − w, where w = e^(−Δt/τ) for the time Δt
 * since the last sample, as in Finagle, but at most e^(−1/calls) for a successful call.
 *
 * Why the second bound: with time alone, every sample on a busy backend weighs almost nothing
 * (1 − e^(−1 ms / 10 s) = 0.0001), so one slow call (a cold connection, a pause of the client's
 * own event loop) holds the estimate up for about τ whatever the thousands of fast calls after
 * it. On loopback sockets that pinned every backend's estimate at its first calls' 50-250 ms for
 * the whole of a benchmark run, above a backend that had really turned slow (40 ms). Failed calls
 * keep time-only weights, so fast failures do not talk a backend's estimate down.
 * @internal
 */
export function observeLatency(
  r: LatencyFields,
  rtt: number,
  now: number,
  ok: boolean,
  decay: LatencyDecay,
): void {
  if (r.latencyEwma === 0 || rtt > r.latencyEwma) {
    r.latencyEwma = rtt;
  } else {
    let w = Math.exp(-Math.max(now - r.latencyStamp, 0) / decay.ms);
    if (ok) w = Math.min(w, decay.callKeep);
    r.latencyEwma = r.latencyEwma * w + rtt * (1 - w);
  }
  r.latencyStamp = now;
}

/** The `latencyDecayCalls` option: an integer >= 1, or `Infinity`. @internal */
export function checkDecayCalls(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Number.POSITIVE_INFINITY) return value;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new LoadBalancerConfigError(
      'latencyDecayCalls',
      value,
      'an integer >= 1, or Infinity for a decay with time only',
    );
  }
  return value;
}
