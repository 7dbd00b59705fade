/**
 * Load: 10,000 calls in flight at once through the balanced fetch to three loopback backends, and
 * 1,000,000 acquire/release cycles on a pool with constant memory. Counts must be exact.
 *
 * Ten thousand truly concurrent sockets would need 20,000 descriptors on this one machine (both
 * ends are here), above common `ulimit -n` values; so the calls go through undici's fetch with a
 * bounded connection pool (`options.fetch`): all 10,000 calls hold a lease at once and queue in
 * undici for one of its sockets.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { systemClock } from '../../src/clock.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { FetchFunction } from '../../src/fetch/types.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { closeAll, startServers, type TestServer } from '../support/servers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CYCLES_FIXTURE = fileURLToPath(new URL('../fixtures/acquire-cycles.ts', import.meta.url));

let servers: TestServer[] = [];
let agent: Agent | undefined;
let pool: BackendPool | undefined;

afterEach(async () => {
  await pool?.close();
  pool = undefined;
  await agent?.close();
  agent = undefined;
  await closeAll(servers);
  servers = [];
});

describe('load', () => {
  it('10,000 concurrent calls through the balanced fetch all succeed, counted exactly', async () => {
    const CALLS = 10_000;
    servers = await startServers(3);
    // 32 sockets per backend: the calls queue in undici, their leases are all held meanwhile.
    agent = new Agent({ connections: 32, pipelining: 1 });
    const dispatcher = agent;
    const viaAgent: FetchFunction = (url, init) =>
      undiciFetch(url, { ...(init as object), dispatcher }) as unknown as Promise<Response>;
    pool = new BackendPool({
      backends: servers.map((s) => s.url),
      algorithm: new RoundRobin({ startIndex: 0 }),
      clock: systemClock,
    });
    // Calls queue in the agent before they reach a socket; this test counts, it does not time
    // attempts (a busy CI machine may take seconds to drain the queue).
    const fetch = createBalancedFetch(pool, {
      fetch: viaAgent,
      deadlineMs: 60_000,
      timeoutMs: false,
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

    const bodies = await Promise.all(
      Array.from({ length: CALLS }, async (_, i) => {
        const res = await fetch(`/item/${i}`);
        expect(res.status).toBe(200);
        return res.text();
      }),
    );

    expect(bodies).toHaveLength(CALLS);
    // Every call was picked before the first answer came back: all 10,000 were in flight at once.
    expect(peak).toBe(CALLS);
    const byBody = [0, 1, 2].map((i) => bodies.filter((b) => b === String(i)).length);
    const stats = pool.stats();
    // Round robin over three: 3334, 3333, 3333, and the servers saw exactly the same.
    expect(byBody).toEqual([3334, 3333, 3333]);
    expect(stats.backends.map((b) => b.requests)).toEqual(byBody);
    expect(servers.map((s) => s.hits)).toEqual(byBody);
    expect(stats.backends.map((b) => b.failures)).toEqual([0, 0, 0]);
    expect(stats.inFlight).toBe(0);
    expect(inFlight).toBe(0);
  }, 60_000);

  it('1,000,000 acquire/release cycles: exact counts and constant memory (child process, --expose-gc)', async () => {
    const CYCLES = 1_000_000;
    const env = { ...process.env };
    delete env['NODE_OPTIONS'];
    const child = spawn(
      process.execPath,
      ['--expose-gc', '--single-threaded-gc', '--import', 'tsx', CYCLES_FIXTURE, String(CYCLES)],
      { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const guard = setTimeout(() => child.kill('SIGKILL'), 40_000);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    clearTimeout(guard);
    expect(stderr).toBe('');
    expect(code).toBe(0);

    const r = JSON.parse(stdout) as {
      cycles: number;
      requests: number[];
      failures: number[];
      inFlight: number;
      heapBefore: number;
      heapHalf: number;
      heapAfter: number;
      detectorTracked: number;
    };
    expect(r.cycles).toBe(CYCLES);
    expect(r.requests.reduce((a, b) => a + b, 0)).toBe(CYCLES);
    expect([...r.requests].sort()).toEqual([333333, 333333, 333334]);
    expect(r.failures).toEqual([0, 0, 0]);
    expect(r.inFlight).toBe(0);
    expect(r.detectorTracked).toBe(3);
    // Constant memory: what a million cycles leave behind after a full GC is noise (JIT code and
    // feedback), under half a byte per cycle, and the second half adds no more than the first.
    const growth = r.heapAfter - r.heapBefore;
    console.log(
      `heap growth over ${CYCLES} cycles: ${growth} bytes (first half ${r.heapHalf - r.heapBefore}, second half ${r.heapAfter - r.heapHalf})`,
    );
    expect(growth).toBeLessThan(CYCLES / 2);
    expect(r.heapAfter - r.heapHalf).toBeLessThan(CYCLES / 4);
  }, 60_000);
});
