/**
 * Observability overhead on the pick path (`pool.acquire()` + `lease.release()`, 10 backends,
 * round robin): bare; instrumented with OpenTelemetry's API but no SDK (the no-op meter); with a
 * real MeterProvider and an in-memory exporter; and with `enableDiagnostics()` with and without
 * subscribers.
 *
 * Each variant runs in child processes of its own (`node --import tsx`), so one variant's
 * listeners do not shape the JIT's view of another's pick path; each child also times a bare pool
 * in interleaved runs (same process, same machine load). A child's ratio is the median of its
 * per-pair ratios variant / bare over 15 runs of about 8 ms; each row is the median of 3
 * children. Both on the system clock and on a ManualClock (no clock reads: the cheapest pick
 * path, so the largest ratios).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import * as otel from '@opentelemetry/api';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BackendPool, instrumentPool, RoundRobin } from '../src/index.js';
import { DIAGNOSTICS_CHANNELS, enableDiagnostics } from '../src/node/index.js';
import { ManualClock } from '../src/testing/index.js';
import {
  calibrate,
  fmt,
  type Loop,
  median,
  inChild as runInChild,
  type Section,
  table,
  wallTime,
  workerJob,
} from './harness.js';

const RUNS = 15;
const RUN_MS = 8;
/** Child processes per variant and clock. */
const REPEATS = 3;
const BACKENDS = 10;
/** The target for the instrumented pick path when nobody listens. */
const TARGET_RATIO = 1.1;

const VARIANTS = {
  bare: 'bare (second bare pool: the noise floor)',
  'otel-noop': 'instrumentPool, @opentelemetry/api without SDK (no-op meter)',
  'otel-sdk': 'instrumentPool, SDK MeterProvider + in-memory exporter',
  'otel-sdk-nohist': 'same, `histogram: false`',
  'diag-off': 'enableDiagnostics, no subscriber',
  'diag-on': 'enableDiagnostics, pick + release subscribed',
} as const;
type Variant = keyof typeof VARIANTS;

interface Job {
  variant: Variant;
  manualClock: boolean;
}

interface JobResult {
  base: number;
  ns: number;
  /** Median of the per-pair ratios variant / bare. */
  ratio: number;
  /** What the variant saw while measured (data points, messages), to show it really ran. */
  observed?: number;
  error?: string;
}

const SELF = fileURLToPath(import.meta.url);

function makePool(manualClock: boolean): BackendPool {
  return new BackendPool({
    backends: Array.from({ length: BACKENDS }, (_, i) => `http://10.0.0.${i + 1}:8080`),
    algorithm: new RoundRobin({ startIndex: 0 }),
    skew: false,
    ...(manualClock ? { clock: new ManualClock() } : {}),
  });
}

function pickLoop(pool: BackendPool): Loop {
  return (iterations) => {
    for (let i = 0; i < iterations; i++) pool.acquire().release();
  };
}

/**
 * ns per iteration of `base` and `loop` in interleaved runs (alternating which goes first), and
 * the median of the per-pair ratios, which cancels load bursts that hit both halves of a pair.
 */
function timeLoops(base: Loop, loop: Loop): { base: number; ns: number; ratio: number } {
  // The same count for both, so both see the same allocation and GC pattern per run; sized by
  // the slower of the two, so a slow variant does not stretch the section.
  const nb = Math.min(calibrate(base, RUN_MS, wallTime), calibrate(loop, RUN_MS, wallTime));
  const nl = nb;
  const b: number[] = [];
  const l: number[] = [];
  const ratios: number[] = [];
  const time = (f: Loop, n: number): number => wallTime(f, n) / n;
  for (let r = 0; r < RUNS; r++) {
    let tb: number;
    let tl: number;
    if (r % 2 === 0) {
      tb = time(base, nb);
      tl = time(loop, nl);
    } else {
      tl = time(loop, nl);
      tb = time(base, nb);
    }
    b.push(tb);
    l.push(tl);
    ratios.push(tl / tb);
  }
  return { base: median(b), ns: median(l), ratio: median(ratios) };
}

async function runJob(job: Job): Promise<JobResult> {
  const bare = makePool(job.manualClock);
  const pool = makePool(job.manualClock);
  const cleanup: Array<() => unknown> = [];
  let observed: () => number | Promise<number> = () => 0;
  switch (job.variant) {
    case 'bare':
      break;
    case 'otel-noop': {
      const telemetry = instrumentPool(pool, { api: otel });
      if (await telemetry.ready) throw new Error('expected the no-op meter');
      cleanup.push(() => telemetry.close());
      break;
    }
    case 'otel-sdk':
    case 'otel-sdk-nohist': {
      const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
      const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
      const provider = new MeterProvider({ readers: [reader] });
      const telemetry = instrumentPool(pool, {
        meter: provider.getMeter('bench'),
        histogram: job.variant === 'otel-sdk',
      });
      cleanup.push(
        () => telemetry.close(),
        () => provider.shutdown(),
      );
      observed = async () => {
        await reader.forceFlush();
        let count = 0;
        for (const rm of exporter.getMetrics())
          for (const sm of rm.scopeMetrics)
            for (const m of sm.metrics)
              if (m.descriptor.name === 'loadwise.requests')
                for (const p of m.dataPoints) count += p.value as number;
        return count;
      };
      break;
    }
    case 'diag-off': {
      const handle = enableDiagnostics(pool);
      cleanup.push(() => handle.close());
      break;
    }
    case 'diag-on': {
      const handle = enableDiagnostics(pool);
      let messages = 0;
      const onMessage = (): void => {
        messages++;
      };
      diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.pick, onMessage);
      diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNELS.release, onMessage);
      cleanup.push(
        () => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.pick, onMessage),
        () => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNELS.release, onMessage),
        () => handle.close(),
      );
      observed = () => messages;
      break;
    }
  }
  const timed = timeLoops(pickLoop(bare), pickLoop(pool));
  const seen = await observed();
  for (const f of cleanup) await f();
  await Promise.all([bare.close(), pool.close()]);
  return { ...timed, observed: seen };
}

function inChild(job: Job): Promise<JobResult> {
  return runInChild<JobResult>(SELF, job, (error) => ({
    base: Number.NaN,
    ns: Number.NaN,
    ratio: Number.NaN,
    error,
  }));
}

/** The median of `repeats` children's figures: one child's JIT luck does not decide a row. */
async function measure(job: Job): Promise<JobResult & { spread: [number, number] }> {
  const results: JobResult[] = [];
  for (let i = 0; i < REPEATS; i++) results.push(await inChild(job));
  const error = results.find((r) => r.error !== undefined)?.error;
  const ratios = results.map((r) => r.ratio);
  return {
    base: median(results.map((r) => r.base)),
    ns: median(results.map((r) => r.ns)),
    ratio: median(ratios),
    observed: results[0]?.observed ?? 0,
    spread: [Math.min(...ratios), Math.max(...ratios)],
    ...(error === undefined ? {} : { error }),
  };
}

export default async function observability(): Promise<Section> {
  const rows: string[][] = [];
  const failures: string[] = [];
  for (const [variant, label] of Object.entries(VARIANTS) as Array<[Variant, string]>) {
    const cells: string[] = [label];
    let seen = 0;
    for (const manualClock of [false, true]) {
      const r = await measure({ variant, manualClock });
      if (r.error !== undefined) failures.push(`${variant}: ${r.error}`);
      const quiet = variant === 'otel-noop' || variant === 'diag-off' || variant === 'bare';
      const flag = quiet && r.ratio > TARGET_RATIO ? ' ⚠' : '';
      cells.push(
        `${fmt(r.ns)} ns`,
        `${fmt(r.base)} ns`,
        `${r.ratio.toFixed(2)}×${flag} (${r.spread[0].toFixed(2)}–${r.spread[1].toFixed(2)})`,
      );
      if (!manualClock) seen = r.observed ?? 0;
    }
    cells.push(seen === 0 ? '–' : String(seen));
    rows.push(cells);
  }
  const body = [
    `\`pool.acquire()\` + \`lease.release()\`, ${BACKENDS} backends, round robin. Each variant ` +
      `runs in ${REPEATS} child processes, each timing it against a bare pool in ${RUNS} ` +
      "interleaved runs; a child's ratio is the median of its per-pair ratios, and the table " +
      'shows the median over the children (their range in brackets) and median times. Target ' +
      `when nobody listens: ≤ ${TARGET_RATIO}× (⚠ marks a miss). "seen": requests the SDK ` +
      'counted, or messages the subscribers received, in one system-clock child: the variant ' +
      'really recorded.',
    '',
    table(
      ['variant', 'system clock', 'bare', 'ratio', 'ManualClock', 'bare', 'ratio', 'seen'],
      rows,
    ),
    '',
    'With no SDK registered, `metrics.getMeter()` returns the no-op meter, which is recognized ' +
      'and nothing is attached to the pool; `enableDiagnostics()` attaches a listener only while ' +
      'its channel has subscribers. With an SDK, each release records one histogram point (the ' +
      'SDK hashes the attribute set per call); request and failure counts are read from the ' +
      "pool's own counters at collection time, so `histogram: false` leaves the pick path alone.",
  ];
  if (failures.length > 0) body.push('', `Failed: ${failures.join('; ')}`);
  return { title: 'Observability overhead', body: body.join('\n') };
}

const job = workerJob<Job>(SELF);
if (job !== undefined) console.log(JSON.stringify(await runJob(job)));
