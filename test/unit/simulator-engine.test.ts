import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LoadBalancerConfigError } from '../../src/errors/index.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import type { BackendPool } from '../../src/pool/backend-pool.js';
import {
  type AlgorithmCandidate,
  type LatencyModel,
  type Scenario,
  SIMULATION_ALGORITHMS,
  type SimulatedBackend,
  simulate,
  simulationCandidates,
} from '../../src/simulator/index.js';

const one = (name = 'round-robin'): AlgorithmCandidate[] => simulationCandidates([name]);

function base(overrides: Partial<Scenario> = {}): Scenario {
  return {
    name: 'test',
    backends: [{ id: 'a', latency: 10 }],
    rate: 200,
    arrivals: 'uniform',
    requests: 10,
    deadlineMs: 10_000,
    ...overrides,
  };
}

describe('simulator: service model', () => {
  it('queues calls FIFO behind a limited number of workers', async () => {
    // Calls every 5 ms, 10 ms of work, one worker: call k (from 0) arrives at 5(k+1), finishes
    // at 15 + 10k, so it waits 10 + 5k.
    const report = await simulate(base({ backends: [{ id: 'a', latency: 10, concurrency: 1 }] }), {
      algorithms: one(),
    });
    const r = report.results[0]!;
    expect(r.requests).toBe(10);
    expect(r.latency.max).toBe(55);
    expect(r.latency.mean).toBe(32.5);
    expect(r.latency.p50).toBe(30);
    // The pool saw the queue as calls in flight: 10 + 5k ms each, arriving every 5 ms.
    expect(r.backends[0]!.peakInFlight).toBeGreaterThan(5);
  });

  it('replays the latency whatever the load with unlimited workers', async () => {
    const report = await simulate(base({ backends: [{ id: 'a', latency: 10 }] }), {
      algorithms: one(),
    });
    const r = report.results[0]!;
    expect(r.latency.max).toBe(10);
    expect(r.latency.p50).toBe(10);
    expect(r.backends[0]!.peakInFlight).toBe(2);
  });

  it('slows calls down by slowdownPerInFlight for each call the backend holds', async () => {
    const flat = await simulate(base({ requests: 50 }), { algorithms: one() });
    const loaded = await simulate(
      base({ requests: 50, backends: [{ id: 'a', latency: 10, slowdownPerInFlight: 0.5 }] }),
      { algorithms: one() },
    );
    const first = loaded.results[0]!;
    // The first call finds the backend empty; later ones find 1 or 2 calls there.
    expect(first.latency.p50).toBeGreaterThan(flat.results[0]!.latency.p50);
    expect(first.latency.max).toBeGreaterThan(10);
    expect(flat.results[0]!.latency.max).toBe(10);
  });

  it('gives up at the deadline when cancelAtDeadline is on, and waits when it is off', async () => {
    const slow: SimulatedBackend = { id: 'a', latency: 300 };
    const cancel = await simulate(base({ backends: [slow], deadlineMs: 100 }), {
      algorithms: one(),
    });
    const c = cancel.results[0]!;
    expect(c.outcomes).toEqual({ ok: 0, late: 0, timedOut: 10, failed: 0, rejected: 0 });
    expect(c.latency.max).toBe(100);
    // Released at the deadline: at most 100 ms / 5 ms of calls overlap.
    expect(c.backends[0]!.peakInFlight).toBeLessThanOrEqual(20);

    const wait = await simulate(
      base({ backends: [slow], deadlineMs: 100, cancelAtDeadline: false }),
      { algorithms: one() },
    );
    const w = wait.results[0]!;
    expect(w.outcomes).toEqual({ ok: 0, late: 10, timedOut: 0, failed: 0, rejected: 0 });
    expect(w.latency.max).toBe(300);
    expect(w.successRate).toBe(0);
  });

  it('answers errors at errorRate with errorLatency, and refuses calls while down', async () => {
    const report = await simulate(
      base({
        requests: 40,
        backends: [
          {
            id: 'a',
            latency: 10,
            errorRate: 1,
            errorLatency: 2,
            // Calls arrive every 5 ms: the 20 calls from 100 ms on meet a down backend.
            phases: [{ from: 100, down: true }],
          },
        ],
      }),
      { algorithms: one() },
    );
    const r = report.results[0]!;
    expect(r.outcomes.failed).toBe(40);
    expect(r.successRate).toBe(0);
    // Errors take 2 ms; refused connections 1 ms.
    expect(r.latency.max).toBe(2);
    expect(r.latency.p50).toBeLessThanOrEqual(2);
    expect(r.windows.map((w) => w.requests)).toEqual([19, 21]);
  });

  it('applies overlapping phases in order, each overriding only the fields it sets', async () => {
    const report = await simulate(
      base({
        requests: 30,
        backends: [
          {
            id: 'a',
            latency: 10,
            phases: [
              { from: 0, to: 100, latency: 40 },
              { from: 50, to: 150, errorRate: 1 },
            ],
          },
        ],
      }),
      { algorithms: one() },
    );
    const r = report.results[0]!;
    // Calls every 5 ms from 5 to 150 ms. Before 50 ms: 40 ms answers; 50–100 ms: 40 ms errors;
    // 100–150 ms: 10 ms errors; the call at 150 ms: a 10 ms answer.
    expect(r.windows.map((w) => [w.from, w.to])).toEqual([
      [0, 50],
      [50, 100],
      [100, 150],
    ]);
    expect(r.windows[0]!.successRate).toBe(1);
    expect(r.windows[1]!.successRate).toBe(0);
    expect(r.windows[2]!.successRate).toBe(1 / 11);
    expect(r.outcomes.failed).toBe(20);
    expect(r.latency.max).toBe(40);
  });

  it('runs a closed loop: each client sends its next call when its last one ends', async () => {
    const scenario: Scenario = {
      name: 'closed',
      backends: [{ id: 'a', latency: 10 }],
      clients: 4,
      durationMs: 100,
    };
    const r = (await simulate(scenario, { algorithms: one() })).results[0]!;
    // 4 clients, one 10 ms call after another from 0 to 90 ms.
    expect(r.requests).toBe(40);
    expect(r.latency.max).toBe(10);
    expect(r.backends[0]!.peakInFlight).toBe(4);
    const bounded = await simulate(
      { ...scenario, durationMs: undefined, requests: 10 } as unknown as Scenario,
      { algorithms: one() },
    );
    expect(bounded.results[0]!.requests).toBe(10);
  });

  it('takes workers away during a phase: new calls queue behind the remaining ones', async () => {
    const r = (
      await simulate(
        {
          name: 'workers',
          backends: [
            { id: 'a', latency: 10, concurrency: 2, phases: [{ from: 50, concurrency: 1 }] },
          ],
          clients: 2,
          durationMs: 100,
          deadlineMs: 15,
          cancelAtDeadline: false,
        },
        { algorithms: one() },
      )
    ).results[0]!;
    // Before 50 ms: 2 clients × 5 calls of 10 ms. From 50 ms one worker serves both clients:
    // calls sent at 50, 50, 60, 70, 80, 90 wait behind each other, all but the first 20 ms.
    expect(r.windows.map((w) => w.requests)).toEqual([10, 6]);
    expect(r.windows[0]!.successRate).toBe(1);
    expect(r.windows[1]!.successRate).toBe(1 / 6);
    expect(r.latency.max).toBe(20);
  });

  it('holds answers that arrive during a client stall until its end', async () => {
    const r = (
      await simulate(
        {
          name: 'stalls',
          backends: [{ id: 'a', latency: 10 }],
          clients: 1,
          durationMs: 300,
          clientStalls: { everyMs: 100, ms: 30 },
        },
        { algorithms: one() },
      )
    ).results[0]!;
    // Calls at 0..90, 130..190, 230..290 ms; the answers due at 100, 200 and 300 ms are seen 30 ms
    // late, at the end of each stall.
    expect(r.requests).toBe(24);
    expect(r.latency.max).toBe(40);
    expect(r.latency.mean).toBe((21 * 10 + 3 * 40) / 24);
  });

  it('keeps an open loop on its schedule through a client stall: the calls due leave at its end', async () => {
    const scenario: Scenario = {
      name: 'open-stall',
      backends: [{ id: 'a', latency: 1 }],
      rate: 100,
      arrivals: 'uniform',
      durationMs: 1000,
    };
    const plain = (await simulate(scenario, { algorithms: one() })).results[0]!;
    const stalled = (
      await simulate(
        { ...scenario, clientStalls: { everyMs: 500, ms: 100 } },
        { algorithms: one() },
      )
    ).results[0]!;
    expect(stalled.requests).toBe(plain.requests);
    // The 10 calls due at 500..590 ms leave at 600 ms, with those due at 600 and 610 ms.
    const bucket = stalled.timeline.find((b) => b.from === 600)!;
    expect(bucket.requests).toBe(12);
    expect(plain.timeline.find((b) => b.from === 600)!.requests).toBe(2);
  });

  it('marks a down backend unhealthy through the pool with the health check thresholds', async () => {
    const scenario = base({
      requests: 2000,
      rate: 1000,
      backends: [
        { id: 'a', latency: 5, phases: [{ from: 500, to: 1500, down: true }] },
        { id: 'b', latency: 5 },
        { id: 'c', latency: 5 },
      ],
      healthCheck: { intervalMs: 100, unhealthyThreshold: 2, healthyThreshold: 2 },
    });
    const report = await simulate(scenario, { algorithms: one() });
    const r = report.results[0]!;
    const down = r.windows[1]!;
    // Probes at 500 and 600 ms fail: a is out from 600 ms, back after passes at 1500 and 1600.
    // Round robin sends it a third of the 100 ms of calls in between: about 33 refused.
    expect(r.outcomes.failed).toBeGreaterThan(25);
    expect(r.outcomes.failed).toBeLessThan(45);
    expect(down.share['a']!).toBeLessThan(0.1);
    expect(r.windows[2]!.share['a']!).toBeGreaterThan(0.25);
  });

  it('rejects calls the pool cannot place, and counts them apart', async () => {
    const report = await simulate(
      base({
        requests: 100,
        rate: 100,
        backends: [{ id: 'a', latency: 5, phases: [{ from: 0, down: true }] }],
        healthCheck: { intervalMs: 200 },
        pool: { minHealthy: 0, panicThreshold: 0 },
      }),
      { algorithms: one() },
    );
    const r = report.results[0]!;
    // Refused until the first probe at 200 ms, then no backend at all.
    expect(r.outcomes.failed).toBe(19);
    expect(r.outcomes.rejected).toBe(81);
    expect(r.requests).toBe(100);
    expect(r.backends[0]!.requests).toBe(19);
    expect(r.inFlightAtEnd).toBe(0);
  });

  it('adds and removes backends at joinAt and leaveAt', async () => {
    const report = await simulate(
      base({
        requests: 300,
        rate: 100,
        backends: [
          { id: 'a', latency: 5 },
          { id: 'b', latency: 5, leaveAt: 1000 },
          { id: 'c', latency: 5, joinAt: 2000 },
        ],
      }),
      { algorithms: one() },
    );
    const r = report.results[0]!;
    expect(r.windows.map((w) => w.label)).toEqual(['0–1 s', '1–2 s', '2–3 s']);
    expect(r.windows[0]!.share['c']).toBe(0);
    expect(r.windows[0]!.share['b']).toBeCloseTo(0.5, 1);
    expect(r.windows[1]!.share).toEqual({ a: 1, b: 0, c: 0 });
    expect(r.windows[2]!.share['b']).toBe(0);
    expect(r.windows[2]!.share['c']).toBeCloseTo(0.5, 1);
    // Shares moved by half at each change.
    expect(r.windows[1]!.moved).toBeCloseTo(0.5, 1);
    // Rates while a member: a served alone for a second (200 calls in 3 s), b and c about 50 in
    // their 1 s: a's rate is 1.2 times the mean.
    expect(r.skew.requests).toBeCloseTo(1.2, 1);
  });

  it('gives every algorithm the same calls (arrival times, keys and service times)', async () => {
    const report = await simulate(
      base({
        requests: 500,
        rate: 500,
        arrivals: 'poisson',
        keys: { count: 50, zipf: 1 },
        backends: [
          { id: 'a', latency: { kind: 'lognormal', median: 10, sigma: 1 } },
          { id: 'b', latency: { kind: 'lognormal', median: 10, sigma: 1 } },
        ],
      }),
      { algorithms: simulationCandidates(['round-robin', 'random', 'power-of-two-choices']) },
    );
    const [a, b, c] = report.results;
    expect(a!.timeline.map((t) => t.requests)).toEqual(b!.timeline.map((t) => t.requests));
    expect(a!.timeline.map((t) => t.requests)).toEqual(c!.timeline.map((t) => t.requests));
    // Identical backends and no queueing: the same multiset of service times whoever picks.
    expect(a!.latency).toEqual(b!.latency);
    expect(a!.latency).toEqual(c!.latency);
    expect(a!.timeline.reduce((s, t) => s + t.requests, 0)).toBe(500);
  });

  it('runs a candidate setup on the pool and its teardown at the end', async () => {
    const seen: string[] = [];
    let released = 0;
    const candidate: AlgorithmCandidate = {
      ...one()[0]!,
      setup: (pool: BackendPool) => {
        seen.push(pool.name);
        const onRelease = (): void => {
          released++;
        };
        pool.on('release', onRelease);
        return () => {
          pool.off('release', onRelease);
          seen.push('teardown');
        };
      },
    };
    const report = await simulate(base({ requests: 25 }), { algorithms: [candidate] });
    expect(seen).toEqual(['simulation:round-robin', 'teardown']);
    expect(released).toBe(25);
    expect(report.results[0]!.requests).toBe(25);
  });

  it('lets asynchronous components attached by a setup run on the simulated clock', async () => {
    // A real HealthChecker whose async probe fails for b0 from 1 s on: its promises must settle
    // between clock steps for the pool to hear about it.
    const candidate: AlgorithmCandidate = {
      ...one()[0]!,
      setup: (pool: BackendPool) => {
        const checker = new HealthChecker(pool, {
          probe: async (backend) => {
            await Promise.resolve();
            return !(backend.id === 'b0' && pool.clock.now() >= 1000);
          },
          intervalMs: 100,
          timeoutMs: 50,
          unhealthyThreshold: 1,
        }).start();
        return () => checker.stop();
      },
    };
    const report = await simulate(
      base({
        requests: 2000,
        rate: 1000,
        backends: [
          // A phase that changes nothing, to cut the report's windows at 1 s.
          { id: 'b0', latency: 5, phases: [{ from: 1000, label: 'b0 bad' }] },
          { id: 'b1', latency: 5 },
        ],
      }),
      { algorithms: [candidate] },
    );
    const r = report.results[0]!;
    expect(r.windows[0]!.share['b0']).toBeCloseTo(0.5, 1);
    // Marked unhealthy at the first probe from 1 s on (within one interval, 100 ms).
    expect(r.windows[1]!.share['b0']).toBeGreaterThan(0);
    expect(r.windows[1]!.share['b0']).toBeLessThan(0.06);
  });

  it('measures key churn and keys moved', async () => {
    const report = await simulate(
      base({
        requests: 2000,
        rate: 1000,
        keys: { count: 100 },
        backends: ['a', 'b', 'c', 'd'].map((id) => ({
          id,
          latency: 5,
          ...(id === 'd' ? { leaveAt: 1000 } : {}),
        })),
      }),
      { algorithms: simulationCandidates(['round-robin', 'consistent-hash']) },
    );
    const [rr, ch] = report.results;
    expect(rr!.keyChurn).toBeGreaterThan(0.6);
    // A hash ring keeps each key on its backend; only d's keys move when d leaves.
    expect(ch!.keyChurn).toBeLessThan(0.05);
    expect(ch!.windows[1]!.keysMoved).toBeGreaterThan(0.1);
    expect(ch!.windows[1]!.keysMoved).toBeLessThan(0.45);
    expect(ch!.windows[1]!.share['d']).toBe(0);
    expect(rr!.windows[0]!.keysMoved).toBeUndefined();
  });
});

describe('simulator: validation', () => {
  const bad: [string, unknown, string][] = [
    ['no backends', { ...base(), backends: [] }, 'scenario.backends'],
    [
      'duplicate ids',
      {
        ...base(),
        backends: [
          { id: 'a', latency: 1 },
          { id: 'a', latency: 1 },
        ],
      },
      'scenario.backends[1].id',
    ],
    [
      'no length',
      { name: 'x', backends: [{ id: 'a', latency: 1 }], rate: 1 },
      'scenario.durationMs',
    ],
    ['rate 0', { ...base(), rate: 0 }, 'scenario.rate'],
    ['unknown key', { ...base(), speed: 3 }, 'scenario.speed'],
    [
      'bad latency kind',
      { ...base(), backends: [{ id: 'a', latency: { kind: 'weibull' } }] },
      'scenario.backends[0].latency.kind',
    ],
    [
      'negative sd',
      { ...base(), backends: [{ id: 'a', latency: { kind: 'normal', mean: 1, sd: -1 } }] },
      'scenario.backends[0].latency.sd',
    ],
    [
      'error rate > 1',
      { ...base(), backends: [{ id: 'a', latency: 1, errorRate: 2 }] },
      'scenario.backends[0].errorRate',
    ],
    [
      'phase ends first',
      { ...base(), backends: [{ id: 'a', latency: 1, phases: [{ from: 5, to: 5 }] }] },
      'scenario.backends[0].phases[0].to',
    ],
    [
      'zero concurrency',
      { ...base(), backends: [{ id: 'a', latency: 1, concurrency: 0 }] },
      'scenario.backends[0].concurrency',
    ],
    [
      'everyone late',
      { ...base(), backends: [{ id: 'a', latency: 1, joinAt: 5 }] },
      'scenario.backends',
    ],
    [
      'leave before join',
      {
        ...base(),
        backends: [
          { id: 'a', latency: 1 },
          { id: 'b', latency: 1, joinAt: 9, leaveAt: 3 },
        ],
      },
      'scenario.backends[1].leaveAt',
    ],
    ['unknown focus', { ...base(), focus: 'z' }, 'scenario.focus'],
    ['pool owns clock', { ...base(), pool: { clock: {} } }, 'scenario.pool.clock'],
    ['zipf keys without count', { ...base(), keys: { zipf: 1 } }, 'scenario.keys.count'],
    ['clients and rate', { ...base(), clients: 4 }, 'scenario.rate'],
    ['no clients', { ...base(), rate: undefined, clients: 0 }, 'scenario.clients'],
    ['fractional clients', { ...base(), rate: undefined, clients: 1.5 }, 'scenario.clients'],
    [
      'a stall as long as its period',
      { ...base(), clientStalls: { everyMs: 10, ms: 10 } },
      'scenario.clientStalls.ms',
    ],
    [
      'zero workers in a phase',
      { ...base(), backends: [{ id: 'a', latency: 1, phases: [{ from: 0, concurrency: 0 }] }] },
      'scenario.backends[0].phases[0].concurrency',
    ],
  ];
  it.each(bad)('rejects %s', async (_what, scenario, field) => {
    const error = await simulate(scenario as Scenario, { algorithms: one() }).catch((e) => e);
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as LoadBalancerConfigError).field).toBe(field);
  });

  it('rejects bad options and unknown algorithm names', async () => {
    await expect(simulate(base(), { algorithms: [] })).rejects.toThrow(LoadBalancerConfigError);
    await expect(simulate(base(), { seed: 1.5 })).rejects.toThrow(LoadBalancerConfigError);
    await expect(simulate(base(), { algorithms: [...one(), ...one()] })).rejects.toThrow(
      /unique name/,
    );
    expect(() => simulationCandidates(['round-robin', 'fastest'])).toThrow(LoadBalancerConfigError);
    expect(() => simulationCandidates(['toString'])).toThrow(LoadBalancerConfigError);
    expect(SIMULATION_ALGORITHMS).toContain('peak-ewma');
  });
});

describe('simulator: invariants (property)', () => {
  const latency: fc.Arbitrary<LatencyModel> = fc.oneof(
    fc.integer({ min: 0, max: 200 }),
    fc.record({ kind: fc.constant('constant' as const), ms: fc.integer({ min: 1, max: 200 }) }),
    fc.record({
      kind: fc.constant('lognormal' as const),
      median: fc.integer({ min: 1, max: 100 }),
      sigma: fc.double({ min: 0, max: 2, noNaN: true }),
    }),
    fc.record({
      kind: fc.constant('pareto' as const),
      min: fc.integer({ min: 1, max: 50 }),
      alpha: fc.double({ min: 0.8, max: 3, noNaN: true }),
      max: fc.constant(10_000),
    }),
    fc.record({
      kind: fc.constant('exponential' as const),
      mean: fc.integer({ min: 1, max: 100 }),
    }),
    fc.record({
      kind: fc.constant('normal' as const),
      mean: fc.integer({ min: 0, max: 100 }),
      sd: fc.integer({ min: 0, max: 50 }),
    }),
  );
  const backend = (i: number): fc.Arbitrary<SimulatedBackend> =>
    fc
      .record({
        id: fc.constant(`b${i}`),
        latency,
        concurrency: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined }),
        slowdownPerInFlight: fc.option(fc.double({ min: 0, max: 0.5, noNaN: true }), {
          nil: undefined,
        }),
        errorRate: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        phases: fc.array(
          fc
            .record({
              from: fc.integer({ min: 0, max: 2000 }),
              len: fc.integer({ min: 1, max: 2000 }),
              down: fc.boolean(),
              latency: fc.option(latency, { nil: undefined }),
            })
            .map(({ from, len, down, latency: l }) => ({
              from,
              to: from + len,
              down,
              ...(l === undefined ? {} : { latency: l }),
            })),
          { maxLength: 3 },
        ),
        joinAt:
          i === 0 ? fc.constant(0) : fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })),
      })
      .map((b) => {
        const { concurrency, slowdownPerInFlight, errorRate, ...rest } = b;
        return {
          ...rest,
          ...(concurrency === undefined ? {} : { concurrency }),
          ...(slowdownPerInFlight === undefined ? {} : { slowdownPerInFlight }),
          ...(errorRate === undefined ? {} : { errorRate }),
        };
      });
  const scenario: fc.Arbitrary<Scenario> = fc
    .record({
      n: fc.integer({ min: 1, max: 5 }),
      requests: fc.integer({ min: 1, max: 300 }),
      rate: fc.integer({ min: 20, max: 2000 }),
      deadlineMs: fc.integer({ min: 1, max: 500 }),
      cancelAtDeadline: fc.boolean(),
      keyed: fc.boolean(),
      health: fc.boolean(),
      clients: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
      stalls: fc.boolean(),
    })
    .chain((s) =>
      fc.tuple(...Array.from({ length: s.n }, (_, i) => backend(i))).map(
        (backends): Scenario => ({
          name: 'property',
          backends,
          ...(s.clients === undefined ? { rate: s.rate } : { clients: s.clients }),
          ...(s.stalls ? { clientStalls: { everyMs: 97, ms: 13 } } : {}),
          requests: s.requests,
          deadlineMs: s.deadlineMs,
          cancelAtDeadline: s.cancelAtDeadline,
          ...(s.keyed ? { keys: { count: 20, zipf: 1 } } : {}),
          ...(s.health ? { healthCheck: { intervalMs: 50, unhealthyThreshold: 2 } } : {}),
        }),
      ),
    );

  it('places or rejects every call exactly once, and leaks no in-flight count', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, fc.integer({ min: 0, max: 1000 }), async (s, seed) => {
        const report = await simulate(s, {
          seed,
          algorithms: simulationCandidates([
            'round-robin',
            'least-connections',
            'peak-ewma',
            'consistent-hash',
          ]),
        });
        for (const r of report.results) {
          const o = r.outcomes;
          expect(r.requests).toBe(s.requests);
          expect(o.ok + o.late + o.timedOut + o.failed + o.rejected).toBe(r.requests);
          expect(r.backends.reduce((sum, b) => sum + b.requests, 0)).toBe(r.requests - o.rejected);
          expect(r.inFlightAtEnd).toBe(0);
          expect(r.timeline.reduce((sum, t) => sum + t.requests, 0)).toBe(r.requests);
          expect(r.windows.reduce((sum, w) => sum + w.requests, 0)).toBe(r.requests);
          if (s.cancelAtDeadline !== false) {
            expect(o.late).toBe(0);
            // A stalled client sees its own timeout at the end of the stall.
            if (r.requests > o.rejected && s.clientStalls === undefined) {
              expect(r.latency.max).toBeLessThanOrEqual(s.deadlineMs ?? 1000);
            }
          }
          expect(r.successRate).toBeGreaterThanOrEqual(0);
          expect(r.successRate).toBeLessThanOrEqual(1);
        }
      }),
      { seed: 42, numRuns: 40 },
    );
  });
});
