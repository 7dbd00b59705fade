/**
 * Warm restarts with real parts:
 * - two processes on the real clock: one writes its pool's snapshot to a file and exits, the next
 *   restores it (test/fixtures/warm-restart.ts), so the wall-clock stamp and every duration cross
 *   a real process boundary;
 * - persistence in a real redis-server through ioredis, as docs/warm-restarts.md shows it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendPool, type PoolSnapshot, SnapshotRestoreError } from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { runTsChild } from '../support/child.js';
import { hasRedis, type RedisServer, startRedis } from '../support/redis.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/warm-restart.ts', import.meta.url));
/** Each child gets this long to start (tsx compiles on the fly), work and exit. */
const CHILD_LIMIT_MS = 20_000;

async function run(args: readonly string[]): Promise<Record<string, unknown>> {
  const r = await runTsChild(FIXTURE, args, { limitMs: CHILD_LIMIT_MS });
  if (r.code !== 0 || r.stderr !== '') {
    throw new Error(`child exited with ${r.code ?? r.signal}: ${r.stderr}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

interface Restored {
  id: string;
  state: string;
  weight: number;
  effectiveWeight: number;
  latencyEwmaMs: number;
  ejectedForMs: number | null;
  zone: string | null;
}

describe('warm restart across two processes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loadwise-warm-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it(
    'a snapshot written by one process is restored by the next, its times aged by the gap',
    async () => {
      const file = join(dir, 'pool.json');
      const written = (await run(['write', file])) as { event: string; takenAt: number };
      expect(written.event).toBe('written');
      const restored = (await run(['read', file])) as {
        event: string;
        wall: number;
        backends: Restored[];
      };
      expect(restored.event).toBe('restored');
      // The reader stamps `wall` just before its pool reads the wall clock: the snapshot is at
      // least `gap` old when restored, and a few ms more at most (the pool's construction).
      const gap = restored.wall - written.takenAt;
      expect(gap).toBeGreaterThan(0); // two process starts lie between the two stamps
      const by = new Map(restored.backends.map((b) => [b.id.split('.')[0]!, b]));
      expect([...by.keys()]).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect([...by.values()].map((b) => b.state)).toEqual([
        'healthy',
        'ejected',
        'unhealthy',
        'draining',
        'healthy',
      ]);
      // The ejection has what it had left minus the snapshot's age (a few ms also passed between
      // the ejection and the snapshot in the writer; wall-clock stamps count whole ms).
      const left = by.get('b')!.ejectedForMs!;
      expect(left).toBeLessThanOrEqual(30_000 - gap + 1);
      expect(left).toBeGreaterThan(30_000 - gap - 500);
      // The ramp goes on from where it was plus the age: weight 10 × elapsed / 60 s (a floor of
      // 0.1% of the weight in both processes, so the progress shows).
      const e = by.get('e')!;
      expect(e.weight).toBe(10);
      expect(e.effectiveWeight).toBeGreaterThan((10 * (gap - 1)) / 60_000);
      expect(e.effectiveWeight).toBeLessThan((10 * (gap + 500)) / 60_000);
      // Latencies decayed over the age as in the writer (10 s time constant).
      const b = by.get('b')!;
      expect(b.latencyEwmaMs).toBeLessThanOrEqual(900 * Math.exp(-(gap - 1) / 10_000));
      expect(b.latencyEwmaMs).toBeGreaterThan(900 * Math.exp(-(gap + 500) / 10_000));
      expect(by.get('a')!.zone).toBe('z1');
    },
    CHILD_LIMIT_MS * 2,
  );

  it(
    'the next process refuses a snapshot older than its maxSnapshotAgeMs',
    async () => {
      const file = join(dir, 'old.json');
      await run(['write', file]);
      // At least one process start (hundreds of ms) passes before the reader looks.
      expect(await run(['read', file, '1'])).toEqual({
        event: 'refused',
        code: 'LB_SNAPSHOT_REFUSED',
        reason: 'stale',
        field: 'takenAt',
      });
    },
    CHILD_LIMIT_MS * 2,
  );
});

describe.runIf(hasRedis())('a snapshot persisted in a real redis-server', () => {
  let server: RedisServer;
  let redis: Redis;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
    await redis.connect();
  });

  afterAll(async () => {
    await redis?.quit().catch(() => redis.disconnect());
    await server?.stop();
  });

  it('round trips through SET with an expiry and GET, as the guide does it', async () => {
    const T0 = Date.UTC(2025, 0, 1);
    const clock = new ManualClock(T0);
    const backends = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080'];
    const old = new BackendPool({ backends, clock, random: seededRandom(1), skew: false });
    old.eject('10.0.0.2:8080', 60_000, 'Retry-After', { endsOnProbe: false });
    old.acquire({ affinity: { id: '10.0.0.3:8080' } }).release({ ok: true, latencyMs: 250 });
    clock.advance(1000);
    await old.close();

    // The guide's code: the key expires with the snapshot's useful life.
    await redis.set('loadwise:snapshot:upstream', JSON.stringify(old.snapshot()), 'PX', 300_000);
    expect(await redis.pttl('loadwise:snapshot:upstream')).toBeGreaterThan(299_000);

    const saved = await redis.get('loadwise:snapshot:upstream');
    expect(saved).not.toBeNull();
    const later = new ManualClock(T0 + 1000 + 3000);
    const pool = new BackendPool({
      backends,
      clock: later,
      skew: false,
      restore: JSON.parse(saved!) as PoolSnapshot,
    });
    const stats = pool.stats().backends;
    expect(stats.map((b) => b.state)).toEqual(['healthy', 'ejected', 'healthy']);
    expect(stats[1]!.ejectedUntil! - later.now()).toBe(56_000);
    expect(stats[2]!.latencyEwmaMs).toBeCloseTo(250 * Math.exp(-4000 / 10_000), 9);
    // A passing probe does not end a backend's own pause, after the restart either.
    pool.reportProbe('10.0.0.2:8080', { ok: true });
    expect(pool.get('10.0.0.2:8080')!.state).toBe('ejected');

    // A value that is not a snapshot (another writer, a truncated write) is refused whole.
    await redis.set('loadwise:snapshot:upstream', '{"format":"loadwise.pool-snapshot"}');
    const broken = JSON.parse((await redis.get('loadwise:snapshot:upstream'))!);
    expect(() => new BackendPool({ backends, clock: later, restore: broken })).toThrow(
      SnapshotRestoreError,
    );
    await pool.close();
  });
});
