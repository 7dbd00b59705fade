/**
 * One scenario, run unchanged in every runtime the README names (Node, Bun, Deno, Chromium): it
 * uses only the `loadwise` entry and web-platform APIs, against loopback servers started by the
 * runner (test/runtimes/run.ts). The library comes in as a parameter, so each runtime loads the
 * packed package through its own module resolution (or a browser bundle of it).
 */
import type * as Loadwise from '../../src/index.js';
import type * as LoadwiseTesting from '../../src/testing/index.js';

/** Where the runner's servers listen. Every URL is on 127.0.0.1. */
export interface ScenarioConfig {
  readonly runtime: string;
  /** Two HTTP backends that answer any path with `{ backend, path }`, and `/health` with 200. */
  readonly backends: readonly [string, string];
  /** A port nothing listens on: connections are refused. */
  readonly refused: string;
  /** A server that reads the request and resets the connection (RST) without answering. */
  readonly reset: string;
  /** A server that accepts the connection and never answers. */
  readonly hang: string;
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface ScenarioResult {
  readonly runtime: string;
  readonly checks: Check[];
  /** How an attempt was classified against each failing server. */
  readonly outcomes: { refused: string; reset: string; timeout: string };
  /**
   * Answers that must be the same digit for digit in every runtime: the ring's owners of fixed
   * keys, and picks under `seededRandom` on a `ManualClock`.
   */
  readonly answers: string[];
}

/** Keys whose ring owners every runtime must agree on. */
export const RING_KEYS = ['user:1', 'user:42', 'cart:7', 'session:abc', 'ü-ключ', ''] as const;
/** Ring members (ids); the last one has weight 2. */
export const RING_MEMBERS = ['10.0.1.1:11211', '10.0.1.2:11211', '10.0.1.3:11211'] as const;

type Lib = typeof Loadwise;
type TestingLib = typeof LoadwiseTesting;

export async function runScenario(
  lib: Lib,
  testing: TestingLib,
  config: ScenarioConfig,
): Promise<ScenarioResult> {
  const checks: Check[] = [];
  const check = async (name: string, body: () => Promise<string>): Promise<void> => {
    try {
      checks.push({ name, ok: true, detail: await body() });
    } catch (error) {
      checks.push({ name, ok: false, detail: describe(error) });
    }
  };
  const outcomes = { refused: '-', reset: '-', timeout: '-' };
  let answers: string[] = [];

  await check('balanced fetch, retried across the refused backend', () =>
    balancedCalls(lib, config),
  );
  await check('health checker', () => healthChecks(lib, config));
  await check('sticky keys', () => stickyKeys(lib, config));
  await check('consistent hash ring, seeded picks on a ManualClock, simulator', async () => {
    answers = await deterministicAnswers(lib, testing);
    return answers.join(' ');
  });
  for (const [kind, url, timeoutMs] of [
    ['refused', config.refused, undefined],
    ['reset', config.reset, undefined],
    ['timeout', config.hang, 300],
  ] as const) {
    await check(`classify ${kind}`, async () => {
      const outcome = await classify(lib, url, timeoutMs);
      outcomes[kind] = outcome;
      return outcome;
    });
  }
  return { runtime: config.runtime, checks, outcomes, answers };
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  let text = `${error.name}: ${error.message}`;
  let cause: unknown = error.cause;
  for (let i = 0; i < 3 && cause instanceof Error; i++) {
    text += ` <- ${cause.name}: ${cause.message}`;
    cause = cause.cause;
  }
  return text;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** 12 GETs over a, b and the refused port in turn: every call answered, by both a and b. */
async function balancedCalls(lib: Lib, config: ScenarioConfig): Promise<string> {
  const pool = new lib.BackendPool({
    backends: [...config.backends, config.refused],
    algorithm: new lib.RoundRobin(),
  });
  try {
    const fetch = lib.createBalancedFetch(pool, { retries: 2, timeoutMs: 5000 });
    const retried: string[] = [];
    fetch.events.on('retry', (e) => retried.push(e.reason));
    const served = new Map<string, number>();
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`/api/items/${i}`);
      assert(res.status === 200, `call ${i}: status ${res.status}`);
      const body = (await res.json()) as { backend: string; path: string };
      assert(body.path === `/api/items/${i}`, `call ${i}: path ${body.path}`);
      served.set(body.backend, (served.get(body.backend) ?? 0) + 1);
    }
    assert(served.size === 2, `served by ${[...served.keys()].join(', ')}`);
    assert(retried.length >= 3, `expected a retry per turn of the refused backend, got ${retried}`);
    assert(pool.stats().inFlight === 0, 'leases still held');
    const reasons = [...new Set(retried)].join('/');
    return `12/12 answered (${[...served].map(([b, n]) => `${b}=${n}`).join(' ')}), ${retried.length} retries after ${reasons}`;
  } finally {
    await pool.close();
  }
}

/** Active HTTP probes: the refused backend turns unhealthy, the others stay healthy. */
async function healthChecks(lib: Lib, config: ScenarioConfig): Promise<string> {
  const pool = new lib.BackendPool({ backends: [...config.backends, config.refused] });
  const checker = new lib.HealthChecker(pool, {
    path: '/health',
    intervalMs: 500,
    timeoutMs: 450,
    unhealthyThreshold: 1,
    healthyThreshold: 1,
  });
  try {
    const results = await checker.checkNow();
    const states = pool.backends().map((b) => `${b.id}=${b.state}`);
    const down = pool.backends().filter((b) => b.state !== 'healthy');
    assert(results.length === 3, `${results.length} probe results`);
    assert(
      down.length === 1 && down[0]!.url === config.refused,
      `states after probing: ${states.join(', ')}`,
    );
    const fetch = lib.createBalancedFetch(pool, { retries: 0 });
    for (let i = 0; i < 4; i++) {
      const res = await fetch('/after-probe');
      assert(res.status === 200, `call after probing: status ${res.status}`);
      await res.body?.cancel();
    }
    // The checker's own schedule runs too: a probe round within a few intervals.
    let rounds = 0;
    checker.on('probe', () => rounds++);
    checker.start();
    for (let i = 0; i < 100 && rounds < 3; i++) await delay(50);
    assert(rounds >= 3, `only ${rounds} scheduled probes in 5 s`);
    return `refused backend unhealthy (${describeReason(pool, checker, config.refused)}), 4 calls without a retry`;
  } finally {
    await checker.close();
    await pool.close();
  }
}

function describeReason(
  pool: Loadwise.BackendPool,
  checker: Loadwise.HealthChecker,
  url: string,
): string {
  const id = pool.backends().find((b) => b.url === url)?.id;
  const status = checker.status().find((s) => s.id === id);
  return status?.last?.reason?.slice(0, 60) ?? 'no reason';
}

/** Key mode through the fetch, and signed cookies (WebCrypto HMAC) through `acquire()`. */
async function stickyKeys(lib: Lib, config: ScenarioConfig): Promise<string> {
  const pool = new lib.BackendPool({ backends: [...config.backends] });
  const sessions = new lib.SessionPersistenceManager(pool, { ttlMs: 60_000 });
  const cookies = new lib.SessionPersistenceManager(pool, {
    cookie: { name: 'lb' },
    secret: 'a secret of at least thirty-two bytes, for tests',
  });
  try {
    const fetch = lib.createBalancedFetch(pool, {
      ...sessions.forFetch({ key: (request) => request.headers.get('x-user') ?? undefined }),
    });
    const seen = new Map<string, Set<string>>();
    for (let i = 0; i < 12; i++) {
      const user = `user-${i % 3}`;
      const res = await fetch('/cart', { headers: { 'x-user': user } });
      const body = (await res.json()) as { backend: string };
      seen.set(user, (seen.get(user) ?? new Set()).add(body.backend));
    }
    for (const [user, backends] of seen) {
      assert(backends.size === 1, `${user} went to ${[...backends].join(' and ')}`);
    }
    const first = await cookies.acquire({ cookie: null });
    first.lease.release({ ok: true });
    assert(first.status === 'new' && first.setCookie !== undefined, `first: ${first.status}`);
    const cookie = first.setCookie.split(';')[0]!;
    const again = await cookies.acquire({ cookie });
    again.lease.release({ ok: true });
    assert(again.status === 'kept', `with the cookie: ${again.status}`);
    assert(again.lease.backend.id === first.lease.backend.id, 'cookie moved the session');
    const forged = await cookies.acquire({ cookie: `${cookie.slice(0, -2)}xx` });
    forged.lease.release({ ok: true });
    assert(forged.status === 'new', `forged cookie: ${forged.status}`);
    return '3 keys kept their backend over 12 calls; signed cookie kept, forged one refused';
  } finally {
    await sessions.close();
    await cookies.close();
    await pool.close();
  }
}

/**
 * The ring's owners of {@link RING_KEYS}, then ten picks of `RandomPick` under `seededRandom(7)`
 * and the state of an ejected backend as a `ManualClock` passes its ejection, then a short run of
 * the simulator (success rate and p99 per algorithm). Also checks that `ConsistentHash` keeps
 * each key on one backend.
 */
export async function deterministicAnswers(lib: Lib, testing: TestingLib): Promise<string[]> {
  const ring = new lib.ConsistentHashRing([RING_MEMBERS[0], RING_MEMBERS[1]]);
  ring.add(RING_MEMBERS[2], 2);
  const owners = RING_KEYS.map((k) => ring.get(k) ?? '(none)');
  const hashed = new lib.BackendPool({
    backends: RING_MEMBERS.map((id) => `http://${id}`),
    algorithm: new lib.ConsistentHash(),
  });
  for (const key of RING_KEYS) {
    const picks = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const lease = hashed.acquire({ key });
      picks.add(lease.backend.id);
      lease.release({ ok: true });
    }
    assert(picks.size === 1, `key ${JSON.stringify(key)} picked ${[...picks].join(', ')}`);
  }
  await hashed.close();

  const clock = new testing.ManualClock();
  const pool = new lib.BackendPool({
    backends: ['http://x:80', 'http://y:80', 'http://z:80'],
    algorithm: new lib.RandomPick(),
    clock,
    random: testing.seededRandom(7),
  });
  const picks: string[] = [];
  for (let i = 0; i < 10; i++) {
    const lease = pool.acquire();
    picks.push(lease.backend.id.charAt(0));
    lease.release({ ok: true, latencyMs: 1 });
  }
  pool.eject('x:80', 1000, 'test');
  const states = [pool.get('x:80')?.state];
  clock.advance(999);
  states.push(pool.get('x:80')?.state);
  clock.advance(1);
  states.push(pool.get('x:80')?.state);
  await pool.close();
  assert(clock.pendingTimers() === 0, `${clock.pendingTimers()} timers left after close`);
  const report = await lib.simulate(lib.linkerdScenario({ rate: 200, durationMs: 5000 }), {
    algorithms: lib.simulationCandidates(['round-robin', 'peak-ewma']),
    seed: 1,
  });
  const figures = report.results.map((r) => `${r.name}:${r.successRate}:${r.latency.p99}`);
  return [...owners, picks.join(''), states.join('>'), ...figures];
}

/** The outcome of one attempt against `url`, with no retry. */
async function classify(lib: Lib, url: string, timeoutMs: number | undefined): Promise<string> {
  const pool = new lib.BackendPool({ backends: [url] });
  try {
    const fetch = lib.createBalancedFetch(pool, {
      retries: 0,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    try {
      const res = await fetch('/classify');
      return `answered ${res.status}`;
    } catch (error) {
      assert(
        error instanceof lib.AllAttemptsFailedError,
        `expected AllAttemptsFailedError, got ${describe(error)}`,
      );
      assert(pool.stats().inFlight === 0, 'lease still held');
      return error.attempts[0]?.outcome ?? '(no attempt)';
    }
  } finally {
    await pool.close();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
