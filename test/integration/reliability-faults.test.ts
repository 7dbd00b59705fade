/**
 * Reliability under faults: the balanced fetch over real servers on 127.0.0.1 that refuse
 * connections, reset before or after the headers, hang, answer slowly, truncate bodies, fail with
 * 5xx, crash and come back, or all go down at once. For every fault:
 * - every call ends, with a response or a documented error (its class and code asserted), and
 *   none is lost (the outcomes are counted) or outlives its deadline (each call races a guard
 *   timer well past `deadlineMs`);
 * - in-flight counts return to 0 once bodies are consumed;
 * - after the fault, traffic spreads over every backend again, with a `HealthChecker` and an
 *   `OutlierDetector` attached as a user would.
 * Real time (systemClock), short timeouts.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
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
import { type FaultServer, HEALTH_PATH, startFaultServers } from '../support/fault-servers.js';

/** Per-attempt limit on the time to headers. */
const TIMEOUT_MS = 300;
/** Limit on a whole call, retries and body included. */
const DEADLINE_MS = 1500;
/** A call still unsettled this long after it started counts as hung (generous: shared CI). */
const GUARD_MS = DEADLINE_MS + 2500;

type Outcome =
  /** Headers arrived and the body was read to the end. */
  | { kind: 'response'; status: number; body: string; backend: string }
  /** Headers arrived, then reading the body failed. */
  | { kind: 'body-error'; status: number; backend: string; error: unknown }
  /** The call rejected. */
  | { kind: 'error'; error: unknown }
  /** The guard timer fired first. */
  | { kind: 'hung'; index: number };

interface Rig {
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
}

const rigs: Rig[] = [];

// The platform fetch loads and compiles itself on first use, which can take longer than an
// attempt's timeout on a busy machine: warm it up so the first test measures faults, not that.
beforeAll(async () => {
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
});

afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    await rig.pool.close();
    await Promise.all(rig.servers.map((s) => s.close()));
  }
});

/** Three fault servers, a pool over them, active and passive health checks, a balanced fetch. */
async function setup(algorithm: Algorithm): Promise<Rig> {
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
  const rig: Rig = {
    servers,
    pool,
    fetch,
    checker,
    detector,
    backendOf,
    attempts,
    id: (i) => ids[i]!,
  };
  rigs.push(rig);
  return rig;
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
async function run(rig: Rig, n: number, options: RunOptions = {}): Promise<Outcome[]> {
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
  // None lost, none hung.
  expect(outcomes.filter((o) => o !== undefined)).toHaveLength(n);
  expect(outcomes.filter((o) => o.kind === 'hung')).toEqual([]);
  // Every lease was released: bodies are consumed or errored, retried attempts discarded.
  expectIdle(rig);
  return outcomes;
}

function expectIdle(rig: Rig): void {
  const stats = rig.pool.stats();
  expect(stats.inFlight).toBe(0);
  expect(stats.backends.map((b) => b.inFlight)).toEqual(stats.backends.map(() => 0));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until `done()` holds. */
async function until(done: () => boolean, what: string, rig: Rig, ms = 6000): Promise<void> {
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
async function expectRecovered(rig: Rig): Promise<void> {
  await until(() => allHealthy(rig), 'every backend healthy again', rig);
  const n = 60;
  const outcomes = await run(rig, n, { concurrency: 3 });
  expectAllAnswered(outcomes);
  const ok = responses(outcomes);
  expect(ok.every((o) => o.status === 200)).toBe(true);
  const counts = rig.servers.map((s) => ok.filter((o) => o.body === s.name).length);
  for (const c of counts) expect(c).toBeGreaterThanOrEqual(n / rig.servers.length / 2);
}

/** A short rendering for assertion messages. */
function describeOutcome(o: Outcome): string {
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
function expectAllAnswered(outcomes: readonly Outcome[]): void {
  expect(outcomes.filter((o) => o.kind !== 'response').map(describeOutcome)).toEqual([]);
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
function causeCode(error: unknown): string | undefined {
  let e = error as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && e !== undefined && e !== null; i++) {
    if (typeof e.code === 'string') return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

/** A body cut short: the platform fetch rejects the read with `TypeError: terminated`. */
function expectBodyCut(error: unknown, codes: readonly string[]): void {
  expect(error).toBeInstanceOf(TypeError);
  expect((error as Error).message).toBe('terminated');
  expect(codes).toContain(causeCode(error));
}

describe('reliability under faults (balanced fetch, real sockets)', () => {
  it('connection refused: every call is retried onto a live backend, then the backend rejoins', async () => {
    const rig = await setup(new RoundRobin());
    await rig.servers[2]!.kill();
    // Refused connections sent nothing, so even POSTs go to another backend.
    const outcomes = await run(rig, 45, {
      init: (i) => (i % 3 === 0 ? { method: 'POST', body: `order ${i}` } : undefined),
    });
    expectAllAnswered(outcomes);
    const ok = responses(outcomes);
    expect(ok.every((o) => o.status === 200 && o.body !== 's2')).toBe(true);
    expect(rig.attempts.get(rig.id(2)) ?? 0).toBeGreaterThan(0);
    expect(rig.pool.get(rig.id(2))!.failures).toBe(rig.attempts.get(rig.id(2)));

    await rig.servers[2]!.restart();
    await expectRecovered(rig);
  });

  it('reset before headers: GETs are retried; a POST that reached the server fails with AllAttemptsFailedError', async () => {
    const rig = await setup(new RoundRobin());
    rig.servers[1]!.setMode('reset-before-headers');
    const post = (i: number) => i % 4 === 0;
    const outcomes = await run(rig, 60, {
      init: (i) => (post(i) ? { method: 'POST', body: `order ${i}` } : undefined),
    });
    let postFailures = 0;
    outcomes.forEach((o, i) => {
      if (o.kind === 'response') {
        expect(o.status).toBe(200);
        expect(o.body).not.toBe('s1');
        return;
      }
      // Only a POST may fail, only on s1, and it is never retried.
      expect(o.kind).toBe('error');
      expect(post(i)).toBe(true);
      const error = (o as { error: unknown }).error;
      expect(error).toBeInstanceOf(AllAttemptsFailedError);
      const e = error as AllAttemptsFailedError;
      expect(e.code).toBe('LB_ALL_ATTEMPTS_FAILED');
      expect(e.attempts).toEqual([
        expect.objectContaining({ backend: rig.id(1), outcome: 'reset' }),
      ]);
      expect(e.stoppedBecause).toMatch(/POST is not idempotent/);
      postFailures++;
    });
    expect(rig.attempts.get(rig.id(1)) ?? 0).toBeGreaterThan(postFailures);

    rig.servers[1]!.setMode('ok');
    await expectRecovered(rig);
  });

  it('reset after headers: the call gets its response and the body read fails with the reset', async () => {
    const rig = await setup(new RoundRobin());
    rig.servers[1]!.setMode('reset-after-headers');
    const outcomes = await run(rig, 60);
    const cut = bodyErrors(outcomes);
    // On a loaded machine the reset may overtake the headers; then the GET is retried instead.
    expect(cut.length).toBeGreaterThan(0);
    for (const o of cut) {
      expect(o.backend).toBe(rig.id(1));
      expect(o.status).toBe(200);
      // undici reports the reset itself, or the close that follows it when that is read first.
      expectBodyCut(o.error, ['ECONNRESET', 'UND_ERR_SOCKET']);
    }
    expect(errors(outcomes)).toEqual([]);
    expect(responses(outcomes).every((o) => o.status === 200 && o.body !== 's1')).toBe(true);
    // Each cut body was released as a failure of s1.
    expect(rig.pool.get(rig.id(1))!.failures).toBeGreaterThanOrEqual(cut.length);

    rig.servers[1]!.setMode('ok');
    await expectRecovered(rig);
  });

  it('hanging server: attempts time out and go elsewhere; with every server hanging, calls end by their deadline', async () => {
    const rig = await setup(new RoundRobin());
    rig.servers[0]!.setMode('hang');
    const outcomes = await run(rig, 30);
    expectAllAnswered(outcomes);
    const ok = responses(outcomes);
    expect(ok.every((o) => o.status === 200 && o.body !== 's0')).toBe(true);
    expect(rig.pool.get(rig.id(0))!.failures).toBeGreaterThan(0);

    for (const s of rig.servers) s.setMode('hang');
    const started = performance.now();
    const stuck = await run(rig, 6);
    expect(performance.now() - started).toBeLessThan(GUARD_MS);
    for (const error of errors(stuck)) {
      // Three attempts of 300 ms fit in the 1500 ms deadline, unless the machine is slow.
      if (error instanceof AllAttemptsFailedError) {
        expect(error.attempts.length).toBeGreaterThan(0);
        for (const a of error.attempts) {
          expect(a.outcome).toBe('timeout');
          expect(a.error).toBeInstanceOf(TimeoutError);
        }
      } else {
        expect(error).toBeInstanceOf(TimeoutError);
        expect((error as TimeoutError).scope).toBe('deadline');
        expect((error as TimeoutError).code).toBe('LB_TIMEOUT');
      }
    }
    expect(errors(stuck)).toHaveLength(6);

    for (const s of rig.servers) s.setMode('ok');
    await expectRecovered(rig);
  });

  it('slow headers: answers under the timeout arrive late, answers over it are retried', async () => {
    const rig = await setup(new LeastConnections());
    rig.servers[2]!.setMode('slow-headers', { delayMs: 60 });
    const slowButOk = await run(rig, 30);
    expectAllAnswered(slowButOk);
    expect(responses(slowButOk).every((o) => o.status === 200)).toBe(true);
    // Under the timeout, the slow backend still answers its share.
    expect(responses(slowButOk).some((o) => o.body === 's2')).toBe(true);

    rig.servers[2]!.setMode('slow-headers', { delayMs: 3 * TIMEOUT_MS });
    const tooSlow = await run(rig, 30);
    expectAllAnswered(tooSlow);
    const ok = responses(tooSlow);
    expect(ok.every((o) => o.status === 200 && o.body !== 's2')).toBe(true);

    rig.servers[2]!.setMode('ok');
    await expectRecovered(rig);
  });

  it('truncated body: the short body fails the read, never the whole fetch', async () => {
    const rig = await setup(new RoundRobin());
    rig.servers[0]!.setMode('truncated-body');
    const outcomes = await run(rig, 45);
    const cut = bodyErrors(outcomes);
    expect(cut.length).toBeGreaterThan(0);
    for (const o of cut) {
      expect(o.backend).toBe(rig.id(0));
      expectBodyCut(o.error, ['UND_ERR_SOCKET']);
    }
    expect(errors(outcomes)).toEqual([]);
    expect(cut.length + responses(outcomes).length).toBe(45);
    expect(responses(outcomes).every((o) => o.status === 200 && o.body !== 's0')).toBe(true);
    expect(rig.pool.get(rig.id(0))!.failures).toBeGreaterThanOrEqual(cut.length);

    rig.servers[0]!.setMode('ok');
    await expectRecovered(rig);
  });

  it('5xx storm: with every backend answering 503 each call returns the last 503 response', async () => {
    const rig = await setup(new RoundRobin());
    for (const s of rig.servers) s.setMode('status', { status: 503 });
    const outcomes = await run(rig, 30);
    const answered = responses(outcomes);
    expect(answered).toHaveLength(30);
    for (const o of answered) {
      expect(o.status).toBe(503);
      expect(o.body).toMatch(/^s\d 503$/);
    }
    // The probes fail too: the pool ends up routing under its panic rule, never refusing.
    await until(() => rig.pool.stats().healthy === 0, 'every backend unhealthy', rig);
    expect(rig.pool.panic).toBe(true);
    const inPanic = await run(rig, 12);
    expect(responses(inPanic).map((o) => o.status)).toEqual(Array(12).fill(503));

    for (const s of rig.servers) s.setMode('ok');
    await expectRecovered(rig);
  });

  it('a backend killed and restarted mid-run: no call is lost, and it takes traffic again', async () => {
    const rig = await setup(new PowerOfTwoChoices());
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
    expect(restartedAt).toBe(75);
    // A body on its way when the server died may be cut; everything else is answered.
    for (const o of bodyErrors(outcomes)) {
      expect(o.backend).toBe(rig.id(1));
      expect(o.error).toBeInstanceOf(TypeError);
    }
    expect(errors(outcomes)).toEqual([]);
    expect(responses(outcomes).every((o) => o.status === 200)).toBe(true);
    expect(responses(outcomes).length).toBeGreaterThanOrEqual(120 - 6);

    await expectRecovered(rig);
  });

  it('every backend down, then back: calls fail with AllAttemptsFailedError, then spread again', async () => {
    const rig = await setup(new RoundRobin());
    const events: string[] = [];
    rig.checker.on('all-unhealthy', () => events.push('all-unhealthy'));
    rig.checker.on('recovered', () => events.push('recovered'));
    await Promise.all(rig.servers.map((s) => s.kill()));
    const outcomes = await run(rig, 12, { concurrency: 4 });
    const failed = errors(outcomes);
    expect(failed).toHaveLength(12);
    for (const error of failed) {
      expect(error).toBeInstanceOf(AllAttemptsFailedError);
      const e = error as AllAttemptsFailedError;
      expect(e.code).toBe('LB_ALL_ATTEMPTS_FAILED');
      expect(e.attempts.length).toBeGreaterThan(0);
      expect(e.attempts.length).toBeLessThanOrEqual(3);
      for (const a of e.attempts) expect(a.outcome).toBe('connect');
      expect(causeCode(e.cause)).toBe('ECONNREFUSED');
    }
    await until(() => rig.pool.stats().healthy === 0, 'every backend unhealthy', rig);
    // Under panic the pool keeps trying every backend rather than refusing outright.
    const inPanic = await run(rig, 6, { concurrency: 3 });
    for (const error of errors(inPanic)) expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect(errors(inPanic)).toHaveLength(6);

    await Promise.all(rig.servers.map((s) => s.restart()));
    await expectRecovered(rig);
    expect(events).toEqual(['all-unhealthy', 'recovered']);
  });
});
