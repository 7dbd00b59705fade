/**
 * Warm restarts: `pool.snapshot()` and the `restore` option, on ManualClocks standing for the
 * wall clocks of two processes. A restored pool must be the old pool as it would be after the
 * downtime (states, ejection time left, slow-start ramps, latency estimates), and a snapshot
 * that is of another version, too old, from the future, malformed or about other backends must
 * be refused whole, with nothing applied.
 */
import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  BackendPool,
  type BackendPoolOptions,
  LoadBalancerConfigError,
  PeakEwma,
  type PoolSnapshot,
  RoundRobin,
  type SnapshotRefusalReason,
  SnapshotRestoreError,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

/** 1 January 2025, 00:00 UTC: a wall-clock reading for both "processes". */
const T0 = Date.UTC(2025, 0, 1);
const NAMES = ['a', 'b', 'c', 'd'];
const url = (n: string) => `http://${n}.test:80`;
/** The URL as the pool normalizes it (the default port left out). */
const normalized = (n: string) => `http://${n}.test`;
const id = (n: string) => `${n}.test:80`;

function poolOn(clock: ManualClock, options: BackendPoolOptions = {}) {
  return new BackendPool({
    backends: NAMES.map((n) => ({ url: url(n), zone: n === 'a' ? 'z1' : 'z2' })),
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    random: seededRandom(1),
    skew: false,
    slowStartMs: 10_000,
    ...options,
  });
}

/** Latency samples, an ejection, an unhealthy and a draining backend, a ramping newcomer. */
function livedIn(clock: ManualClock): BackendPool {
  const pool = poolOn(clock);
  for (const [n, ms] of [
    ['a', 20],
    ['b', 400],
    ['c', 35],
    ['d', 50],
  ] as const) {
    pool.acquire({ affinity: { id: id(n) } }).release({ ok: true, latencyMs: ms });
    clock.advance(100);
  }
  pool.eject(id('b'), 30_000, 'outlier: 5 consecutive failures');
  pool.setHealthy(id('c'), false, 'probe failed');
  void pool.drain(id('d'));
  pool.add({ url: url('e'), weight: 4 }); // joins: slow start from here
  clock.advance(4000);
  return pool;
}

/** What a restarted pool must agree on with the old one at the same wall-clock moment. */
function view(pool: BackendPool) {
  const now = pool.clock.now();
  return pool.stats().backends.map((b) => ({
    id: b.id,
    state: b.state,
    weight: b.weight,
    effectiveWeight: Math.round(b.effectiveWeight * 1e6) / 1e6,
    latency: Math.round(b.latencyEwmaMs * 1e6) / 1e6,
    ejectedFor: b.ejectedUntil === undefined ? undefined : b.ejectedUntil - now,
    zone: b.zone,
  }));
}

/** Through JSON, as a persisted snapshot travels. */
const persisted = (s: PoolSnapshot): PoolSnapshot => JSON.parse(JSON.stringify(s));

describe('pool.snapshot() and restore', () => {
  it('writes plain JSON: durations at one wall-clock stamp', () => {
    const clock = new ManualClock(T0);
    const pool = livedIn(clock);
    const s = pool.snapshot();
    expect(persisted(s)).toEqual(s);
    expect(s).toMatchObject({ format: 'loadwise.pool-snapshot', version: 1, pool: 'default' });
    expect(s.takenAt).toBe(T0 + 4400);
    const [a, b, c, d, e] = s.backends;
    expect(a).toEqual({
      id: id('a'),
      url: normalized('a'),
      weight: 1,
      zone: 'z1',
      priority: 0,
      metadata: {},
      healthy: true,
      draining: false,
      removing: false,
      latency: { ewmaMs: 20, ageMs: 4400 },
    });
    expect(b!.ejection).toEqual({
      remainingMs: 26_000,
      reason: 'outlier: 5 consecutive failures',
      endsOnProbe: true,
    });
    expect([c!.healthy, d!.draining]).toEqual([false, true]);
    expect(e).toMatchObject({ weight: 4, slowStart: { elapsedMs: 4000 } });
    expect(e!.latency).toBeUndefined();
    expect(e!.zone).toBeUndefined();
    expect('zone' in e!).toBe(false); // left out, not undefined: JSON keeps it the same
  });

  it('round trip: the restored pool is the old one after the downtime', () => {
    const before = new ManualClock(T0);
    const old = livedIn(before);
    const snapshot = persisted(old.snapshot());
    // The process is down 2.5 s; the new one's monotonic clock starts anywhere.
    before.advance(2500);
    const after = new ManualClock(T0 + 4400 + 2500);
    const restored = poolOn(after, {
      backends: [...NAMES, 'e'].map((n) => ({
        url: url(n),
        ...(n === 'e' ? { weight: 4 } : { zone: n === 'a' ? 'z1' : 'z2' }),
      })),
      restore: snapshot,
    });
    expect(view(restored)).toEqual(view(old));
    expect(view(restored).map((b) => [b.state, b.ejectedFor])).toEqual([
      ['healthy', undefined],
      ['ejected', 23_500],
      ['unhealthy', undefined],
      ['draining', undefined],
      ['healthy', undefined],
    ]);
    // The ramp goes on from 6.5 s of 10 s, and the ejection ends on time, as in the old pool.
    expect(restored.get(id('e'))!.effectiveWeight).toBeCloseTo(4 * 0.65, 9);
    for (const step of [3500, 20_000, 1]) {
      before.advance(step);
      after.advance(step);
      expect(view(restored)).toEqual(view(old));
    }
    expect(restored.get(id('b'))!.state).toBe('healthy');
    expect(restored.get(id('e'))!.effectiveWeight).toBe(4);
    expect(restored.eligible().map((b) => b.id)).toEqual([id('a'), id('b'), id('e')]);
  });

  it('without `backends`, the snapshot’s backends become the pool’s, attributes and all', () => {
    const clock = new ManualClock(T0);
    const old = poolOn(clock, {
      backends: [
        { url: url('a'), weight: 3, zone: 'z1', priority: 1, metadata: { rack: 7 } },
        { url: url('b'), id: 'custom-b' },
      ],
    });
    const restored = new BackendPool({ restore: persisted(old.snapshot()), clock });
    expect(
      restored.backends().map((b) => [b.id, b.url, b.weight, b.zone, b.priority, b.metadata]),
    ).toEqual([
      [id('a'), normalized('a'), 3, 'z1', 1, { rack: 7 }],
      ['custom-b', normalized('b'), 1, undefined, 0, {}],
    ]);
  });

  it('with `backends`, their attributes win and a backend new since the snapshot starts fresh', () => {
    const clock = new ManualClock(T0);
    const old = poolOn(clock, { backends: [url('a'), url('b')] });
    old.eject(id('a'), 10_000);
    const restored = poolOn(clock, {
      backends: [{ url: url('a'), weight: 5 }, url('b'), url('c')],
      restore: persisted(old.snapshot()),
    });
    expect(restored.backends().map((b) => [b.id, b.weight, b.state])).toEqual([
      [id('a'), 5, 'ejected'],
      [id('b'), 1, 'healthy'],
      [id('c'), 1, 'healthy'],
    ]);
  });

  it('leaves out a backend a remove() was taking out', async () => {
    const clock = new ManualClock(T0);
    const old = poolOn(clock, { backends: [url('a'), url('b')] });
    const lease = old.acquire({ affinity: { id: id('b') } });
    const removal = old.remove(id('b'), { graceMs: 5000 });
    const s = persisted(old.snapshot());
    expect(s.backends.map((b) => [b.id, b.draining, b.removing])).toEqual([
      [id('a'), false, false],
      [id('b'), true, true],
    ]);
    expect(new BackendPool({ restore: s, clock }).backends().map((b) => b.id)).toEqual([id('a')]);
    // Not unknown either: the new configuration no longer lists it.
    expect(poolOn(clock, { backends: [url('a')], restore: s }).has(id('a'))).toBe(true);
    lease.release();
    await removal;
  });

  it('works after close(), so a service can write it on shutdown', async () => {
    const clock = new ManualClock(T0);
    const pool = livedIn(clock);
    await pool.close();
    const s = pool.snapshot();
    expect(s.backends[1]!.ejection?.remainingMs).toBe(26_000);
  });

  it('counts a stamp up to a minute in its future as taken now (clock skew)', () => {
    const writer = new ManualClock(T0);
    const s = persisted(livedIn(writer).snapshot());
    // The reader's wall clock is 45 s behind the writer's.
    const reader = new ManualClock(T0 + 4400 - 45_000);
    const restored = poolOn(reader, { backends: [...NAMES, 'e'].map(url), restore: s });
    const b = restored.get(id('b'))!;
    expect(b.state).toBe('ejected');
    expect(restored.stats().backends[1]!.ejectedUntil! - reader.now()).toBe(26_000);
  });

  it('keeps a restarted client off the slowest backend from its first calls', () => {
    // Peak EWMA over three backends, one at 400 ms: a cold pool knows nothing and sends it a
    // third of a burst; a restored one knows better.
    const backends = ['fast-1', 'fast-2', 'slow'].map((n) => url(n));
    const make = (clock: ManualClock, restore?: PoolSnapshot) =>
      new BackendPool({
        backends,
        algorithm: new PeakEwma(),
        clock,
        random: seededRandom(3),
        skew: false,
        ...(restore === undefined ? {} : { restore }),
      });
    const clock = new ManualClock(T0);
    const old = make(clock);
    for (let i = 0; i < 30; i++) {
      const lease = old.acquire();
      lease.release({ ok: true, latencyMs: lease.backend.id.startsWith('slow') ? 400 : 20 });
      clock.advance(50);
    }
    const burst = (pool: BackendPool) => {
      const leases = Array.from({ length: 30 }, () => pool.acquire());
      const toSlow = leases.filter((l) => l.backend.id.startsWith('slow')).length;
      for (const l of leases) l.release();
      return toSlow;
    };
    const restarted = new ManualClock(clock.now() + 1000);
    expect(burst(make(restarted))).toBeGreaterThanOrEqual(8);
    expect(burst(make(restarted, persisted(old.snapshot())))).toBe(0);
  });
});

describe('restore refusals', () => {
  const clock = new ManualClock(T0);
  const good = persisted(livedIn(clock).snapshot());
  const all = [...NAMES, 'e'].map(url);
  const edit = (
    f: (s: Record<string, unknown> & { backends: Record<string, unknown>[] }) => void,
  ) => {
    const s = JSON.parse(JSON.stringify(good));
    f(s);
    return s as PoolSnapshot;
  };

  const cases: [string, unknown, SnapshotRefusalReason, string | undefined, BackendPoolOptions?][] =
    [
      [
        'another version',
        edit((s) => {
          s.version = 2;
        }),
        'version',
        'version',
      ],
      ['a string, not parsed', JSON.stringify(good), 'malformed', undefined],
      ['not a snapshot', { backends: [] }, 'malformed', 'format'],
      [
        'older than maxSnapshotAgeMs',
        edit((s) => {
          s.takenAt = T0 + 4400 - 1001;
        }),
        'stale',
        'takenAt',
        { maxSnapshotAgeMs: 1000 },
      ],
      [
        'older than the default 5 minutes',
        edit((s) => {
          s.takenAt = T0 + 4400 - 300_001;
        }),
        'stale',
        'takenAt',
      ],
      [
        'from more than a minute ahead',
        edit((s) => {
          s.takenAt = T0 + 4400 + 60_001;
        }),
        'future',
        'takenAt',
      ],
      [
        'takenAt not a number',
        edit((s) => {
          s.takenAt = '2025-01-01';
        }),
        'malformed',
        'takenAt',
      ],
      [
        'backends not an array',
        edit((s) => {
          s.backends = {} as never;
        }),
        'malformed',
        'backends',
      ],
      [
        'an unknown field',
        edit((s) => {
          s.extra = 1;
        }),
        'malformed',
        'extra',
      ],
      [
        'a backend without health',
        edit((s) => {
          delete s.backends[2]!.healthy;
        }),
        'malformed',
        'backends[2].healthy',
      ],
      [
        'a negative ejection time',
        edit((s) => {
          (s.backends[1]!.ejection as { remainingMs: number }).remainingMs = -1;
        }),
        'malformed',
        'backends[1].ejection.remainingMs',
      ],
      [
        'an infinite latency',
        edit((s) => {
          s.backends[0]!.latency = { ewmaMs: Number.POSITIVE_INFINITY, ageMs: 0 };
        }),
        'malformed',
        'backends[0].latency.ewmaMs',
      ],
      [
        'a bad URL',
        edit((s) => {
          s.backends[3]!.url = 'not a url';
        }),
        'malformed',
        'backends[3].url',
      ],
      [
        'a weight of 0',
        edit((s) => {
          s.backends[3]!.weight = 0;
        }),
        'malformed',
        'backends[3].weight',
      ],
      [
        'a backend without a weight',
        edit((s) => {
          delete s.backends[2]!.weight;
        }),
        'malformed',
        'backends[2].weight',
      ],
      [
        'a weight that is not a number',
        edit((s) => {
          s.backends[2]!.weight = '4';
        }),
        'malformed',
        'backends[2].weight',
      ],
      [
        'a backend without a priority',
        edit((s) => {
          delete s.backends[1]!.priority;
        }),
        'malformed',
        'backends[1].priority',
      ],
      [
        'a backend that is not an object',
        edit((s) => {
          s.backends[1] = null as never;
        }),
        'malformed',
        'backends[1]',
      ],
      [
        'an unknown backend after one being removed',
        edit((s) => {
          s.backends[0]!.removing = true;
          s.backends[4]!.id = 'x.test:80';
          s.backends[4]!.url = url('x');
        }),
        'unknown-backend',
        'backends[4].id',
      ],
      [
        'the same id twice',
        edit((s) => {
          s.backends.push(s.backends[0]!);
        }),
        'malformed',
        'backends[5].id',
      ],
      [
        'an unknown backend id',
        edit((s) => {
          s.backends[4]!.id = 'x.test:80';
          s.backends[4]!.url = url('x');
        }),
        'unknown-backend',
        'backends[4].id',
      ],
      [
        'another URL for an id',
        edit((s) => {
          s.backends[0]!.url = 'http://elsewhere.test:80';
        }),
        'mismatch',
        'backends[0].url',
      ],
    ];

  it.each(cases)('refuses %s, applying nothing', (_name, restore, reason, field, options) => {
    const reader = new ManualClock(T0 + 4400);
    const algorithm: Algorithm = new RoundRobin();
    let error: unknown;
    try {
      poolOn(reader, { backends: all, restore: restore as PoolSnapshot, algorithm, ...options });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SnapshotRestoreError);
    const e = error as SnapshotRestoreError;
    expect([e.code, e.reason, e.field]).toEqual(['LB_SNAPSHOT_REFUSED', reason, field]);
    expect(e.message).toContain('start the pool without `restore`');
    // Nothing half-applied: no ejection timer armed, and the algorithm is free for another pool.
    expect(reader.pendingTimers()).toBe(0);
    expect(() => poolOn(reader, { backends: all, algorithm })).not.toThrow();
  });

  it('names the field and what it should hold', () => {
    const reader = new ManualClock(T0 + 4400);
    const restore = edit((s) => {
      delete s.backends[2]!.weight;
    });
    expect(() => poolOn(reader, { backends: all, restore })).toThrow(
      'Pool snapshot refused (malformed, backends[2].weight): Invalid restore.backends[2].weight: expected a finite number, got undefined.',
    );
  });

  it('arms no ejection timer when the algorithm refuses the restored membership', () => {
    const reader = new ManualClock(T0 + 4400);
    const inner = new RoundRobin();
    const algorithm: Algorithm = {
      name: 'refusing',
      pick: (candidates) => inner.pick(candidates),
      onMembershipChange: () => {
        throw new Error('too many backends');
      },
    };
    expect(() => poolOn(reader, { backends: all, restore: good, algorithm })).toThrow(
      'too many backends',
    );
    expect(reader.pendingTimers()).toBe(0);
  });

  it('says what was wrong', () => {
    const reader = new ManualClock(T0 + 4400 + 400_000);
    expect(() => poolOn(reader, { backends: all, restore: good })).toThrow(
      'Pool snapshot refused (stale, takenAt): it is 400000 ms old, more than maxSnapshotAgeMs (300000). Nothing of it was applied; start the pool without `restore` (cold) instead',
    );
  });

  it('checks maxSnapshotAgeMs as a duration', () => {
    expect(() => poolOn(clock, { maxSnapshotAgeMs: -1 })).toThrow(LoadBalancerConfigError);
    expect(() => poolOn(clock, { maxSnapshotAgeMs: Number.NaN })).toThrow(/maxSnapshotAgeMs/);
  });
});
