/**
 * A small benchmark harness. Every figure is reported next to a baseline measured in the same
 * run, because the machines are shared and noisy; each figure is the median of several runs.
 */

/** A benchmark section: a title and a markdown body. */
export interface Section {
  title: string;
  body: string;
}

export interface MeasureOptions {
  /** Operations per run. @default 200_000 */
  iterations?: number;
  /** Runs; the median is reported. @default 7 */
  runs?: number;
  /** Warm-up operations before measuring. @default iterations / 4 */
  warmup?: number;
}

/** Sink that keeps results alive so the optimizer cannot drop the measured work. */
export let blackhole: unknown;
export function consume(x: unknown): void {
  blackhole = x;
}

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Percentile (0..100) of a list, nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

/**
 * Nanoseconds per call of `op` (median over runs). `op` receives the iteration index.
 */
export function nsPerOp(op: (i: number) => unknown, options: MeasureOptions = {}): number {
  const iterations = options.iterations ?? 200_000;
  const runs = options.runs ?? 7;
  const warmup = options.warmup ?? Math.ceil(iterations / 4);
  for (let i = 0; i < warmup; i++) consume(op(i));
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) consume(op(i));
    const elapsed = Number(process.hrtime.bigint() - start);
    samples.push(elapsed / iterations);
  }
  return median(samples);
}

/** Async variant: milliseconds per run of `fn`, median over runs. */
export async function msPerRun(fn: () => Promise<unknown>, runs = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
}

/** Formats a number with a sensible precision. */
export function fmt(x: number, digits = 1): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 100) return x.toFixed(0);
  return x.toFixed(digits);
}

/** A markdown table. */
export function table(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
