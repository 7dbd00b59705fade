/**
 * A small benchmark harness. Every figure is reported next to a baseline measured in the same
 * run, because the machines are shared and noisy; each figure is the median of several runs.
 */
import { execFile, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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

/** A timed loop: runs its operation `iterations` times. */
export type Loop = (iterations: number) => void;

/** Nanoseconds of CPU time (user + system) that `loop(iterations)` takes. */
export function cpuTime(loop: Loop, iterations: number): number {
  const start = process.cpuUsage();
  loop(iterations);
  const d = process.cpuUsage(start);
  return (d.user + d.system) * 1000;
}

/** Nanoseconds of wall-clock time that `loop(iterations)` takes. */
export function wallTime(loop: Loop, iterations: number): number {
  const start = process.hrtime.bigint();
  loop(iterations);
  return Number(process.hrtime.bigint() - start);
}

/**
 * Iterations that make one run of `loop` last about `runMs` as `time` measures it: starting at
 * 10 000 and growing ×4 until a run takes a quarter of that; at least 1000.
 */
export function calibrate(
  loop: Loop,
  runMs: number,
  time: (loop: Loop, iterations: number) => number,
): number {
  loop(10_000);
  let iterations = 10_000;
  for (;;) {
    const ms = time(loop, iterations) / 1e6;
    if (ms >= runMs / 4 || iterations >= 1e8) {
      return Math.max(1000, Math.round((iterations * runMs) / Math.max(ms, 0.01)));
    }
    iterations *= 4;
  }
}

const execFileAsync = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs `job` in a child process (`node [...nodeArgs] --import tsx <file> worker <job as JSON>`,
 * from the repository root) and returns the result the child printed last, as JSON (see
 * {@link workerJob}). A child that fails gives `onError(first line of the error)`.
 */
export async function inChild<R>(
  file: string,
  job: unknown,
  onError: (message: string) => R,
  nodeArgs: readonly string[] = [],
): Promise<R> {
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      [...nodeArgs, '--import', 'tsx', file, 'worker', JSON.stringify(job)],
      { cwd: ROOT, maxBuffer: 1 << 20 },
    );
    return JSON.parse(stdout.trim().split('\n').pop() ?? '') as R;
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n')[0] : undefined;
    return onError(message ?? 'failed');
  }
}

/**
 * In a child that {@link inChild} started on `file`: the job it was given (the child then prints
 * its result as one line of JSON). `undefined` in the parent, and in any other module.
 */
export function workerJob<J>(file: string): J | undefined {
  if (process.argv[2] !== 'worker' || process.argv[1] !== file) return undefined;
  return JSON.parse(process.argv[3] ?? '{}') as J;
}

/** How to start a pinned process: run `command` with `prefix` before node's own arguments. */
export interface Pinning {
  readonly command: string;
  readonly prefix: readonly string[];
  /** The CPU, for the report. */
  readonly cpu: number;
}

let tasksetWorks: boolean | undefined;

/**
 * Where a process of a client-server benchmark runs: servers on the first CPU, measured clients
 * on the last, through `taskset` (util-linux), when the machine has two CPUs or more and
 * `taskset` works; `undefined` otherwise (the process then goes where the scheduler puts it).
 *
 * Why: on the 2-vCPU machines these benchmarks run on, the same client process took about 1.65x
 * the CPU time per call on one vCPU as on the other (a dispatcher call without sockets, 0.87 µs
 * on one and 1.45 µs on the other, `taskset -c N`), and an unpinned process lands on either for
 * its whole life. Two contenders compared in one run then differ by where they landed, and the
 * ratios between them swung by more than 10% from run to run. Pinned, every client runs on the
 * same CPU, and the server never competes with it.
 */
export function pinning(role: 'server' | 'client'): Pinning | undefined {
  const cpus = availableParallelism();
  if (cpus < 2) return undefined;
  tasksetWorks ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  if (!tasksetWorks) return undefined;
  const cpu = role === 'server' ? 0 : cpus - 1;
  return { command: 'taskset', prefix: ['-c', String(cpu), process.execPath], cpu };
}

/** Says where the processes ran, for a benchmark's text. */
export function pinningNote(): string {
  const client = pinning('client');
  return client === undefined
    ? 'Processes were not pinned to CPUs (`taskset` unavailable or a single CPU).'
    : `The backends run pinned to CPU 0 and every client to CPU ${client.cpu} (\`taskset\`), so ` +
        'that no contender gains or loses by the CPU it lands on (see `pinning()` in bench/harness.ts).';
}
