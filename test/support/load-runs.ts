/**
 * The load runs of the reliability suite, shared by test/integration/reliability-load.test.ts
 * (which asserts on them) and scripts/reliability.ts (which prints them):
 * - `concurrentCalls`: n calls in flight at once through the balanced fetch to three loopback
 *   backends, counted exactly;
 * - `acquireCycles`: a million acquire/release cycles on a pool, in a child process with the
 *   garbage collector exposed, and the live heap before, halfway and after.
 *
 * Ten thousand truly concurrent sockets would need 20,000 descriptors on this one machine (both
 * ends are here), above common `ulimit -n` values; so the calls go through undici's fetch with a
 * bounded connection pool (`options.fetch`): all calls hold a lease at once and queue in undici
 * for one of its sockets.
 */
import { fileURLToPath } from 'node:url';
import {
  Agent,
  type RequestInit as UndiciInit,
  type Response as UndiciResponse,
  fetch as undiciFetch,
} from 'undici';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { systemClock } from '../../src/clock.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { FetchFunction } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { runTsChild } from './child.js';
import { closeAll, startServers } from './servers.js';

const CYCLES_FIXTURE = fileURLToPath(new URL('../fixtures/acquire-cycles.ts', import.meta.url));

/** What `concurrentCalls` measured. */
export interface ConcurrentResult {
  readonly calls: number;
  /** Calls that got a 200 and read their body. */
  readonly ok: number;
  /** The most calls holding a lease at once. */
  readonly peakInFlight: number;
  /** Answers per backend, from the bodies (each server answers its index). */
  readonly byBody: readonly number[];
  /** The pool's request count per backend. */
  readonly requests: readonly number[];
  /** Requests each server saw. */
  readonly hits: readonly number[];
  readonly failures: readonly number[];
  /** In-flight counts once every call ended (pool, and acquire minus release events). */
  readonly inFlightAfter: number;
  readonly eventsInFlightAfter: number;
  readonly ms: number;
}

/** Sends `calls` calls at once through the balanced fetch to three loopback servers. */
export async function concurrentCalls(calls = 10_000): Promise<ConcurrentResult> {
  const servers = await startServers(3);
  // 32 sockets per backend: the calls queue in undici, their leases are all held meanwhile.
  const agent = new Agent({ connections: 32, pipelining: 1 });
  const viaAgent: FetchFunction<UndiciInit, UndiciResponse> = (url, init) =>
    undiciFetch(url, { ...init, dispatcher: agent });
  const pool = new BackendPool({
    backends: servers.map((s) => s.url),
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock: systemClock,
  });
  try {
    // The calls wait in undici's queue for a socket: that wait is not a backend's slowness, so
    // no per-attempt limit (on a loaded machine the queue alone took more than 10 s); the
    // deadline still bounds every call.
    const fetch = createBalancedFetch(pool, {
      fetch: viaAgent,
      timeoutMs: false,
      deadlineMs: 90_000,
    });
    let inFlight = 0;
    let peak = 0;
    pool.on('acquire', () => {
      inFlight++;
      if (inFlight > peak) peak = inFlight;
    });
    pool.on('release', () => {
      inFlight--;
    });
    const started = performance.now();
    const bodies = await Promise.all(
      Array.from({ length: calls }, async (_, i) => {
        const res = await fetch(`/item/${i}`);
        const body = await res.text();
        return res.status === 200 ? body : undefined;
      }),
    );
    const ms = Math.round(performance.now() - started);
    const stats = pool.stats();
    return {
      calls,
      ok: bodies.filter((b) => b !== undefined).length,
      peakInFlight: peak,
      byBody: [0, 1, 2].map((i) => bodies.filter((b) => b === String(i)).length),
      requests: stats.backends.map((b) => b.requests),
      hits: servers.map((s) => s.hits),
      failures: stats.backends.map((b) => b.failures),
      inFlightAfter: stats.inFlight,
      eventsInFlightAfter: inFlight,
      ms,
    };
  } finally {
    await pool.close();
    await agent.close();
    await closeAll(servers);
  }
}

/** What `acquireCycles` measured (see test/fixtures/acquire-cycles.ts). */
export interface CyclesResult {
  readonly cycles: number;
  readonly requests: readonly number[];
  readonly failures: readonly number[];
  readonly inFlight: number;
  /** Live heap after a full GC: before the cycles, halfway, after. */
  readonly heapBefore: number;
  readonly heapHalf: number;
  readonly heapAfter: number;
  readonly detectorTracked: number;
  readonly ms: number;
}

/** Runs `cycles` acquire/release cycles in a child process with `--expose-gc`. */
export async function acquireCycles(cycles = 1_000_000): Promise<CyclesResult> {
  const started = performance.now();
  const { code, stdout, stderr } = await runTsChild(CYCLES_FIXTURE, [String(cycles)], {
    limitMs: 40_000,
    nodeArgs: ['--expose-gc', '--single-threaded-gc'],
  });
  if (code !== 0 || stderr !== '') {
    throw new Error(`acquire-cycles exited with ${code}: ${stderr}`);
  }
  return {
    ...(JSON.parse(stdout) as Omit<CyclesResult, 'ms'>),
    ms: Math.round(performance.now() - started),
  };
}
