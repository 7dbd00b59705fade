/**
 * Shared setup of the balanced-fetch integration tests: real HTTP servers on 127.0.0.1 behind a
 * pool and a balanced fetch, with every timer, pool, agent and server of a test torn down in
 * `afterEach`.
 */
import { afterEach } from 'vitest';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { BalancedFetchOptions } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { seededRandom } from '../../src/testing/index.js';
import type { Algorithm, BackendSpec } from '../../src/types.js';
import { closeAll, type Handler, startServers, type TestServer } from './servers.js';

/** What {@link useFetchBackends} gives a test file. */
export interface FetchBackends {
  /**
   * The servers of the current test. One array for the whole file, refilled by `serve` and
   * `setup`, so a file can destructure it once.
   */
  readonly servers: TestServer[];
  /** Starts `n` servers (each answers 200 with its index) into {@link servers}. */
  serve(n: number): Promise<TestServer[]>;
  /**
   * Starts `n` servers, a pool over them (`skew: false`) and a balanced fetch with
   * `backoffBaseMs: 2` unless `options` says otherwise.
   */
  setup(
    n: number,
    algorithm: Algorithm,
    options?: BalancedFetchOptions,
    specs?: (urls: string[]) => BackendSpec[],
  ): Promise<{ pool: BackendPool; fetch: ReturnType<typeof createBalancedFetch> }>;
  /** Closes `pool` after the test. */
  trackPool(pool: BackendPool): void;
  /** Destroys `agent` (an undici `Agent`) after the test. */
  trackAgent(agent: { destroy(): Promise<void> }): void;
  /** Runs `fn` after `ms` of real time, unless the test has ended by then. */
  later(fn: () => void, ms: number): void;
  /** A handler answering `body` after `ms` (its timer is cleared after the test). */
  slow(ms: number, body: string): Handler;
}

/** A handler that never answers. */
export const hang: Handler = () => undefined;

/** Registers the teardown (`afterEach`) and returns the helpers; call once at a file's top. */
export function useFetchBackends(): FetchBackends {
  const servers: TestServer[] = [];
  /** Every server started in the test, for teardown (a second `serve` replaces `servers`). */
  let started: TestServer[] = [];
  let pools: BackendPool[] = [];
  let agents: { destroy(): Promise<void> }[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();

  afterEach(async () => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    await Promise.all(pools.map((p) => p.close()));
    pools = [];
    await Promise.all(agents.map((a) => a.destroy()));
    agents = [];
    await closeAll(started);
    started = [];
    servers.length = 0;
  });

  const serve = async (n: number): Promise<TestServer[]> => {
    const fresh = await startServers(n);
    started.push(...fresh);
    servers.splice(0, servers.length, ...fresh);
    return servers;
  };

  const later = (fn: () => void, ms: number): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  return {
    servers,
    serve,
    async setup(n, algorithm, options = {}, specs) {
      const urls = (await serve(n)).map((s) => s.url);
      const pool = new BackendPool({
        backends: specs ? specs(urls) : urls,
        algorithm,
        skew: false,
        // Seeded: random picks then come out the same in every run, so a spread the tests
        // assert on cannot fail by chance.
        random: seededRandom(7),
      });
      pools.push(pool);
      return { pool, fetch: createBalancedFetch(pool, { backoffBaseMs: 2, ...options }) };
    },
    trackPool(pool) {
      pools.push(pool);
    },
    trackAgent(agent) {
      agents.push(agent);
    },
    later,
    slow(ms, body) {
      return (_req, res) => later(() => res.end(body), ms);
    },
  };
}

/** Runs `total` calls of `fetch('/work')` with `concurrency` in flight; returns the bodies. */
export async function load(
  fetch: (path: string) => Promise<Response>,
  total: number,
  concurrency: number,
): Promise<string[]> {
  const bodies: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        bodies.push(await (await fetch('/work')).text());
      }
    }),
  );
  return bodies;
}

/** The share of `bodies` answered by each of `n` servers (bodies are server indexes). */
export function shares(bodies: readonly string[], n: number): number[] {
  const counts = Array.from({ length: n }, () => 0);
  for (const b of bodies) counts[Number(b)]!++;
  return counts.map((c) => c / bodies.length);
}

/** The in-flight count of every backend of `pool`. */
export const inFlightEverywhere = (pool: BackendPool): number[] =>
  pool.stats().backends.map((b) => b.inFlight);
