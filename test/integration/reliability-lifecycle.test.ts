/**
 * Lifecycle: after `close()` nothing of loadwise remains: no timer, no socket, no listener.
 * - In a child process (test/fixtures/lifecycle.ts), a service built on a pool with discovery,
 *   health checks, outlier detection, sticky sessions and the balanced fetch makes real calls,
 *   closes everything, and must exit by itself, promptly, with nothing left alive.
 * - In process, with a ManualClock: after close no timer is pending, no listener is left on the
 *   pool, and every component refuses further work with PoolClosedError.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { attachDiscovery, StaticDiscovery } from '../../src/discovery/index.js';
import { PoolClosedError } from '../../src/errors/pool-closed-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import { OutlierDetector } from '../../src/health/outlier-detector.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { SessionPersistenceManager } from '../../src/session/session-persistence-manager.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { type ChildResult, runTsChild } from '../support/child.js';
import { closeAll, startServers, type TestServer } from '../support/servers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/lifecycle.ts', import.meta.url));
const DISPATCHER_FIXTURE = fileURLToPath(
  new URL('../fixtures/dispatcher-lifecycle.ts', import.meta.url),
);
/** The child gets this long to start (tsx compiles on the fly), work, close and exit. */
const CHILD_LIMIT_MS = 20_000;
/** Once it has closed everything, it must exit within this. */
const EXIT_AFTER_CLOSE_MS = 2_000;
/** Handles that belong to the process itself: its stdio pipes or terminals. */
const STDIO = new Set(['PipeWrap', 'TTYWrap']);

let servers: TestServer[] = [];

afterEach(async () => {
  await closeAll(servers);
  servers = [];
});

function runFixture(args: readonly string[], fixture = FIXTURE): Promise<ChildResult> {
  return runTsChild(fixture, args, { limitMs: CHILD_LIMIT_MS });
}

interface ClosedReport {
  event: 'closed';
  at: number;
  components: Record<string, boolean>;
  activeResources: string[];
  liveHandles: { type: string; createdBy: string }[];
}

/** The JSON lines a fixture printed. */
function events(result: ChildResult): { event: string }[] {
  return result.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event: string });
}

/** What a child that closed everything must show, and that it exited on its own, soon. */
function expectNothingLeft(result: ChildResult, closed: ClosedReport): void {
  // Nothing keeps the loop alive but stdio...
  expect(closed.activeResources.filter((r) => !STDIO.has(r))).toEqual([]);
  // ...and nothing was left behind unref'd either: no socket at all, and no timer except
  // undici's shared timer wheel (module-level, unref'd, it stops on its next tick).
  const leftovers = closed.liveHandles.filter(
    (h) => !(h.type === 'Timeout' && h.createdBy.includes('/undici/lib/util/timers.js')),
  );
  expect(leftovers).toEqual([]);
  // It exited on its own, soon after closing.
  expect(result.exitedAt - closed.at).toBeLessThan(EXIT_AFTER_CLOSE_MS);
}

describe('lifecycle', () => {
  it(
    'a service exits by itself after close(), with no timer or socket left (child process)',
    async () => {
      servers = await startServers(2);
      const result = await runFixture(servers.map((s) => s.url));
      expect(result.stderr).toBe('');
      expect(result.killedByGuard).toBe(false);
      expect(result.signal).toBeNull();
      expect(result.code).toBe(0);

      const lines = events(result);
      const calls = lines.find((l) => l.event === 'calls') as unknown as {
        statuses: number[];
        backends: string[];
        probes: number;
        inFlight: number;
      };
      expect(calls.statuses).toEqual(Array(20).fill(200));
      expect(new Set(calls.backends)).toEqual(new Set(['0', '1']));
      expect(calls.probes).toBe(2);
      expect(calls.inFlight).toBe(0);

      const closed = lines.find((l) => l.event === 'closed') as unknown as ClosedReport;
      console.log('child resources after close:', JSON.stringify(closed.activeResources));
      expect(closed.components).toEqual({
        checker: true,
        detector: true,
        sessions: true,
        binding: true,
      });
      expectNothingLeft(result, closed);
    },
    CHILD_LIMIT_MS + 5000,
  );

  it.each(['close', 'destroy'])(
    'a BalancedDispatcher service exits by itself after %s(), with no timer or socket left (child process)',
    async (mode) => {
      servers = await startServers(2);
      const result = await runFixture([mode, ...servers.map((s) => s.url)], DISPATCHER_FIXTURE);
      expect(result.stderr).toBe('');
      expect(result.killedByGuard).toBe(false);
      expect(result.code).toBe(0);
      const lines = events(result);
      const calls = lines.find((l) => l.event === 'calls') as unknown as {
        statuses: number[];
        inFlight: number;
      };
      expect(calls.statuses).toEqual(Array(20).fill(200));
      expect(calls.inFlight).toBe(0);
      const closed = lines.find((l) => l.event === 'closed') as unknown as ClosedReport;
      expect(closed.components).toEqual({ dispatcher: true, destroyed: true });
      expectNothingLeft(result, closed);
    },
    CHILD_LIMIT_MS + 5000,
  );

  it('after close(), no timer is pending, no listener is left, and every component refuses work', async () => {
    const clock = new ManualClock();
    const urls = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080'];
    const pool = new BackendPool({ clock, random: seededRandom(9) });
    const binding = attachDiscovery(pool, new StaticDiscovery(urls));
    const checker = new HealthChecker(pool, {
      probe: async () => true,
      intervalMs: 100,
      timeoutMs: 50,
    }).start();
    const detector = new OutlierDetector(pool, { intervalMs: 100 });
    const sessions = new SessionPersistenceManager(pool, { cleanupIntervalMs: 100 });
    const fetch = createBalancedFetch(pool, {
      fetch: async (url) => new Response(new URL(url).host),
      timeoutMs: 500,
      deadlineMs: 1000,
      ...sessions.forFetch({ key: (request) => request.headers.get('x-user') ?? undefined }),
    });
    expect(pool.backends()).toHaveLength(3);

    for (let i = 0; i < 30; i++) {
      const res = await fetch('/x', { headers: { 'x-user': `u${i % 4}` } });
      await res.text();
    }
    await clock.advanceAsync(350);
    await checker.whenIdle();
    expect(clock.pendingTimers()).toBeGreaterThan(0);
    expect(pool.stats().inFlight).toBe(0);

    await pool.close();
    await Promise.all([checker.close(), sessions.close(), binding.close()]);

    expect(clock.pendingTimers()).toBe(0);
    expect(pool.eventNames()).toEqual([]);
    expect([checker.closed, detector.closed, sessions.closed, binding.closed]).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(() => pool.acquire()).toThrow(PoolClosedError);
    await expect(fetch('/x')).rejects.toBeInstanceOf(PoolClosedError);
    await expect(sessions.acquire('u1')).rejects.toBeInstanceOf(PoolClosedError);
    expect(() => checker.start()).toThrow(PoolClosedError);
    expect(() => detector.analyze()).toThrow(PoolClosedError);
    // Closing again changes nothing.
    await pool.close();
    expect(clock.pendingTimers()).toBe(0);
  });
});
