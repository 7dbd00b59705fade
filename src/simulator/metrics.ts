import type {
  AlgorithmResult,
  BackendResult,
  LatencySummary,
  TimelineBucket,
  WindowResult,
} from './types.js';

/** Outcome codes of a call in a {@link RawRun}. @internal */
export const OK = 0;
/** @internal */
export const LATE = 1;
/** @internal */
export const TIMED_OUT = 2;
/** @internal */
export const FAILED = 3;
/** @internal */
export const REJECTED = 4;

/**
 * Everything recorded about one run, one entry per call in arrival order.
 * @internal
 */
export interface RawRun {
  readonly name: string;
  readonly algorithm: string;
  /** Arrival time of each call. */
  readonly arrival: number[];
  /** Index of the backend that took each call, -1 when it was rejected. */
  readonly backend: number[];
  /** Latency the client saw (0 for a rejected call). */
  readonly latency: number[];
  /** Outcome code of each call. */
  readonly outcome: number[];
  /** Key index of each call, -1 without keys. */
  readonly key: number[];
  readonly peakInFlight: number[];
  inFlightAtEnd: number;
}

/** A stretch of the run to report on. @internal */
export interface Window {
  readonly from: number;
  readonly to: number;
  readonly label: string;
}

/** @internal */
export interface SummaryContext {
  readonly backendIds: readonly string[];
  readonly windows: readonly Window[];
  readonly bucketMs: number;
  readonly durationMs: number;
  readonly keyCount: number;
  /** How long each backend was in the pool during the run, in ms. */
  readonly memberMs: readonly number[];
}

/** Turns the record of a run into its figures. @internal */
export function summarize(run: RawRun, ctx: SummaryContext): AlgorithmResult {
  const n = run.arrival.length;
  const nb = ctx.backendIds.length;
  const counts = [0, 0, 0, 0, 0];
  const requests = new Array<number>(nb).fill(0);
  const failures = new Array<number>(nb).fill(0);
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const code = run.outcome[i]!;
    counts[code]!++;
    const b = run.backend[i]!;
    if (b < 0) continue;
    requests[b]!++;
    if (code !== OK) failures[b]!++;
    latencies.push(run.latency[i]!);
  }
  const placed = n - counts[REJECTED]!;
  const backends: BackendResult[] = ctx.backendIds.map((id, b) => ({
    id,
    requests: requests[b]!,
    share: placed === 0 ? 0 : requests[b]! / placed,
    failures: failures[b]!,
    peakInFlight: run.peakInFlight[b]!,
  }));
  return {
    name: run.name,
    algorithm: run.algorithm,
    requests: n,
    succeeded: counts[OK]!,
    successRate: n === 0 ? 0 : counts[OK]! / n,
    outcomes: {
      ok: counts[OK]!,
      late: counts[LATE]!,
      timedOut: counts[TIMED_OUT]!,
      failed: counts[FAILED]!,
      rejected: counts[REJECTED]!,
    },
    latency: latencySummary(latencies),
    backends,
    skew: skewOf(requests, run.peakInFlight, ctx.memberMs),
    windows: windowResults(run, ctx),
    keyChurn: ctx.keyCount > 0 ? keyChurn(run, ctx.keyCount) : undefined,
    timeline: timeline(run, ctx),
    inFlightAtEnd: run.inFlightAtEnd,
  };
}

/** Nearest-rank percentile of sorted values (p in 0..100). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

function latencySummary(values: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
  };
}

/**
 * Load skew over the backends that were in the pool at some point: max/mean of request rates
 * while a member (so a backend that joined late is not counted as idle), and of peak in-flight.
 */
function skewOf(
  requests: readonly number[],
  peaks: readonly number[],
  memberMs: readonly number[],
): { requests: number; peakInFlight: number } {
  const rates: number[] = [];
  const members: number[] = [];
  for (let b = 0; b < requests.length; b++) {
    if (memberMs[b]! <= 0) continue;
    rates.push(requests[b]! / memberMs[b]!);
    members.push(peaks[b]!);
  }
  return { requests: maxOverMean(rates), peakInFlight: maxOverMean(members) };
}

/** max/mean of a list (NaN when every value is 0). @internal */
export function maxOverMean(xs: readonly number[]): number {
  let max = 0;
  let sum = 0;
  for (const x of xs) {
    sum += x;
    if (x > max) max = x;
  }
  return sum === 0 ? Number.NaN : max / (sum / xs.length);
}

function windowResults(run: RawRun, ctx: SummaryContext): WindowResult[] {
  const nb = ctx.backendIds.length;
  const results: WindowResult[] = [];
  let previousShare: number[] | undefined;
  let previousLast: Int32Array | undefined;
  let i = 0;
  const n = run.arrival.length;
  for (const [wi, w] of ctx.windows.entries()) {
    const lastWindow = wi === ctx.windows.length - 1;
    const counts = new Array<number>(nb).fill(0);
    let requests = 0;
    let succeeded = 0;
    let placed = 0;
    const first = ctx.keyCount > 0 ? new Int32Array(ctx.keyCount).fill(-1) : undefined;
    const last = ctx.keyCount > 0 ? new Int32Array(ctx.keyCount).fill(-1) : undefined;
    // Calls are recorded in arrival order, so each window is one contiguous slice.
    while (i < n && (lastWindow || run.arrival[i]! < w.to)) {
      requests++;
      if (run.outcome[i] === OK) succeeded++;
      const b = run.backend[i]!;
      if (b >= 0) {
        counts[b]!++;
        placed++;
        const k = run.key[i]!;
        if (k >= 0 && first !== undefined && last !== undefined) {
          if (first[k] === -1) first[k] = b;
          last[k] = b;
        }
      }
      i++;
    }
    const share = counts.map((c) => (placed === 0 ? 0 : c / placed));
    let moved = 0;
    if (previousShare !== undefined) {
      for (let b = 0; b < nb; b++) moved += Math.abs(share[b]! - previousShare[b]!);
      moved /= 2;
    }
    let keysMoved: number | undefined;
    if (previousLast !== undefined && first !== undefined) {
      let both = 0;
      let changed = 0;
      for (let k = 0; k < ctx.keyCount; k++) {
        if (previousLast[k] === -1 || first[k] === -1) continue;
        both++;
        if (previousLast[k] !== first[k]) changed++;
      }
      keysMoved = both === 0 ? 0 : changed / both;
    }
    results.push({
      label: w.label,
      from: w.from,
      to: w.to,
      requests,
      successRate: requests === 0 ? 0 : succeeded / requests,
      share: Object.fromEntries(ctx.backendIds.map((id, b) => [id, share[b]!])),
      moved,
      keysMoved,
    });
    previousShare = share;
    previousLast = last;
  }
  return results;
}

function keyChurn(run: RawRun, keyCount: number): number {
  const previous = new Int32Array(keyCount).fill(-1);
  let repeated = 0;
  let changed = 0;
  for (let i = 0; i < run.arrival.length; i++) {
    const k = run.key[i]!;
    const b = run.backend[i]!;
    if (k < 0 || b < 0) continue;
    if (previous[k] !== -1) {
      repeated++;
      if (previous[k] !== b) changed++;
    }
    previous[k] = b;
  }
  return repeated === 0 ? 0 : changed / repeated;
}

function timeline(run: RawRun, ctx: SummaryContext): TimelineBucket[] {
  const count = Math.max(1, Math.ceil(ctx.durationMs / ctx.bucketMs));
  const buckets = Array.from({ length: count }, (_, j) => ({
    from: j * ctx.bucketMs,
    requests: 0,
    succeeded: 0,
    byBackend: new Array<number>(ctx.backendIds.length).fill(0),
  }));
  for (let i = 0; i < run.arrival.length; i++) {
    const j = Math.min(count - 1, Math.floor(run.arrival[i]! / ctx.bucketMs));
    const bucket = buckets[j]!;
    bucket.requests++;
    if (run.outcome[i] === OK) bucket.succeeded++;
    const b = run.backend[i]!;
    if (b >= 0) bucket.byBackend[b]!++;
  }
  return buckets;
}
