import type { TimerHandle } from '../clock.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { NoBackendAvailableError } from '../errors/no-backend-error.js';
import { BackendPool } from '../pool/backend-pool.js';
import { ManualClock } from '../testing/manual-clock.js';
import { seededRandom } from '../testing/seeded-random.js';
import type { BackendInit, BackendView, FailureKind, Lease, LeaseOutcome } from '../types.js';
import { checkDuration, checkOptions, optNumber } from '../validate.js';
import { simulationCandidates } from './candidates.js';
import {
  type CheckedBackend,
  type CheckedScenario,
  checkCandidates,
  checkScenario,
} from './check-scenario.js';
import { MinHeap, pickRank, sampleLatency, zipfTable } from './distributions.js';
import {
  FAILED,
  LATE,
  OK,
  type RawRun,
  REJECTED,
  summarize,
  TIMED_OUT,
  type Window,
} from './metrics.js';
import type {
  AlgorithmCandidate,
  LatencyModel,
  Scenario,
  SimulateOptions,
  SimulationReport,
} from './types.js';

/** A refused connection (a `down` backend) is reported after this long, as over a LAN. */
const REFUSED_MS = 1;

/**
 * Runs a scenario against each algorithm and reports how each fared.
 *
 * Every run is a discrete-event simulation on its own {@link ManualClock}: calls arrive as the
 * scenario says, each is placed with `pool.acquire()` on a real {@link BackendPool} driven by the
 * real algorithm, is served by a simulated backend (service time, queueing, errors, phases), and
 * releases its lease with the outcome and latency when its answer arrives, or when the client's
 * deadline passes. Nothing waits in real time and no socket is opened.
 *
 * The workload (arrival times, keys, and the random numbers behind service times and errors)
 * comes from one seeded stream consumed the same way whatever the algorithm, so every algorithm
 * faces the same calls; the pool's own randomness comes from a second seeded stream. The same
 * scenario and seed give the same report, figure for figure.
 *
 * @throws {LoadBalancerConfigError} for an invalid scenario or option.
 * @example
 * ```ts
 * import { linkerdScenario, simulate, simulationCandidates } from 'loadwise';
 *
 * const report = await simulate(linkerdScenario(), {
 *   algorithms: simulationCandidates(['round-robin', 'least-connections', 'peak-ewma']),
 *   seed: 7,
 * });
 * for (const r of report.results) console.log(r.name, r.successRate, r.latency.p99);
 * ```
 */
export async function simulate(
  scenario: Scenario,
  options: SimulateOptions = {},
): Promise<SimulationReport> {
  const sc = checkScenario(scenario);
  const o = checkOptions('simulate options', options, ['algorithms', 'seed', 'timelineBucketMs']);
  const candidates =
    o.algorithms === undefined ? simulationCandidates() : checkCandidates(o.algorithms);
  const seed = optNumber('seed', o.seed, sc.seed, { integer: true });
  const bucketOption =
    o.timelineBucketMs === undefined
      ? undefined
      : checkDuration('timelineBucketMs', o.timelineBucketMs, { min: 0, minExclusive: true });
  // Refused before the runs when the duration is known (a run ending by `requests` is checked
  // once its length is).
  const bucketChecked = bucketOption !== undefined && Number.isFinite(sc.durationMs);
  if (bucketChecked) checkBucketCount(sc.durationMs, bucketOption);

  const runs: RawRun[] = [];
  for (const candidate of candidates) runs.push(await runCandidate(sc, candidate, seed));

  const lastArrival = runs[0]!.arrival.at(-1) ?? 0;
  // At least 1 ms: a closed loop bounded by `requests` may send every call at time 0.
  const durationMs = Number.isFinite(sc.durationMs)
    ? sc.durationMs
    : Math.max(1, Math.ceil(lastArrival));
  const timelineBucketMs = bucketOption ?? niceBucket(durationMs / 60);
  if (!bucketChecked) checkBucketCount(durationMs, timelineBucketMs);
  const windows = windowsOf(sc, durationMs);
  const focus = sc.focus ?? sc.backends.find((b) => b.phases.length > 0)?.id;
  const focusBackend = sc.backends.find((b) => b.id === focus);
  return {
    scenario: sc.name,
    description: sc.description,
    seed,
    deadlineMs: sc.deadlineMs,
    cancelAtDeadline: sc.cancelAtDeadline,
    durationMs,
    backendIds: sc.backends.map((b) => b.id),
    focus,
    focusPhases: (focusBackend?.phases ?? [])
      .filter((p) => p.from < durationMs)
      .map((p) => ({
        from: p.from,
        to: Math.min(p.to, durationMs),
        label: p.label ?? defaultLabel(focusBackend!.id, p),
      })),
    timelineBucketMs,
    results: runs.map((run) =>
      summarize(run, {
        backendIds: sc.backends.map((b) => b.id),
        windows,
        bucketMs: timelineBucketMs,
        durationMs,
        keyCount: sc.keys?.count ?? 0,
        memberMs: sc.backends.map((b) =>
          Math.max(0, Math.min(b.leaveAt, durationMs) - Math.min(b.joinAt, durationMs)),
        ),
      }),
    ),
  };
}

function defaultLabel(
  id: string,
  p: {
    down: boolean | undefined;
    errorRate: number | undefined;
    latency: LatencyModel | undefined;
  },
): string {
  if (p.down === true) return `${id} down`;
  if (p.errorRate !== undefined && p.errorRate > 0) return `${id} failing`;
  return `${id} slow`;
}

/** Windows between the changes of the scenario: phase edges, joins and leaves. */
function windowsOf(sc: CheckedScenario, durationMs: number): Window[] {
  const edges = new Set<number>([0, durationMs]);
  const add = (t: number): void => {
    if (t > 0 && t < durationMs) edges.add(t);
  };
  for (const b of sc.backends) {
    add(b.joinAt);
    add(b.leaveAt);
    for (const p of b.phases) {
      add(p.from);
      add(p.to);
    }
  }
  const sorted = [...edges].sort((a, b) => a - b);
  const windows: Window[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const from = sorted[i - 1]!;
    const to = sorted[i]!;
    windows.push({ from, to, label: `${seconds(from)}–${seconds(to)} s` });
  }
  return windows;
}

/**
 * The most timeline buckets a report holds. A bucket of 1e-9 ms over a 600 ms run meant 6e11
 * buckets: the report never came back.
 */
const MAX_BUCKETS = 100_000;

function checkBucketCount(durationMs: number, bucketMs: number): void {
  if (durationMs / bucketMs > MAX_BUCKETS) {
    throw new LoadBalancerConfigError(
      'timelineBucketMs',
      bucketMs,
      `a bucket of at least ${durationMs / MAX_BUCKETS} ms (at most ${MAX_BUCKETS} buckets over the ${durationMs} ms run)`,
    );
  }
}

/** The smallest 1, 2 or 5 × 10^k ms at least `ms` (and at least 1 ms). */
function niceBucket(ms: number): number {
  if (!(ms > 1)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(ms));
  for (const f of [1, 2, 5, 10]) if (f * magnitude >= ms) return f * magnitude;
  return 10 * magnitude;
}

function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** What a backend does at a given time, after its phases are applied. */
interface Behaviour {
  latency: LatencyModel;
  concurrency: number;
  errorRate: number;
  errorLatency: LatencyModel | undefined;
  down: boolean;
}

function behaviourAt(b: CheckedBackend, t: number, out: Behaviour): Behaviour {
  out.latency = b.latency;
  out.concurrency = b.concurrency;
  out.errorRate = b.errorRate;
  out.errorLatency = b.errorLatency;
  out.down = false;
  for (const p of b.phases) {
    if (t < p.from || t >= p.to) continue;
    if (p.latency !== undefined) out.latency = p.latency;
    if (p.concurrency !== undefined) out.concurrency = p.concurrency;
    if (p.errorRate !== undefined) out.errorRate = p.errorRate;
    if (p.errorLatency !== undefined) out.errorLatency = p.errorLatency;
    if (p.down !== undefined) out.down = p.down;
  }
  return out;
}

/** Per-backend server-side state of one run. */
interface ServerState {
  /** Free times of the workers in use (only with a finite concurrency, at some time). */
  readonly workers: MinHeap | undefined;
  /** Completion times of the calls the backend holds (only with a slowdown). */
  readonly holding: MinHeap | undefined;
}

/** Derives the pool's seed from the workload's, so the two streams are independent. */
function poolSeed(seed: number): number {
  return Math.imul(seed ^ 0x5bd1e995, 0x27d4eb2d) ^ 0x165667b1;
}

async function runCandidate(
  sc: CheckedScenario,
  candidate: AlgorithmCandidate,
  seed: number,
): Promise<RawRun> {
  const clock = new ManualClock(0);
  const workload = seededRandom(seed);
  const index = new Map(sc.backends.map((b, i) => [b.id, i]));
  const spec = (b: CheckedBackend): BackendInit => ({
    url: `http://backend-${index.get(b.id)}.simulated`,
    id: b.id,
    weight: b.weight,
    ...(b.zone === undefined ? {} : { zone: b.zone }),
  });
  const algorithm = candidate.create();
  let pool: BackendPool;
  try {
    pool = new BackendPool({
      ...sc.pool,
      ...candidate.pool,
      backends: sc.backends.filter((b) => b.joinAt === 0).map(spec),
      algorithm,
      clock,
      random: seededRandom(poolSeed(seed)),
      name: `simulation:${candidate.name}`,
    });
  } catch (error) {
    // The pool names its own option (`skew.windowMs`); the caller gave it as scenario.pool.
    if (!(error instanceof LoadBalancerConfigError)) throw error;
    const where =
      candidate.pool !== undefined && error.field.split('.')[0]! in candidate.pool
        ? `candidate ${candidate.name}.pool`
        : 'scenario.pool';
    throw error.withFieldPrefix(where);
  }

  const servers: ServerState[] = sc.backends.map((b) => ({
    workers:
      Number.isFinite(b.concurrency) ||
      b.phases.some((p) => p.concurrency !== undefined && Number.isFinite(p.concurrency))
        ? new MinHeap()
        : undefined,
    holding: b.slowdownPerInFlight > 0 ? new MinHeap() : undefined,
  }));
  const keyTable = sc.keys === undefined ? undefined : zipfTable(sc.keys.count, sc.keys.zipf);
  const keyNames = Array.from({ length: sc.keys?.count ?? 0 }, (_, k) => ({ key: `key-${k}` }));
  const run: RawRun = {
    name: candidate.name,
    algorithm: algorithm.name,
    arrival: [],
    backend: [],
    latency: [],
    outcome: [],
    key: [],
    peakInFlight: sc.backends.map(() => 0),
    inFlightAtEnd: 0,
  };
  const seen = new Map<string, BackendView>();
  const asyncErrors: unknown[] = [];
  const ownTimers = new Set<TimerHandle>();
  const later = (fn: () => void, ms: number): void => {
    const handle = clock.setTimeout(() => {
      ownTimers.delete(handle);
      fn();
    }, ms);
    ownTimers.add(handle);
  };

  let started = 0;
  let finished = 0;
  let arrivalsDone = false;
  const allDone = (): boolean => arrivalsDone && finished === started;

  // Membership changes.
  for (const b of sc.backends) {
    if (b.joinAt > 0 && b.joinAt < sc.durationMs) later(() => pool.add(spec(b)), b.joinAt);
    if (Number.isFinite(b.leaveAt) && b.leaveAt < sc.durationMs) {
      // Without draining, remove() takes the backend out synchronously; its calls still finish.
      later(() => {
        pool.remove(b.id, { drain: false }).catch((error: unknown) => asyncErrors.push(error));
      }, b.leaveAt);
    }
  }

  // Active health checks.
  const scratch: Behaviour = {
    latency: 0,
    concurrency: Number.POSITIVE_INFINITY,
    errorRate: 0,
    errorLatency: undefined,
    down: false,
  };
  const health = sc.healthCheck;
  if (health !== undefined) {
    const probe = (): void => {
      const now = clock.now();
      for (const b of sc.backends) {
        if (!pool.has(b.id)) continue;
        pool.reportProbe(b.id, {
          ok: !behaviourAt(b, now, scratch).down,
          source: 'simulator',
          healthyThreshold: health.healthyThreshold,
          unhealthyThreshold: health.unhealthyThreshold,
        });
      }
      if (!allDone()) later(probe, health.intervalMs);
    };
    later(probe, health.intervalMs);
  }

  const closed = sc.clients > 0;
  const stalls = sc.clientStalls;
  /** `t`, or the end of the client stall `t` falls in. */
  const stallEnd = (t: number): number => {
    if (stalls === undefined || t < stalls.everyMs) return t;
    const into = t % stalls.everyMs;
    return into < stalls.ms ? t - into + stalls.ms : t;
  };
  /** How long after `t` the client sees what arrives `ms` after it (exactly `ms` without a stall). */
  const delayedByStall = (t: number, ms: number): number => {
    const seen = stallEnd(t + ms);
    return seen === t + ms ? ms : seen - t;
  };
  const finish = (i: number, lease: Lease, code: number, latency: number, out: LeaseOutcome) => {
    lease.release(out);
    run.latency[i] = latency;
    run.outcome[i] = code;
    finished++;
    if (closed) nextCall(0);
  };

  const serve = (i: number, t: number, keyIndex: number, u1: number, u2: number, uErr: number) => {
    run.arrival.push(t);
    run.key.push(keyIndex);
    let lease: Lease;
    try {
      lease = pool.acquire(keyIndex >= 0 ? keyNames[keyIndex] : undefined);
    } catch (error) {
      if (!(error instanceof NoBackendAvailableError)) throw error;
      run.backend.push(-1);
      run.latency.push(0);
      run.outcome.push(REJECTED);
      finished++;
      // A closed-loop client tries again a moment later rather than at the same instant.
      if (closed) nextCall(1);
      return;
    }
    const view = lease.backend;
    seen.set(view.id, view);
    const bi = index.get(view.id)!;
    if (view.inFlight > run.peakInFlight[bi]!) run.peakInFlight[bi] = view.inFlight;
    run.backend.push(bi);
    run.latency.push(Number.NaN);
    run.outcome.push(-1);

    const b = sc.backends[bi]!;
    const now = behaviourAt(b, t, scratch);
    let answerIn: number;
    let ok: boolean;
    let failure: FailureKind | undefined;
    if (now.down) {
      answerIn = REFUSED_MS;
      ok = false;
      failure = 'connect';
    } else {
      ok = uErr >= now.errorRate;
      failure = ok ? undefined : 'http';
      let service = sampleLatency(ok ? now.latency : (now.errorLatency ?? now.latency), u1, u2);
      const server = servers[bi]!;
      if (server.holding !== undefined) {
        while ((server.holding.peek() ?? Number.POSITIVE_INFINITY) <= t) server.holding.pop();
        service *= 1 + b.slowdownPerInFlight * server.holding.size;
      }
      let start = t;
      if (server.workers !== undefined && Number.isFinite(now.concurrency)) {
        // Fewer workers than before (a phase took some away): the ones that free up first leave,
        // so the calls they serve still finish and new calls wait for the busiest remaining.
        while (server.workers.size > now.concurrency) server.workers.pop();
        if (server.workers.size < now.concurrency) {
          server.workers.push(t + service);
        } else {
          start = Math.max(t, server.workers.peek()!);
          server.workers.replaceTop(start + service);
        }
      }
      server.holding?.push(start + service);
      answerIn = start + service - t;
    }
    // The client sees the answer when it is not stalled.
    answerIn = delayedByStall(t, answerIn);
    if (sc.cancelAtDeadline && answerIn > sc.deadlineMs) {
      const gaveUp = delayedByStall(t, sc.deadlineMs);
      const out: LeaseOutcome = { ok: false, failure: 'timeout', latencyMs: gaveUp };
      clock.setTimeout(() => finish(i, lease, TIMED_OUT, gaveUp, out), gaveUp);
      return;
    }
    const code = !ok ? FAILED : answerIn <= sc.deadlineMs ? OK : LATE;
    const out: LeaseOutcome =
      failure === undefined
        ? { ok, latencyMs: answerIn }
        : { ok, latencyMs: answerIn, failure, ...(failure === 'http' ? { status: 503 } : {}) };
    clock.setTimeout(() => finish(i, lease, code, answerIn, out), answerIn);
  };

  // Open loop: one pending arrival timer at a time, each scheduling the next. Closed loop: each
  // client's next call is scheduled when its previous one ends (`nextCall`).
  const gap = (): number =>
    sc.arrivals === 'poisson' ? (-Math.log(1 - workload()) * 1000) / sc.rate : 1000 / sc.rate;
  let nextAt = closed ? 0 : gap();
  const scheduleArrival = (): void => {
    if (started >= sc.requests || nextAt >= sc.durationMs) {
      arrivalsDone = true;
      return;
    }
    clock.setTimeout(arrive, stallEnd(nextAt) - clock.now());
  };
  function nextCall(delay: number): void {
    const at = stallEnd(clock.now() + delay);
    if (started >= sc.requests || at >= sc.durationMs) {
      arrivalsDone = true;
      return;
    }
    clock.setTimeout(arrive, at - clock.now());
  }
  const arrive = (): void => {
    // Two closed-loop clients may both have been scheduled for the last call.
    if (started >= sc.requests) {
      arrivalsDone = true;
      return;
    }
    const t = clock.now();
    const i = started++;
    // Always the same draws in the same order, whatever the algorithm does with the call.
    const keyIndex = keyTable === undefined ? -1 : pickRank(keyTable, workload());
    const u1 = 1 - workload();
    const u2 = workload();
    const uErr = workload();
    if (!closed) {
      // After a stall, the arrivals due during it follow one another at its end, each on the
      // schedule it had; without stalls the schedule runs from each arrival's own time.
      nextAt = (stalls === undefined ? t : nextAt) + gap();
      scheduleArrival();
    }
    serve(i, t, keyIndex, u1, u2, uErr);
  };

  let teardown: (() => unknown) | undefined;
  try {
    const attached: unknown = candidate.setup?.(pool);
    if (typeof attached === 'function') teardown = attached as () => unknown;
    const settle = candidate.setup !== undefined;
    if (closed) for (let k = 0; k < sc.clients; k++) nextCall(0);
    else scheduleArrival();
    // Every placed call holds exactly one pending timer until it ends, so the queue empties only
    // once every call has ended.
    while (!allDone()) {
      const due = clock.nextDue();
      if (due === undefined) break;
      clock.advance(Math.max(0, due - clock.now()));
      if (settle) await letCallbacksRun();
      if (asyncErrors.length > 0) throw asyncErrors[0];
    }
    for (const view of seen.values()) run.inFlightAtEnd += view.inFlight;
  } finally {
    for (const handle of ownTimers) clock.clearTimeout(handle);
    ownTimers.clear();
    teardown?.();
    await pool.close();
  }
  if (asyncErrors.length > 0) throw asyncErrors[0];
  return run;
}

/** Lets chains of already-resolved promise callbacks run (components attached by a setup). */
async function letCallbacksRun(): Promise<void> {
  for (let k = 0; k < 8; k++) await Promise.resolve();
}
