/**
 * The socket-fault scenarios of the reliability suite, as data: each runs the balanced fetch over
 * three real fault servers on 127.0.0.1 (see fault-servers.ts), with a `HealthChecker` and an
 * `OutlierDetector` attached as a user would, injects one fault, checks what the calls got, and
 * checks that traffic spreads over every backend again once the fault is gone.
 *
 * For every call: it ends, with a response or a documented error, and none is lost (every outcome
 * is counted) or hung (each call races a guard timer well past `deadlineMs`); in-flight counts
 * return to 0 once bodies are consumed.
 *
 * Used by test/integration/reliability-faults.test.ts (each scenario a test, every problem a
 * failure) and by scripts/reliability.ts (which prints how many scenarios passed, and the calls
 * hung and lost). Checks are collected as problems rather than thrown, so the script can count.
 * Real time (systemClock), short timeouts.
 */
import { isDeepStrictEqual } from 'node:util';
import { LeastConnections } from '../../src/algorithms/least-connections.js';
import { PowerOfTwoChoices } from '../../src/algorithms/power-of-two-choices.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { systemClock } from '../../src/clock.js';
import { AllAttemptsFailedError } from '../../src/errors/all-attempts-failed-error.js';
import { TimeoutError } from '../../src/errors/timeout-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { BalancedFetch } from '../../src/fetch/types.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import { OutlierDetector } from '../../src/health/outlier-detector.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import type { Algorithm } from '../../src/types.js';
import { type FaultServer, HEALTH_PATH, startFaultServers } from './fault-servers.js';

/** Per-attempt limit on the time to headers. */
export const TIMEOUT_MS = 300;
/** Limit on a whole call, retries and body included. */
export const DEADLINE_MS = 1500;
/** A call still unsettled this long after it started counts as hung (generous: shared CI). */
export const GUARD_MS = DEADLINE_MS + 2500;

export type Outcome =
  /** Headers arrived and the body was read to the end. */
  | { kind: 'response'; status: number; body: string; backend: string }
  /** Headers arrived, then reading the body failed. */
  | { kind: 'body-error'; status: number; backend: string; error: unknown }
  /** The call rejected. */
  | { kind: 'error'; error: unknown }
  /** The guard timer fired first. */
  | { kind: 'hung'; index: number };

/** Collects what did not hold, instead of throwing at the first. */
export class Checks {
  readonly problems: string[] = [];

  ok(condition: boolean, what: string): void {
    if (!condition) this.problems.push(what);
  }

  eq(actual: unknown, expected: unknown, what: string): void {
    if (!isDeepStrictEqual(actual, expected)) {
      this.problems.push(`${what}: expected ${show(expected)}, got ${show(actual)}`);
    }
  }
}

function show(x: unknown): string {
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}

export interface Rig {
  servers: FaultServer[];
  pool: BackendPool;
  fetch: BalancedFetch;
  checker: HealthChecker;
  detector: OutlierDetector;
  /** Backend id of every response the fetch returned. */
  backendOf: WeakMap<Response, string>;
  /** Attempts made, per backend id. */
  attempts: Map<string, number>;
  /** Backend id of server `i`. */
  id(i: number): string;
  /** Calls made, hung and lost so far. */
  readonly tally: { calls: number; hung: number; lost: number };
  readonly checks: Checks;
}

/** Three fault servers, a pool over them, active and passive health checks, a balanced fetch. */
export async function setup(algorithm: Algorithm): Promise<Rig> {
  const servers = await startFaultServers(3);
  const pool = new BackendPool({
    backends: servers.map((s) => s.url),
    algorithm,
    clock: systemClock,
  });
  const checker = new HealthChecker(pool, {
    path: HEALTH_PATH,
    intervalMs: 100,
    timeoutMs: 80,
    healthyThreshold: 1,
    unhealthyThreshold: 2,
  }).start();
  const detector = new OutlierDetector(pool, {
    consecutiveFailures: 3,
    baseEjectionMs: 500,
    intervalMs: 1000,
  });
  const backendOf = new WeakMap<Response, string>();
  const fetch = createBalancedFetch(pool, {
    retries: 2,
    timeoutMs: TIMEOUT_MS,
    deadlineMs: DEADLINE_MS,
    backoffBaseMs: 5,
    backoffMaxMs: 40,
    afterResponse: ({ response, backend }) => {
      backendOf.set(response, backend.id);
    },
  });
  const attempts = new Map<string, number>();
  fetch.events.on('attempt', ({ backend }) => {
    attempts.set(backend.id, (attempts.get(backend.id) ?? 0) + 1);
  });
  const ids = pool.backends().map((b) => b.id);
  return {
    servers,
    pool,
    fetch,
    checker,
    detector,
    backendOf,
    attempts,
    id: (i) => ids[i]!,
    tally: { calls: 0, hung: 0, lost: 0 },
    checks: new Checks(),
  };
}

/** Closes the pool (and with it the checker and detector) and the servers. */
export async function teardown(rig: Rig): Promise<void> {
  await rig.pool.close();
  await Promise.all(rig.servers.map((s) => s.close()));
}

/**
 * Warms up the platform fetch, which loads and compiles itself on first use: that can take longer
 * than an attempt's timeout on a busy machine, and the first scenario would measure it.
 */
export async function warmUp(): Promise<void> {
  const [server] = await startFaultServers(1);
  try {
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        for (let i = 0; i < 15; i++) await (await fetch(server!.url)).text();
      }),
    );
  } finally {
    await server!.close();
  }
}

/** One call, body read to the end, raced against the guard timer. */
async function call(rig: Rig, index: number, init?: RequestInit): Promise<Outcome> {
  const work = (async (): Promise<Outcome> => {
    let res: Response;
    try {
      res = await rig.fetch('/work', init);
    } catch (error) {
      return { kind: 'error', error };
    }
    const backend = rig.backendOf.get(res) ?? '(unknown)';
    try {
      return { kind: 'response', status: res.status, body: await res.text(), backend };
    } catch (error) {
      return { kind: 'body-error', status: res.status, backend, error };
    }
  })();
  let guard: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<Outcome>((resolve) => {
    guard = setTimeout(() => resolve({ kind: 'hung', index }), GUARD_MS);
  });
  try {
    return await Promise.race([work, hung]);
  } finally {
    clearTimeout(guard);
  }
}

interface RunOptions {
  concurrency?: number;
  /** Request init of call `i`. */
  init?: (i: number) => RequestInit | undefined;
  /** Awaited before call `i` is issued (to kill or restart a server mid-run). */
  before?: (i: number) => Promise<void> | void;
}

/** Runs `n` calls, `concurrency` at a time; returns every outcome, in call order. */
export async function run(rig: Rig, n: number, options: RunOptions = {}): Promise<Outcome[]> {
  const outcomes: Outcome[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: options.concurrency ?? 6 }, async () => {
      while (next < n) {
        const i = next++;
        await options.before?.(i);
        outcomes[i] = await call(rig, i, options.init?.(i));
      }
    }),
  );
  const settled = outcomes.filter((o) => o !== undefined);
  const hung = settled.filter((o) => o.kind === 'hung');
  rig.tally.calls += n;
  rig.tally.lost += n - settled.length;
  rig.tally.hung += hung.length;
  // None lost, none hung.
  rig.checks.eq(settled.length, n, 'calls that ended');
  rig.checks.eq(hung.map(describeOutcome), [], 'hung calls');
  // Every lease was released: bodies are consumed or errored, retried attempts discarded.
  expectIdle(rig);
  return outcomes;
}

function expectIdle(rig: Rig): void {
  const stats = rig.pool.stats();
  rig.checks.eq(stats.inFlight, 0, 'calls in flight after the run');
  rig.checks.eq(
    stats.backends.map((b) => b.inFlight),
    stats.backends.map(() => 0),
    'in flight per backend after the run',
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until `done()` holds; throws when it does not. */
export async function until(done: () => boolean, what: string, rig: Rig, ms = 6000): Promise<void> {
  const end = performance.now() + ms;
  while (!done()) {
    if (performance.now() > end) {
      const states = rig.pool.stats().backends.map((b) => `${b.id}=${b.state}`);
      throw new Error(`timed out waiting for ${what} (${states.join(', ')})`);
    }
    await sleep(10);
  }
}

const allHealthy = (rig: Rig) => rig.pool.stats().backends.every((b) => b.state === 'healthy');

/**
 * After the fault: waits until the checks have brought every backend back, then sends 60 calls;
 * all must succeed and each backend must take at least half its fair share.
 */
export async function expectRecovered(rig: Rig): Promise<void> {
  await until(() => allHealthy(rig), 'every backend healthy again', rig);
  const n = 60;
  const outcomes = await run(rig, n, { concurrency: 3 });
  expectAllAnswered(rig, outcomes);
  const ok = responses(outcomes);
  rig.checks.ok(
    ok.every((o) => o.status === 200),
    'every call after recovery answered 200',
  );
  const counts = rig.servers.map((s) => ok.filter((o) => o.body === s.name).length);
  rig.checks.ok(
    counts.every((c) => c >= n / rig.servers.length / 2),
    `every backend took at least half its share after recovery (${counts.join(', ')})`,
  );
}

/** A short rendering for messages. */
export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'response':
      return `${o.status} from ${o.backend}`;
    case 'body-error':
      return `${o.status} from ${o.backend}, body: ${String(o.error)} (${causeCode(o.error)})`;
    case 'error':
      return `${String(o.error)} (${causeCode(o.error)})`;
    case 'hung':
      return `call ${o.index} hung`;
  }
}

/** Every call got its response and read its body. */
function expectAllAnswered(rig: Rig, outcomes: readonly Outcome[]): void {
  rig.checks.eq(
    outcomes.filter((o) => o.kind !== 'response').map(describeOutcome),
    [],
    'calls without a full response',
  );
}

function responses(outcomes: readonly Outcome[]) {
  return outcomes.flatMap((o) => (o.kind === 'response' ? [o] : []));
}

function bodyErrors(outcomes: readonly Outcome[]) {
  return outcomes.flatMap((o) => (o.kind === 'body-error' ? [o] : []));
}

function errors(outcomes: readonly Outcome[]): unknown[] {
  return outcomes.flatMap((o) => (o.kind === 'error' ? [o.error] : []));
}

/** The `code` of an error's cause chain (undici puts the socket's code on `cause`). */
export function causeCode(error: unknown): string | undefined {
  let e = error as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** A body cut short: the platform fetch rejects the read with `TypeError: terminated`. */
function expectBodyCut(rig: Rig, error: unknown, codes: readonly string[]): void {
  rig.checks.ok(
    error instanceof TypeError && error.message === 'terminated',
    `a cut body rejects the read with TypeError: terminated (got ${String(error)})`,
  );
  rig.checks.ok(
    codes.includes(causeCode(error) ?? ''),
    `the cut body's cause is one of ${codes.join(', ')} (got ${causeCode(error)})`,
  );
}

/** The calls during which every server hangs: each ends by its deadline, with a typed error. */
function expectDeadlineErrors(rig: Rig, stuck: readonly Outcome[], started: number): void {
  rig.checks.ok(performance.now() - started < GUARD_MS, 'calls to hanging servers end in time');
  for (const error of errors(stuck)) {
    // Three attempts of 300 ms fit in the 1500 ms deadline, unless the machine is slow.
    if (error instanceof AllAttemptsFailedError) {
      rig.checks.ok(error.attempts.length > 0, 'AllAttemptsFailedError lists its attempts');
      for (const a of error.attempts) {
        rig.checks.eq(a.outcome, 'timeout', 'attempt outcome');
        rig.checks.ok(a.error instanceof TimeoutError, 'attempt error is a TimeoutError');
      }
    } else {
      rig.checks.ok(
        error instanceof TimeoutError && error.scope === 'deadline' && error.code === 'LB_TIMEOUT',
        `a call past its deadline rejects with TimeoutError (deadline), got ${String(error)}`,
      );
    }
  }
  rig.checks.eq(errors(stuck).length, stuck.length, 'calls to hanging servers that failed');
}

export interface FaultScenario {
  readonly name: string;
  readonly algorithm: () => Algorithm;
  /** Injects the fault, makes the calls and checks them; `expectRecovered` runs after. */
  run(rig: Rig): Promise<void>;
}

export const FAULT_SCENARIOS: readonly FaultScenario[] = [
  {
    name: 'connection refused: every call is retried onto a live backend',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      await rig.servers[2]!.kill();
      // Refused connections sent nothing, so even POSTs go to another backend.
      const outcomes = await run(rig, 45, {
        init: (i) => (i % 3 === 0 ? { method: 'POST', body: `order ${i}` } : undefined),
      });
      expectAllAnswered(rig, outcomes);
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200 && o.body !== 's2'),
        'answers come from live backends',
      );
      rig.checks.ok((rig.attempts.get(rig.id(2)) ?? 0) > 0, 'the dead backend was tried');
      rig.checks.eq(
        rig.pool.get(rig.id(2))!.failures,
        rig.attempts.get(rig.id(2)),
        'failures of the dead backend equal its attempts',
      );
      await rig.servers[2]!.restart();
    },
  },
  {
    name: 'reset before headers: GETs are retried, a POST that reached the server fails typed',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      rig.servers[1]!.setMode('reset-before-headers');
      const post = (i: number) => i % 4 === 0;
      const outcomes = await run(rig, 60, {
        init: (i) => (post(i) ? { method: 'POST', body: `order ${i}` } : undefined),
      });
      let postFailures = 0;
      outcomes.forEach((o, i) => {
        if (o.kind === 'response') {
          rig.checks.ok(o.status === 200 && o.body !== 's1', `call ${i} answered by a live server`);
          return;
        }
        // Only a POST may fail, only on s1, and it is never retried.
        const e = o.kind === 'error' ? o.error : undefined;
        rig.checks.ok(
          post(i) &&
            e instanceof AllAttemptsFailedError &&
            e.code === 'LB_ALL_ATTEMPTS_FAILED' &&
            e.attempts.length === 1 &&
            e.attempts[0]!.backend === rig.id(1) &&
            e.attempts[0]!.outcome === 'reset' &&
            /POST is not idempotent/.test(e.stoppedBecause),
          `call ${i} failed as a POST reset by s1 and not retried (got ${describeOutcome(o)})`,
        );
        postFailures++;
      });
      rig.checks.ok(
        (rig.attempts.get(rig.id(1)) ?? 0) > postFailures,
        'GETs reset by s1 were retried elsewhere',
      );
      rig.servers[1]!.setMode('ok');
    },
  },
  {
    name: 'reset after headers: the call gets its response, the body read fails with the reset',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      rig.servers[1]!.setMode('reset-after-headers');
      const outcomes = await run(rig, 60);
      const cut = bodyErrors(outcomes);
      // On a loaded machine the reset may overtake the headers; then the GET is retried instead.
      rig.checks.ok(cut.length > 0, 'some bodies were cut');
      for (const o of cut) {
        rig.checks.ok(o.backend === rig.id(1) && o.status === 200, 'cut bodies come from s1');
        // undici reports the reset itself, or the close that follows it when read first.
        expectBodyCut(rig, o.error, ['ECONNRESET', 'UND_ERR_SOCKET']);
      }
      rig.checks.eq(errors(outcomes).map(String), [], 'calls that rejected');
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200 && o.body !== 's1'),
        'whole answers come from the other servers',
      );
      rig.checks.ok(
        rig.pool.get(rig.id(1))!.failures >= cut.length,
        'each cut body was released as a failure of s1',
      );
      rig.servers[1]!.setMode('ok');
    },
  },
  {
    name: 'one server hangs: its attempts time out and go elsewhere',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      rig.servers[0]!.setMode('hang');
      const outcomes = await run(rig, 30);
      expectAllAnswered(rig, outcomes);
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200 && o.body !== 's0'),
        'answers come from the servers that answer',
      );
      rig.checks.ok(rig.pool.get(rig.id(0))!.failures > 0, 'the hanging server was blamed');
      rig.servers[0]!.setMode('ok');
    },
  },
  {
    name: 'every server hangs: calls end by their deadline with a typed error',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      for (const s of rig.servers) s.setMode('hang');
      const started = performance.now();
      expectDeadlineErrors(rig, await run(rig, 6), started);
      for (const s of rig.servers) s.setMode('ok');
    },
  },
  {
    name: 'slow headers under the timeout: late answers still arrive, the slow server keeps a share',
    algorithm: () => new LeastConnections(),
    async run(rig) {
      rig.servers[2]!.setMode('slow-headers', { delayMs: 60 });
      const outcomes = await run(rig, 30);
      expectAllAnswered(rig, outcomes);
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200),
        'every call answered 200',
      );
      rig.checks.ok(
        responses(outcomes).some((o) => o.body === 's2'),
        'the slow server answered some calls',
      );
      rig.servers[2]!.setMode('ok');
    },
  },
  {
    name: 'slow headers over the timeout: attempts time out and are retried elsewhere',
    algorithm: () => new LeastConnections(),
    async run(rig) {
      rig.servers[2]!.setMode('slow-headers', { delayMs: 3 * TIMEOUT_MS });
      const outcomes = await run(rig, 30);
      expectAllAnswered(rig, outcomes);
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200 && o.body !== 's2'),
        'answers come from the fast servers',
      );
      rig.servers[2]!.setMode('ok');
    },
  },
  {
    name: 'truncated body: the short body fails the read, never the whole fetch',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      rig.servers[0]!.setMode('truncated-body');
      const outcomes = await run(rig, 45);
      const cut = bodyErrors(outcomes);
      rig.checks.ok(cut.length > 0, 'some bodies were cut');
      for (const o of cut) {
        rig.checks.eq(o.backend, rig.id(0), 'backend of a cut body');
        expectBodyCut(rig, o.error, ['UND_ERR_SOCKET']);
      }
      rig.checks.eq(errors(outcomes).map(String), [], 'calls that rejected');
      rig.checks.eq(cut.length + responses(outcomes).length, 45, 'calls answered or cut');
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200 && o.body !== 's0'),
        'whole answers come from the other servers',
      );
      rig.checks.ok(
        rig.pool.get(rig.id(0))!.failures >= cut.length,
        'each cut body was released as a failure of s0',
      );
      rig.servers[0]!.setMode('ok');
    },
  },
  {
    name: '5xx storm: with every backend answering 503, each call returns the last 503',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      for (const s of rig.servers) s.setMode('status', { status: 503 });
      const outcomes = await run(rig, 30);
      const answered = responses(outcomes);
      rig.checks.eq(answered.length, 30, 'calls answered');
      rig.checks.ok(
        answered.every((o) => o.status === 503 && /^s\d 503$/.test(o.body)),
        'every answer is a 503 from a backend',
      );
      for (const s of rig.servers) s.setMode('ok');
    },
  },
  {
    name: '5xx storm with failing probes: the pool routes under its panic rule, never refuses',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      for (const s of rig.servers) s.setMode('status', { status: 503 });
      await until(() => rig.pool.stats().healthy === 0, 'every backend unhealthy', rig);
      rig.checks.ok(rig.pool.panic, 'the pool is in panic');
      const inPanic = await run(rig, 12);
      rig.checks.eq(
        responses(inPanic).map((o) => o.status),
        Array(12).fill(503),
        'statuses under panic',
      );
      for (const s of rig.servers) s.setMode('ok');
    },
  },
  {
    name: 'a backend killed and restarted mid-run: no call is lost, it takes traffic again',
    algorithm: () => new PowerOfTwoChoices(),
    async run(rig) {
      const s1 = rig.servers[1]!;
      let restartedAt = -1;
      const outcomes = await run(rig, 120, {
        before: async (i) => {
          if (i === 30) await s1.kill();
          if (i === 75) {
            await s1.restart();
            restartedAt = i;
          }
        },
      });
      rig.checks.eq(restartedAt, 75, 'restart point');
      // A body on its way when the server died may be cut; everything else is answered.
      for (const o of bodyErrors(outcomes)) {
        rig.checks.ok(
          o.backend === rig.id(1) && o.error instanceof TypeError,
          `only s1's bodies are cut (${describeOutcome(o)})`,
        );
      }
      rig.checks.eq(errors(outcomes).map(String), [], 'calls that rejected');
      rig.checks.ok(
        responses(outcomes).every((o) => o.status === 200),
        'every answer is a 200',
      );
      rig.checks.ok(responses(outcomes).length >= 120 - 6, 'at most 6 bodies cut');
    },
  },
  {
    name: 'every backend down: calls fail with AllAttemptsFailedError, also under panic',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      await Promise.all(rig.servers.map((s) => s.kill()));
      const failed = errors(await run(rig, 12, { concurrency: 4 }));
      rig.checks.eq(failed.length, 12, 'calls that failed');
      for (const error of failed) {
        const e = error as AllAttemptsFailedError;
        rig.checks.ok(
          error instanceof AllAttemptsFailedError &&
            e.code === 'LB_ALL_ATTEMPTS_FAILED' &&
            e.attempts.length > 0 &&
            e.attempts.length <= 3 &&
            e.attempts.every((a) => a.outcome === 'connect') &&
            causeCode(e.cause) === 'ECONNREFUSED',
          `a call to dead backends fails with refused attempts (got ${String(error)})`,
        );
      }
      await until(() => rig.pool.stats().healthy === 0, 'every backend unhealthy', rig);
      // Under panic the pool keeps trying every backend rather than refusing outright.
      const inPanic = errors(await run(rig, 6, { concurrency: 3 }));
      rig.checks.eq(inPanic.length, 6, 'calls that failed under panic');
      rig.checks.ok(
        inPanic.every((e) => e instanceof AllAttemptsFailedError),
        'they fail with AllAttemptsFailedError',
      );
      await Promise.all(rig.servers.map((s) => s.restart()));
    },
  },
  {
    name: 'every backend down, then back: the checker reports it, traffic spreads again',
    algorithm: () => new RoundRobin(),
    async run(rig) {
      const events: string[] = [];
      rig.checker.on('all-unhealthy', () => events.push('all-unhealthy'));
      rig.checker.on('recovered', () => events.push('recovered'));
      await Promise.all(rig.servers.map((s) => s.kill()));
      await until(() => rig.pool.stats().healthy === 0, 'every backend unhealthy', rig);
      await Promise.all(rig.servers.map((s) => s.restart()));
      await until(() => allHealthy(rig), 'every backend healthy again', rig);
      rig.checks.eq(events, ['all-unhealthy', 'recovered'], 'checker events');
    },
  },
];

/** What one scenario measured. */
export interface ScenarioReport {
  readonly name: string;
  readonly problems: readonly string[];
  readonly calls: number;
  readonly hung: number;
  readonly lost: number;
  readonly ms: number;
}

/** Runs one scenario on a fresh rig, then the recovery check, and tears everything down. */
export async function runScenario(scenario: FaultScenario): Promise<ScenarioReport> {
  const started = performance.now();
  const rig = await setup(scenario.algorithm());
  try {
    await scenario.run(rig);
    await expectRecovered(rig);
  } catch (error) {
    rig.checks.problems.push(`stopped: ${String(error)}`);
  } finally {
    await teardown(rig);
  }
  return {
    name: scenario.name,
    problems: rig.checks.problems,
    ...rig.tally,
    ms: Math.round(performance.now() - started),
  };
}
