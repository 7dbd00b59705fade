import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AWAITING_HEALTH_CHECK,
  attachDiscovery,
  BackendPool,
  type BackendPoolOptions,
  type BackendSpec,
  DiscoveryBinding,
  type DiscoveryBindingOptions,
  type DiscoveryEvents,
  LoadBalancerConfigError,
  RoundRobin,
  StaticDiscovery,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { expectConfigErrors } from '../support/config-errors.js';
import { onEveryEvent } from '../support/discovery.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const url = (n: number): string => `http://10.0.0.${n}:8080`;
const id = (n: number): string => `10.0.0.${n}:8080`;
const urls = (...ns: number[]): string[] => ns.map(url);

function setup(
  initial: readonly BackendSpec[],
  options: DiscoveryBindingOptions = {},
  poolOptions: BackendPoolOptions = {},
) {
  const clock = new ManualClock();
  const pool = new BackendPool({
    clock,
    random: seededRandom(7),
    skew: false,
    algorithm: new RoundRobin(),
    ...poolOptions,
  });
  const source = new StaticDiscovery(initial);
  const binding = new DiscoveryBinding(pool, source, options);
  const events: { name: keyof DiscoveryEvents; payload: unknown }[] = [];
  onEveryEvent(binding, (name, payload) => events.push({ name, payload }));
  binding.start();
  const ids = (): string[] => pool.backends().map((b) => b.id);
  const named = (name: keyof DiscoveryEvents) =>
    events.filter((e) => e.name === name).map((e) => e.payload as Record<string, unknown>);
  return { clock, pool, source, binding, events, ids, named };
}

describe('DiscoveryBinding with StaticDiscovery', () => {
  it('fills the pool from the first answer before start() returns', async () => {
    const { pool, binding, named, ids } = setup(urls(1, 2, 3));
    expect(ids()).toEqual([id(1), id(2), id(3)]);
    expect(pool.backends().every((b) => b.state === 'healthy')).toBe(true);
    expect(named('applied')).toEqual([
      {
        source: 'static',
        added: [id(1), id(2), id(3)],
        removing: [],
        updated: [],
        replaced: [],
        total: 3,
      },
    ]);
    await expect(binding.ready()).resolves.toBe(true);
    expect(binding.managed()).toEqual([id(1), id(2), id(3)]);
  });

  it('adds new endpoints in slow start and leaves unchanged ones with their state and statistics', () => {
    const { pool, source, clock, ids } = setup(urls(1, 2), {}, { slowStartMs: 10_000 });
    const before = pool.get(id(1));
    for (let i = 0; i < 4; i++) pool.acquire().release({ ok: i !== 0, latencyMs: 20 });
    pool.eject(id(2), 60_000, 'test');
    const stats1 = pool.stats().backends.find((b) => b.id === id(1))!;
    clock.advance(1_000);

    source.set(urls(1, 2, 3));

    expect(ids()).toEqual([id(1), id(2), id(3)]);
    expect(pool.get(id(1))).toBe(before);
    const after = pool.stats().backends.find((b) => b.id === id(1))!;
    expect(after.requests).toBe(stats1.requests);
    expect(after.failures).toBe(stats1.failures);
    expect(pool.get(id(2))?.state).toBe('ejected');
    const fresh = pool.get(id(3))!;
    expect(fresh.weight).toBe(1);
    expect(fresh.effectiveWeight).toBeCloseTo(0.1, 5);
    clock.advance(10_000);
    pool.acquire().release();
    expect(pool.get(id(3))!.effectiveWeight).toBe(1);
  });

  it('drains a vanished endpoint: a lease taken before removal releases cleanly, then the backend is gone', async () => {
    const { pool, source, binding, named } = setup(urls(1, 2, 3));
    const leases = [pool.acquire(), pool.acquire(), pool.acquire()];
    const onThree = leases.find((l) => l.backend.id === id(3))!;

    source.set(urls(1, 2));
    await flush();

    expect(pool.get(id(3))?.state).toBe('draining');
    expect(pool.eligible().map((b) => b.id)).toEqual([id(1), id(2)]);
    expect(binding.removing()).toEqual([id(3)]);
    expect(named('applied').at(-1)).toMatchObject({ removing: [id(3)], total: 2 });
    for (let i = 0; i < 6; i++) {
      const other = pool.acquire();
      expect(other.backend.id).not.toBe(id(3));
      other.release();
    }

    expect(onThree.release({ ok: true })).toBe(true);
    await binding.settled();

    expect(pool.has(id(3))).toBe(false);
    expect(binding.removing()).toEqual([]);
    expect(named('removed')).toEqual([
      { source: 'static', id: id(3), completed: true, remaining: 0 },
    ]);
    expect(onThree.release({ ok: true })).toBe(false);
    for (const l of leases) l.release();
    expect(pool.stats().inFlight).toBe(0);
  });

  it('forgets a draining endpoint once the grace period ends, and its late release is harmless', async () => {
    const { pool, source, binding, clock, named } = setup(urls(1, 2, 3), { drainGraceMs: 1_000 });
    const lease = pool.acquire({ affinity: { id: id(2) } });
    expect(lease.backend.id).toBe(id(2));

    source.set(urls(1, 3));
    await flush();
    clock.advance(999);
    await flush();
    expect(pool.has(id(2))).toBe(true);
    clock.advance(1);
    await binding.settled();

    expect(pool.has(id(2))).toBe(false);
    expect(named('removed')).toEqual([
      { source: 'static', id: id(2), completed: false, remaining: 1 },
    ]);
    expect(lease.release({ ok: true })).toBe(true);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('changes weights in place and replaces a backend whose priority, zone or URL changed', () => {
    const { pool, source, named } = setup([
      { url: url(1), weight: 1 },
      { url: url(2), weight: 1, zone: 'a' },
      { url: url(3), id: 'three', priority: 0 },
    ]);
    const one = pool.get(id(1));
    pool.acquire().release();
    source.set([
      { url: url(1), weight: 5 },
      { url: url(2), weight: 1, zone: 'b' },
      { url: `${url(3)}/v2`, id: 'three', priority: 1 },
    ]);
    expect(pool.get(id(1))).toBe(one);
    expect(pool.get(id(1))?.weight).toBe(5);
    expect(pool.get(id(2))?.zone).toBe('b');
    expect(pool.get('three')?.url).toBe(`${url(3)}/v2`);
    expect(pool.get('three')?.priority).toBe(1);
    expect(named('applied').at(-1)).toMatchObject({
      added: [],
      removing: [],
      updated: [id(1)],
      replaced: [id(2), 'three'],
      total: 3,
    });
  });

  it.each([
    ['an empty answer', (s: StaticDiscovery) => s.set([]), 'empty-answer'],
    [
      'a failed answer',
      (s: StaticDiscovery) => s.fail(new Error('registry down')),
      'refresh-failed',
    ],
    [
      'an answer of invalid endpoints only',
      (s: StaticDiscovery) => (s as unknown as { publish(e: unknown[]): void }).publish(['nope']),
      'empty-answer',
    ],
  ] as const)('keeps the last good set after %s and says so', (_label, act, event) => {
    const { source, ids, named, binding } = setup(urls(1, 2));
    act(source);
    expect(ids()).toEqual([id(1), id(2)]);
    expect(named(event)).toHaveLength(1);
    expect(named(event)[0]).toMatchObject({ source: 'static', kept: 2 });
    expect(named('applied')).toHaveLength(1);
    expect(binding.managed()).toEqual([id(1), id(2)]);
  });

  it('counts consecutive failures and resets the count after a good answer', () => {
    const { source, named, binding } = setup(urls(1));
    source.fail(new Error('a'));
    source.fail(new Error('b'));
    expect(named('refresh-failed').map((e) => e['consecutiveFailures'])).toEqual([1, 2]);
    expect((named('refresh-failed')[1]!['error'] as Error).message).toBe('b');
    source.set(urls(1, 2));
    expect(binding.consecutiveFailures).toBe(0);
    source.fail(new Error('c'));
    expect(named('refresh-failed').at(-1)!['consecutiveFailures']).toBe(1);
  });

  it('drops malformed endpoints with an event and applies the rest', () => {
    const { source, ids, named } = setup(urls(1));
    (source as unknown as { publish(e: unknown[]): void }).publish([
      url(1),
      { url: 'not a url' },
      { url: url(2), weight: -1 },
      url(3),
    ]);
    expect(ids()).toEqual([id(1), id(3)]);
    expect(named('invalid-endpoint')).toHaveLength(2);
    expect(named('invalid-endpoint')[0]!['error']).toBeInstanceOf(LoadBalancerConfigError);
  });

  describe('removal guard', () => {
    it('holds back an answer removing more than maxRemovalShare until it is seen twice in a row', () => {
      const { source, ids, named, binding } = setup(urls(1, 2, 3, 4));
      source.set(urls(1));
      expect(ids()).toEqual([id(1), id(2), id(3), id(4)]);
      expect(binding.holding).toBe(true);
      expect(named('held-back')).toEqual([
        {
          source: 'static',
          removals: [id(2), id(3), id(4)],
          share: 0.75,
          maxRemovalShare: 0.5,
          kept: 4,
        },
      ]);
      source.set(urls(1));
      expect(binding.holding).toBe(false);
      expect(binding.managed()).toEqual([id(1)]);
      expect([...binding.removing()].sort()).toEqual([id(2), id(3), id(4)]);
    });

    it('needs the same answer twice in a row: a different answer in between starts over', () => {
      const { source, binding, named } = setup(urls(1, 2, 3, 4));
      source.set(urls(1));
      source.set(urls(2));
      source.set(urls(1));
      expect(named('held-back')).toHaveLength(3);
      expect(binding.managed()).toHaveLength(4);
      source.set(urls(1, 2, 3));
      expect(binding.holding).toBe(false);
      expect(binding.removing()).toEqual([id(4)]);
    });

    it('keeps a held answer across failed and empty answers', () => {
      const { source, binding } = setup(urls(1, 2, 3, 4));
      source.set(urls(1));
      source.fail(new Error('flap'));
      source.set([]);
      source.set(urls(1));
      expect(binding.managed()).toEqual([id(1)]);
    });

    it.each([
      [0.5, urls(1, 2), true],
      [0.5, urls(1), false],
      [1, urls(9), true],
      [0, urls(1, 2, 3), false],
      [0.25, urls(1, 2, 3), true],
    ])('maxRemovalShare %s, answer %j: applied at once = %s', (share, answer, applied) => {
      const { source, binding } = setup(urls(1, 2, 3, 4), { maxRemovalShare: share });
      source.set(answer);
      expect(!binding.holding).toBe(applied);
    });

    it('does not count additions or weight changes as removals', () => {
      const { source, binding } = setup(urls(1, 2));
      source.set([...urls(3, 4, 5, 6), { url: url(1), weight: 3 }, url(2)]);
      expect(binding.holding).toBe(false);
      expect(binding.managed()).toHaveLength(6);
    });
  });

  it('lets an endpoint that comes back while draining rejoin once its drain is over', async () => {
    const { pool, source, binding, ids } = setup(urls(1, 2, 3));
    const lease = pool.acquire({ affinity: { id: id(3) } });
    source.set(urls(1, 2));
    await flush();
    source.set(urls(1, 2, 3));
    expect(pool.get(id(3))?.state).toBe('draining');
    lease.release();
    await binding.settled();
    await flush();
    expect(ids()).toEqual([id(1), id(2), id(3)]);
    expect(pool.get(id(3))?.state).toBe('healthy');
    expect(pool.get(id(3))?.requests).toBe(0);
  });

  it('with awaitHealthCheck, new endpoints take traffic only after a passing probe', () => {
    const { pool, source } = setup(urls(1), { awaitHealthCheck: true });
    // The first answer's endpoints wait too.
    expect(pool.get(id(1))?.state).toBe('unhealthy');
    pool.setHealthy(id(1), true);
    const states: string[] = [];
    pool.on('state', (e) => states.push(`${e.backend.id}:${e.to}:${e.reason}`));
    source.set(urls(1, 2));
    expect(states).toEqual([`${id(2)}:unhealthy:${AWAITING_HEALTH_CHECK}`]);
    expect(pool.eligible().map((b) => b.id)).toEqual([id(1)]);
    pool.reportProbe(id(2), { ok: true });
    expect(pool.eligible().map((b) => b.id)).toEqual([id(1), id(2)]);
  });

  it('leaves backends it did not discover alone, unless manageExisting is set', async () => {
    for (const manageExisting of [false, true]) {
      const clock = new ManualClock();
      const pool = new BackendPool({ clock, skew: false, backends: urls(1, 2, 3) });
      const binding = attachDiscovery(pool, new StaticDiscovery(urls(2, 3, 4)), {
        manageExisting,
      });
      await binding.settled();
      expect(pool.has(id(1))).toBe(!manageExisting);
      expect([...binding.managed()].sort()).toEqual([id(2), id(3), id(4)]);
      await pool.close();
    }
  });

  it('puts back a discovered backend that was removed behind its back on the next answer', async () => {
    const { pool, source, ids } = setup(urls(1, 2));
    await pool.remove(id(2), { drain: false });
    source.set(urls(1, 2));
    expect(ids()).toEqual([id(1), id(2)]);
  });

  it('closes with the pool and the source, leaving no timer behind', async () => {
    const { pool, source, binding, clock } = setup(urls(1, 2), { drainGraceMs: 5_000 });
    pool.acquire({ affinity: { id: id(2) } });
    source.set(urls(1));
    await flush();
    await pool.close();
    expect(binding.closed).toBe(true);
    expect(source.closed).toBe(true);
    await binding.settled();
    expect(clock.pendingTimers()).toBe(0);
    await expect(binding.ready()).resolves.toBe(true);
    source.set(urls(5));
    expect(pool.has(id(5))).toBe(false);
  });

  it('ignores answers after close(), keeps the source open with closeSource: false, and closes idempotently', async () => {
    const { pool, source, binding, ids } = setup(urls(1), { closeSource: false });
    const first = binding.close();
    expect(binding.close()).toBe(first);
    await first;
    expect(source.closed).toBe(false);
    source.set(urls(1, 2));
    expect(ids()).toEqual([id(1)]);
    await pool.close();
  });

  it('ready() resolves false when the binding closes before any answer', async () => {
    const pool = new BackendPool({ skew: false });
    const source = new StaticDiscovery([]);
    const binding = attachDiscovery(pool, source);
    const ready = binding.ready();
    await binding.close();
    await expect(ready).resolves.toBe(false);
    await pool.close();
  });

  it('ready({ timeoutMs }) resolves false when no answer comes in time, on a timer a caller holds', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({ skew: false, clock });
    const source = new StaticDiscovery([]);
    const binding = attachDiscovery(pool, source);
    let settled: boolean | undefined;
    void binding.ready({ timeoutMs: 5000 }).then((r) => {
      settled = r;
    });
    // The wait is the caller's, so its timer is not unref'd: a real process stays up for it.
    expect(clock.refedTimers()).toBe(1);
    await clock.advanceAsync(4999);
    expect(settled).toBeUndefined();
    await clock.advanceAsync(1);
    expect(settled).toBe(false);
    expect(clock.refedTimers()).toBe(0);
    // An answer in time resolves true and clears the timer.
    const later = binding.ready({ timeoutMs: 5000 });
    source.set(urls(1));
    await expect(later).resolves.toBe(true);
    expect(clock.refedTimers()).toBe(0);
    await expect(binding.ready({ timeoutMs: 0 })).resolves.toBe(true);
    // A close before the answer resolves false and clears it too.
    const pool2 = new BackendPool({ skew: false, clock });
    const binding2 = attachDiscovery(pool2, new StaticDiscovery([]));
    const closed = binding2.ready({ timeoutMs: 5000 });
    await binding2.close();
    await expect(closed).resolves.toBe(false);
    expect(clock.refedTimers()).toBe(0);
    expect(() => binding2.ready({ timeoutMs: -1 })).toThrow(LoadBalancerConfigError);
    expect(() => binding2.ready({ timeout: 1 } as never)).toThrow(/Did you mean "timeoutMs"/);
    await pool.close();
    await pool2.close();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('rejects bad arguments with LoadBalancerConfigError naming the field', () => {
    const pool = new BackendPool({ skew: false });
    const source = new StaticDiscovery();
    const cases: [() => unknown, string][] = [
      [() => attachDiscovery({} as BackendPool, source), 'pool'],
      [() => attachDiscovery(pool, {} as StaticDiscovery), 'source'],
      [() => attachDiscovery(pool, source, { maxRemovalShare: 1.5 }), 'maxRemovalShare'],
      [() => attachDiscovery(pool, source, { drainGraceMs: -1 }), 'drainGraceMs'],
      [
        () => attachDiscovery(pool, source, { awaitHealthCheck: 'yes' as unknown as boolean }),
        'awaitHealthCheck',
      ],
      [
        () => attachDiscovery(pool, source, { bogus: 1 } as DiscoveryBindingOptions),
        'DiscoveryBindingOptions.bogus',
      ],
      [() => new StaticDiscovery(['nope']), 'endpoints[0].url'],
      [() => new StaticDiscovery('x' as unknown as string[]), 'endpoints'],
    ];
    expectConfigErrors(cases);
  });

  it('routes to a worse priority tier only while the better one has no healthy backend', () => {
    const { pool } = setup([
      { url: url(1), priority: 0 },
      { url: url(2), priority: 0 },
      { url: url(3), priority: 1 },
    ]);
    const picks = (): string[] =>
      Array.from({ length: 6 }, () => {
        const l = pool.acquire();
        l.release();
        return l.backend.id;
      });
    expect(new Set(picks())).toEqual(new Set([id(1), id(2)]));
    pool.setHealthy(id(1), false);
    pool.setHealthy(id(2), false);
    expect(new Set(picks())).toEqual(new Set([id(3)]));
  });
});

describe('DiscoveryBinding properties', () => {
  const universe = [1, 2, 3, 4, 5, 6];
  const answerArb = fc.oneof(
    { weight: 5, arbitrary: fc.subarray(universe, { minLength: 1 }).map((ns) => ({ ns })) },
    { weight: 1, arbitrary: fc.constant({ ns: [] as number[] }) },
    { weight: 1, arbitrary: fc.constant('fail' as const) },
  );

  it('without the guard, the pool follows every non-empty answer and never empties', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(answerArb, fc.integer({ min: 1, max: 9 })), {
          minLength: 1,
          maxLength: 12,
        }),
        async (steps) => {
          const pool = new BackendPool({ skew: false, clock: new ManualClock() });
          const source = new StaticDiscovery(urls(1));
          const binding = attachDiscovery(pool, source, { maxRemovalShare: 1 });
          let expected = new Map([[id(1), 1]]);
          for (const [answer, weight] of steps) {
            if (answer === 'fail') source.fail(new Error('x'));
            else {
              source.set(answer.ns.map((n) => ({ url: url(n), weight })));
              if (answer.ns.length > 0) expected = new Map(answer.ns.map((n) => [id(n), weight]));
            }
            await binding.settled();
            const live = pool.backends().filter((b) => b.state !== 'draining');
            expect(live.length).toBeGreaterThan(0);
            expect(new Map(live.map((b) => [b.id, b.weight]))).toEqual(expected);
          }
          await pool.close();
        },
      ),
      { seed: 42, numRuns: 60 },
    );
  });

  it('with the guard, one answer never removes more than maxRemovalShare unless repeated', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(answerArb, { minLength: 1, maxLength: 12 }),
        fc.constantFrom(0.25, 0.5, 0.75),
        async (steps, maxRemovalShare) => {
          const pool = new BackendPool({ skew: false, clock: new ManualClock() });
          const source = new StaticDiscovery(urls(...universe));
          const binding = attachDiscovery(pool, source, { maxRemovalShare });
          let previous: string | undefined;
          for (const answer of steps) {
            const before = new Set(binding.managed());
            if (answer === 'fail') source.fail(new Error('x'));
            else source.set(urls(...answer.ns));
            await binding.settled();
            const after = new Set(binding.managed());
            const removed = [...before].filter((m) => !after.has(m)).length;
            const key = answer === 'fail' ? undefined : answer.ns.join();
            if (removed > maxRemovalShare * before.size) expect(key).toBe(previous);
            expect(binding.managed().length).toBeGreaterThan(0);
            if (answer !== 'fail' && answer.ns.length > 0) previous = key;
          }
          await pool.close();
        },
      ),
      { seed: 42, numRuns: 80 },
    );
  });
});
