/**
 * The incident replayed end to end: every backend's readiness probe checks a dependency they all
 * share, the dependency goes down, and every backend fails its probe at once although each could
 * still serve. The checker must say so, the pool must keep routing under panic, and once the
 * dependency is back every backend must take traffic again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PowerOfTwoChoices } from '../../src/algorithms/power-of-two-choices.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import { OutlierDetector } from '../../src/health/outlier-detector.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { Algorithm } from '../../src/types.js';
import { closeAll, startServer, type TestServer } from '../support/servers.js';

const servers: TestServer[] = [];
const pools: BackendPool[] = [];

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await closeAll(servers.splice(0));
});

async function startFleet(n: number, database: { up: boolean }): Promise<TestServer[]> {
  const fleet = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      startServer((req, res) => {
        if (req.url === '/health/ready') {
          // The mistake under test: readiness checks a shared dependency.
          res.writeHead(database.up ? 200 : 503);
          res.end(database.up ? 'ready' : 'database unreachable');
          return;
        }
        res.writeHead(200);
        res.end(`backend ${i}`);
      }),
    ),
  );
  servers.push(...fleet);
  return fleet;
}

/** Sends `calls` real requests through the pool; returns what each backend answered. */
async function sendTraffic(pool: BackendPool, calls: number): Promise<Map<string, number>> {
  const answered = new Map<string, number>();
  for (let i = 0; i < calls; i++) {
    const lease = pool.acquire();
    try {
      const res = await fetch(`${lease.backend.url}/api/orders`);
      const body = await res.text();
      answered.set(body, (answered.get(body) ?? 0) + 1);
      lease.release({ ok: res.ok, status: res.status });
    } catch (error) {
      lease.release({ ok: false, error });
      throw error;
    }
  }
  return answered;
}

/** Advances the clock step by step, letting real probes finish, until `done()` (bounded). */
async function driveUntil(
  clock: ManualClock,
  checker: HealthChecker,
  done: () => boolean,
  stepMs: number,
): Promise<number> {
  for (let steps = 1; steps <= 50; steps++) {
    await clock.advanceAsync(stepMs);
    await checker.whenIdle();
    if (done()) return steps;
  }
  throw new Error('condition not reached within 50 steps');
}

describe('incident: every backend fails its readiness probe at once', () => {
  it.each([
    ['round robin', () => new RoundRobin()],
    ['power of two choices', () => new PowerOfTwoChoices()],
  ] as [string, () => Algorithm][])(
    'says why, keeps serving under panic, and spreads traffic again after recovery (%s)',
    async (_name, makeAlgorithm) => {
      const database = { up: true };
      const fleet = await startFleet(3, database);
      const clock = new ManualClock();
      const pool = new BackendPool({
        backends: fleet.map((s) => s.url),
        algorithm: makeAlgorithm(),
        clock,
        random: seededRandom(11),
        skew: false,
      });
      pools.push(pool);
      // Passive detection runs alongside, as in production; it must not keep anyone out.
      const detector = new OutlierDetector(pool);
      const checker = new HealthChecker(pool, {
        type: 'http',
        path: '/health/ready',
        intervalMs: 5000,
        timeoutMs: 2000,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      }).start();
      const alerts: { message: string; panic: boolean }[] = [];
      const recoveries: number[] = [];
      checker.on('all-unhealthy', (e) => alerts.push(e));
      checker.on('recovered', (e) => recoveries.push(e.healthy));

      await driveUntil(clock, checker, () => fleet.every((s) => s.hits >= 1), 500);
      expect(pool.stats().healthy).toBe(3);

      // The shared dependency fails: every readiness probe fails together.
      database.up = false;
      await driveUntil(clock, checker, () => alerts.length > 0, 1000);
      expect(alerts).toHaveLength(1);
      expect(alerts[0]?.panic).toBe(true);
      expect(alerts[0]?.message).toMatch(
        /All 3 backends failed the "readiness:http:\/health\/ready" probe/,
      );
      expect(alerts[0]?.message).toMatch(/depends on something they all share/);
      expect(pool.stats().healthy).toBe(0);
      expect(pool.panic).toBe(true);

      // Calls keep flowing to every backend under panic instead of failing.
      const during = await sendTraffic(pool, 30);
      expect([...during.keys()].sort()).toEqual(['backend 0', 'backend 1', 'backend 2']);

      // The dependency comes back; probes pass; every backend is healthy and takes traffic.
      database.up = true;
      await driveUntil(clock, checker, () => pool.stats().healthy === 3, 1000);
      expect(recoveries).toEqual([1]);
      expect(pool.panic).toBe(false);
      expect(alerts).toHaveLength(1);
      const after = await sendTraffic(pool, 60);
      expect([...after.keys()].sort()).toEqual(['backend 0', 'backend 1', 'backend 2']);
      for (const count of after.values()) expect(count).toBeGreaterThanOrEqual(10);

      await checker.close();
      detector.close();
      expect(clock.pendingTimers()).toBe(0);
    },
  );
});
