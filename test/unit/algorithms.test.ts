import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  type BackendPool,
  type BackendSpec,
  type BackendView,
  type Lease,
  LeastConnections,
  LoadBalancerConfigError,
  PeakEwma,
  PowerOfTwoChoices,
  RandomPick,
  RoundRobin,
  WeightedRoundRobin,
} from '../../src/index.js';
import { type ManualClock, seededRandom } from '../../src/testing/index.js';
import { EVERY_ALGORITHM } from '../support/algorithms.js';
import { idOf, nameOf, testPool, url } from '../support/pools.js';

/** A {@link testPool} running `algorithm` with `seededRandom(seed)`. */
function makePool(
  algorithm: Algorithm,
  backends: readonly BackendSpec[],
  seed = 42,
): { pool: BackendPool; clock: ManualClock } {
  return testPool(backends, { algorithm, random: seededRandom(seed) });
}

/** Names of `count` backends picked through acquire + immediate release. */
function sequence(pool: BackendPool, count: number): string {
  let out = '';
  for (let i = 0; i < count; i++) {
    const lease = pool.acquire();
    out += nameOf(lease.backend.id);
    lease.release();
  }
  return out;
}

/** Holds `n` leases on backend `name` (via affinity) and returns them. */
function hold(pool: BackendPool, name: string, n: number): Lease[] {
  return Array.from({ length: n }, () => pool.acquire({ affinity: { id: idOf(name) } }));
}

function weighted(weights: Record<string, number>): BackendSpec[] {
  return Object.entries(weights).map(([name, weight]) => ({ url: url(name), weight }));
}

describe('RoundRobin', () => {
  it.each([
    { startIndex: 0, expected: 'abcabcabc' },
    { startIndex: 1, expected: 'bcabcabca' },
    { startIndex: 2, expected: 'cabcabcab' },
    { startIndex: 5, expected: 'cabcabcab' },
  ])('visits a b c in turn from startIndex $startIndex', ({ startIndex, expected }) => {
    const { pool } = makePool(new RoundRobin({ startIndex }), ['a', 'b', 'c'].map(url));
    expect(sequence(pool, 9)).toBe(expected);
  });

  it('ignores weights', () => {
    const { pool } = makePool(new RoundRobin({ startIndex: 0 }), weighted({ a: 5, b: 1 }));
    expect(sequence(pool, 4)).toBe('abab');
  });

  it('starts at a position drawn from the pool random source when no startIndex is given', () => {
    const starts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const { pool } = makePool(new RoundRobin(), ['a', 'b', 'c', 'd'].map(url), seed);
      const seq = sequence(pool, 8);
      // Whatever the start, the rotation keeps the order.
      expect('abcdabcdabcd').toContain(seq);
      starts.add(seq[0]!);
    }
    expect(starts.size).toBeGreaterThan(1);
  });

  it('skips a backend that leaves the eligible set and keeps the rotation going', () => {
    const { pool } = makePool(new RoundRobin({ startIndex: 0 }), ['a', 'b', 'c'].map(url));
    expect(sequence(pool, 2)).toBe('ab');
    pool.setHealthy(idOf('b'), false);
    expect(sequence(pool, 4)).toBe('acac');
  });

  it.each([
    { options: { startIndex: -1 }, field: 'startIndex' },
    { options: { startIndex: 1.5 }, field: 'startIndex' },
    { options: { startIndex: '1' }, field: 'startIndex' },
    { options: { start: 1 }, field: 'RoundRobinOptions.start' },
  ])('rejects $options', ({ options, field }) => {
    expect(() => new RoundRobin(options as never)).toThrow(LoadBalancerConfigError);
    try {
      new RoundRobin(options as never);
    } catch (e) {
      expect((e as LoadBalancerConfigError).field).toBe(field);
    }
  });

  it('explains which backend is next', () => {
    const { pool } = makePool(new RoundRobin({ startIndex: 1 }), ['a', 'b', 'c'].map(url));
    expect(pool.explain().wouldPick).toBe(idOf('b'));
    expect(sequence(pool, 1)).toBe('b');
    expect(pool.explain().wouldPick).toBe(idOf('c'));
  });
});

describe('WeightedRoundRobin (smooth, as nginx)', () => {
  it.each([
    { weights: { a: 5, b: 1, c: 1 }, cycle: 'aabacaa' },
    { weights: { a: 1, b: 1, c: 1 }, cycle: 'abc' },
    { weights: { a: 2, b: 1 }, cycle: 'aba' },
    { weights: { a: 4, b: 2 }, cycle: 'aba' },
    { weights: { a: 3, b: 2, c: 1 }, cycle: 'abacba' },
    { weights: { a: 1, b: 3 }, cycle: 'babb' },
  ])('weights $weights give the cycle $cycle, repeated', ({ weights, cycle }) => {
    const { pool } = makePool(new WeightedRoundRobin(), weighted(weights));
    expect(sequence(pool, cycle.length * 3)).toBe(cycle.repeat(3));
  });

  it('runs the O(n) loop for fractional weights with the same order', () => {
    const { pool } = makePool(new WeightedRoundRobin(), weighted({ a: 1.5, b: 0.5 }));
    expect(sequence(pool, 8)).toBe('aaba'.repeat(2));
  });

  it.each([
    { weights: { a: 7, b: 3, c: 2, d: 1 } },
    { weights: { a: 10, b: 10, c: 1 } },
    { weights: { a: 2.5, b: 1.25, c: 1.25 } },
  ])('gives exact proportions over each cycle for $weights', ({ weights }) => {
    const { pool } = makePool(new WeightedRoundRobin(), weighted(weights));
    const values = Object.values(weights);
    const unit = Math.min(...values);
    const cycle = values.reduce((s, w) => s + w, 0) / unit;
    for (let round = 0; round < 3; round++) {
      const seq = sequence(pool, cycle);
      for (const [name, w] of Object.entries(weights)) {
        expect([...seq].filter((c) => c === name).length).toBe(w / unit);
      }
    }
  });

  it('does not restart its cycle when a retry excludes a backend', () => {
    // Cycle a a b a c a a; the excluded pick takes the next non-excluded entry (b) and the
    // normal order carries on from there instead of starting over at a.
    const { pool } = makePool(new WeightedRoundRobin(), weighted({ a: 5, b: 1, c: 1 }));
    const picks: string[] = [];
    const take = (exclude?: string[]) => {
      const lease = pool.acquire(exclude === undefined ? undefined : { exclude });
      picks.push(nameOf(lease.backend.id));
      lease.release();
    };
    take();
    take();
    take([idOf('a')]);
    take();
    take();
    take();
    take();
    expect(picks.join('')).toBe('aabacaa');
  });

  it('keeps its shares when the eligible set changes often', () => {
    const { pool } = makePool(new WeightedRoundRobin(), weighted({ a: 5, b: 1, c: 1, d: 1 }));
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let round = 0; round < 200; round++) {
      // d flaps between every pair of picks; a, b and c keep a 5:1:1 share.
      pool.setHealthy(idOf('d'), round % 2 === 0);
      for (let k = 0; k < 2; k++) {
        const lease = pool.acquire({ exclude: [idOf('d')] });
        counts[nameOf(lease.backend.id)]!++;
        lease.release();
      }
    }
    const total = 400;
    expect(counts['a']! / total).toBeCloseTo(5 / 7, 1);
    expect(Math.abs(counts['b']! - counts['c']!)).toBeLessThanOrEqual(total * 0.05);
  });

  it('explains the next pick of the cycle', () => {
    const { pool } = makePool(new WeightedRoundRobin(), weighted({ a: 5, b: 1, c: 1 }));
    const next: string[] = [];
    for (let i = 0; i < 7; i++) {
      next.push(nameOf(pool.explain().wouldPick!));
      sequence(pool, 1);
    }
    expect(next.join('')).toBe('aabacaa');
  });
});

describe('LeastConnections', () => {
  it.each([
    { held: { a: 2, b: 1, c: 3 }, weights: { a: 1, b: 1, c: 1 }, expected: 'b' },
    { held: { a: 2, b: 1, c: 0 }, weights: { a: 1, b: 1, c: 1 }, expected: 'c' },
    // in-flight / weight: a 3/4, b 1/1, c 2/2 -> a
    { held: { a: 3, b: 1, c: 2 }, weights: { a: 4, b: 1, c: 2 }, expected: 'a' },
    // a 4/2 = 2, b 3/1 = 3 -> a
    { held: { a: 4, b: 3 }, weights: { a: 2, b: 1 }, expected: 'a' },
  ])('picks the fewest in-flight per weight: $held over $weights -> $expected', (t) => {
    const { pool } = makePool(new LeastConnections(), weighted(t.weights));
    for (const [name, n] of Object.entries(t.held)) hold(pool, name, n);
    // Warm up the incremental structure with a pick/release that does not change loads.
    const first = pool.acquire();
    expect(nameOf(first.backend.id)).toBe(t.expected);
  });

  it('rotates among equally loaded backends instead of always taking the first', () => {
    const { pool } = makePool(new LeastConnections(), ['a', 'b', 'c'].map(url));
    expect(sequence(pool, 9)).toBe('abcabcabc');
  });

  it('spreads held calls evenly: each pick goes to a backend with the fewest', () => {
    const { pool } = makePool(new LeastConnections(), ['a', 'b', 'c', 'd'].map(url));
    const leases = Array.from({ length: 12 }, () => pool.acquire());
    expect(pool.backends().map((b) => b.inFlight)).toEqual([3, 3, 3, 3]);
    // Releases lower one backend's load: it takes the next call.
    const onC = leases.find((l) => l.backend.id === idOf('c'))!;
    onC.release();
    expect(pool.acquire().backend.id).toBe(idOf('c'));
  });

  it('follows weights: a backend with weight 3 holds three times the calls', () => {
    const { pool } = makePool(new LeastConnections(), weighted({ a: 3, b: 1 }));
    for (let i = 0; i < 40; i++) pool.acquire();
    expect(pool.get(idOf('a'))!.inFlight).toBe(30);
    expect(pool.get(idOf('b'))!.inFlight).toBe(10);
  });

  it('keeps turns fair across a membership change', () => {
    const { pool } = makePool(new LeastConnections(), ['a', 'b', 'c'].map(url));
    expect(sequence(pool, 2)).toBe('ab');
    pool.add(url('d'));
    // c had not had its turn, so it goes before a and b; d joins behind them.
    expect(sequence(pool, 8)).toBe('cabdcabd');
  });

  it('serves a retry that excludes backends in turn order, then carries on', () => {
    const { pool } = makePool(new LeastConnections(), ['a', 'b', 'c'].map(url));
    expect(sequence(pool, 2)).toBe('ab');
    // c's turn is next, but the retry excludes c: a is next in turn among a and b.
    const lease = pool.acquire({ exclude: [idOf('c')] });
    expect(lease.backend.id).toBe(idOf('a'));
    lease.release();
    expect(sequence(pool, 6)).toBe('cbacba');
  });

  it('explains the next pick', () => {
    const { pool } = makePool(new LeastConnections(), ['a', 'b', 'c'].map(url));
    hold(pool, 'a', 1);
    hold(pool, 'c', 1);
    expect(pool.explain().wouldPick).toBe(idOf('b'));
    expect(pool.explain().note).toContain('in-flight');
    expect(pool.acquire().backend.id).toBe(idOf('b'));
  });
});

describe('PowerOfTwoChoices', () => {
  it('draws two distinct backends: the most loaded one is never picked', () => {
    const algorithm = new PowerOfTwoChoices();
    const { pool } = makePool(algorithm, ['a', 'b', 'c'].map(url), 7);
    hold(pool, 'a', 1);
    hold(pool, 'b', 2);
    hold(pool, 'c', 5);
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 3000; i++) counts[nameOf(algorithm.pick(pool.eligible())!.id)]!++;
    // With replacement, c would be drawn twice in 1/9 of picks.
    expect(counts['c']).toBe(0);
    // a wins every pair it is in (2/3 of pairs); b wins only the pair {b, c} (1/3).
    expect(counts['a']! / 3000).toBeCloseTo(2 / 3, 1);
    expect(counts['b']! / 3000).toBeCloseTo(1 / 3, 1);
  });

  it.each([
    { held: { a: 3, b: 0 }, weights: { a: 1, b: 1 }, expected: 'b' },
    { held: { a: 2, b: 1 }, weights: { a: 4, b: 1 }, expected: 'a' },
    { held: { a: 1, b: 2 }, weights: { a: 1, b: 1 }, expected: 'a' },
  ])('the lower in-flight per weight wins: $held over $weights', (t) => {
    const algorithm = new PowerOfTwoChoices();
    const { pool } = makePool(algorithm, weighted(t.weights));
    for (const [name, n] of Object.entries(t.held)) hold(pool, name, n);
    for (let i = 0; i < 50; i++) expect(algorithm.pick(pool.eligible())!.id).toBe(idOf(t.expected));
  });

  it('keeps the spread tight when calls are held (balls into bins)', () => {
    const { pool } = makePool(
      new PowerOfTwoChoices(),
      Array.from({ length: 100 }, (_, i) => url(`b${i}`)),
    );
    for (let i = 0; i < 10_000; i++) pool.acquire();
    const loads = pool.backends().map((b) => b.inFlight);
    // ln ln 100 / ln 2 + 2 ~ 4.2 above the mean of 100.
    expect(Math.max(...loads) - 100).toBeLessThanOrEqual(5);
  });

  it('returns the only candidate without drawing', () => {
    const algorithm = new PowerOfTwoChoices();
    const { pool } = makePool(algorithm, [url('a')]);
    expect(algorithm.pick(pool.eligible())!.id).toBe(idOf('a'));
  });

  it('refuses to pick before it is attached to a pool', () => {
    expect(() => new PowerOfTwoChoices().pick([])).toThrow(LoadBalancerConfigError);
  });
});

describe('PeakEwma', () => {
  /** Releases one call on `name` with the given latency. */
  function sample(pool: BackendPool, name: string, latencyMs: number): void {
    pool.acquire({ affinity: { id: idOf(name) } }).release({ ok: true, latencyMs });
  }

  it('prefers the low-latency backend', () => {
    const { pool } = makePool(new PeakEwma(), ['fast', 'slow'].map(url));
    sample(pool, 'fast', 10);
    sample(pool, 'slow', 100);
    const seq = sequence(pool, 20);
    expect(seq).toBe('fast'.repeat(20));
  });

  // Two backends, every call in flight held on the fast one. Finagle's cost moves to the idle
  // slow backend once fast x (held + 1) exceeds slow; the relative cost once
  // fast x (held + 1 + mean) exceeds slow x (1 + mean), mean = held / 2: never for a backend 3
  // times slower (when latency does not grow with the load), at 3 calls for one 2 times slower.
  it.each([
    { cost: 'finagle', fast: 10, slow: 30, held: 1, expected: 'fast' }, // 20 < 30
    { cost: 'finagle', fast: 10, slow: 30, held: 3, expected: 'slow' }, // 40 > 30
    { cost: 'relative', fast: 10, slow: 30, held: 3, expected: 'fast' }, // 55 < 75
    { cost: 'relative', fast: 10, slow: 30, held: 40, expected: 'fast' }, // 610 < 630
    { cost: 'relative', fast: 10, slow: 20, held: 1, expected: 'fast' }, // 25 < 30
    { cost: 'relative', fast: 10, slow: 20, held: 3, expected: 'slow' }, // 55 > 50
  ] as const)(
    '$cost cost: fast at $fast ms holding $held calls, slow at $slow ms idle: picks $expected',
    ({ cost, fast, slow, held, expected }) => {
      const { pool } = makePool(new PeakEwma({ cost, choices: 'all' }), ['fast', 'slow'].map(url));
      sample(pool, 'fast', fast);
      sample(pool, 'slow', slow);
      hold(pool, 'fast', held);
      expect(pool.explain().wouldPick).toBe(idOf(expected));
      expect(pool.acquire().backend.id).toBe(idOf(expected));
    },
  );

  // The tail-latency benchmark's case: 16 calls in flight over two fast backends (5 ms) and an idle one 8
  // times slower (40 ms). Finagle's cost prices each fast backend at 5 x 9 = 45 against 40, so
  // every pair that draws the slow backend sends it the call; the relative cost prices them at
  // 5 x (9 + 16/3) = 72 against 40 x (1 + 16/3) = 253.
  it.each([
    { cost: 'finagle', min: 0.5, max: 0.8 },
    { cost: 'relative', min: 0, max: 0 },
  ] as const)(
    '$cost cost: share of picks to an idle backend 8x slower while two fast ones hold 8 calls each',
    ({ cost, min, max }) => {
      const algorithm = new PeakEwma({ cost });
      const { pool } = makePool(algorithm, ['a', 'b', 'slow'].map(url), 7);
      sample(pool, 'a', 5);
      sample(pool, 'b', 5);
      sample(pool, 'slow', 40);
      hold(pool, 'a', 8);
      hold(pool, 'b', 8);
      let toSlow = 0;
      const picks = 3000;
      for (let i = 0; i < picks; i++) {
        if (algorithm.pick(pool.eligible())!.id === idOf('slow')) toSlow++;
      }
      expect(toSlow / picks).toBeGreaterThanOrEqual(min);
      expect(toSlow / picks).toBeLessThanOrEqual(max);
    },
  );

  it('keeps weights as Finagle does: a backend of weight 2 takes about twice the calls in flight', () => {
    for (const cost of ['finagle', 'relative'] as const) {
      const { pool } = makePool(new PeakEwma({ cost, choices: 'all' }), weighted({ a: 2, b: 1 }));
      sample(pool, 'a', 10);
      sample(pool, 'b', 10);
      // Never released: each pick lands where the cost is lowest given what is held already.
      const held = { a: 0, b: 0 };
      for (let i = 0; i < 30; i++) held[nameOf(pool.acquire().backend.id) as 'a' | 'b']++;
      // Equal cost: (a + 1) / 2 = b + 1 for both costs (the mean term is common), so a = 2b + 1.
      expect(Math.abs(held.a - (2 * held.b + 1))).toBeLessThanOrEqual(2);
    }
  });

  it('treats a cold backend with calls in flight as very costly, and an idle one as free', () => {
    const algorithm = new PeakEwma();
    const { pool, clock } = makePool(algorithm, ['warm', 'cold'].map(url));
    sample(pool, 'warm', 500);
    const cold = pool.get(idOf('cold'))!;
    expect(algorithm.cost(cold, clock.now())).toBe(0);
    expect(pool.acquire().backend.id).toBe(idOf('cold'));
    // cold now has a call in flight and still no latency sample.
    expect(algorithm.cost(cold, clock.now())).toBeGreaterThan(2 ** 46);
    for (let i = 0; i < 10; i++) expect(pool.acquire().backend.id).toBe(idOf('warm'));
  });

  it('decays an idle backend cost with the 10 s time constant', () => {
    const algorithm = new PeakEwma();
    const { pool, clock } = makePool(algorithm, [url('a')]);
    sample(pool, 'a', 100);
    const a = pool.get(idOf('a'))!;
    expect(algorithm.cost(a, clock.now())).toBeCloseTo(100, 6);
    clock.advance(10_000);
    expect(algorithm.cost(a, clock.now())).toBeCloseTo(100 / Math.E, 6);
    expect(pool.decayedLatency(a)).toBeCloseTo(100 / Math.E, 6);
  });

  it('jumps to a latency spike at once and decays towards lower samples', () => {
    const { pool, clock } = makePool(new PeakEwma(), [url('a')]);
    sample(pool, 'a', 10);
    sample(pool, 'a', 200);
    const a = pool.get(idOf('a'))!;
    expect(a.latencyEwma).toBe(200);
    clock.advance(5000);
    sample(pool, 'a', 10);
    const w = Math.exp(-5000 / 10_000);
    expect(a.latencyEwma).toBeCloseTo(200 * w + 10 * (1 - w), 6);
  });

  it('decides like the cost at the current time, for samples taken at different times', () => {
    // Two candidates: both are always drawn, so the pick is the cheaper by cost() (a wins ties).
    const random = seededRandom(3);
    for (let trial = 0; trial < 200; trial++) {
      const algorithm = new PeakEwma();
      const { pool, clock } = makePool(algorithm, ['a', 'b'].map(url), trial);
      const la = 1 + Math.floor(random() * 200);
      const lb = 1 + Math.floor(random() * 200);
      sample(pool, 'a', la);
      clock.advance(Math.floor(random() * 30_000));
      sample(pool, 'b', lb);
      hold(pool, 'a', Math.floor(random() * 3));
      hold(pool, 'b', Math.floor(random() * 3));
      clock.advance(Math.floor(random() * 30_000));
      const [a, b] = pool.backends() as [BackendView, BackendView];
      const ca = algorithm.cost(a, clock.now());
      const cb = algorithm.cost(b, clock.now());
      if (Math.abs(ca - cb) < 1e-9 * Math.max(ca, cb)) continue;
      const expected = ca < cb ? idOf('a') : idOf('b');
      expect(algorithm.pick(pool.eligible())!.id).toBe(expected);
    }
  });

  it("with choices: 'all' picks the cheapest of every backend", () => {
    const algorithm = new PeakEwma({ choices: 'all' });
    const { pool } = makePool(algorithm, ['a', 'b', 'c', 'd'].map(url));
    sample(pool, 'a', 40);
    sample(pool, 'b', 20);
    sample(pool, 'c', 5);
    sample(pool, 'd', 80);
    expect(pool.explain().wouldPick).toBe(idOf('c'));
    for (let i = 0; i < 20; i++) expect(algorithm.pick(pool.eligible())!.id).toBe(idOf('c'));
  });

  // With zone-aware routing on part of the calls, the pool announces the whole tier and each of
  // its zones: every backend is in two of the arrays, but counts once in the mean.
  it('takes the mean in flight over the backends, once each, when zones share a tier', () => {
    const backends = ['a', 'b', 'c'].flatMap((zone) =>
      [0, 1, 2, 3].map((i) => ({ url: url(`${zone}${i}`), zone })),
    );
    const means: number[] = [];
    for (const zoneAware of [false, { localZone: 'a', routingEnabled: 0.5 }] as const) {
      const algorithm = new PeakEwma();
      const { pool, clock } = testPool(backends, {
        algorithm,
        zoneAware,
        random: seededRandom(42),
      });
      sample(pool, 'a0', 10);
      hold(pool, 'b1', 4);
      hold(pool, 'c2', 2);
      // An idle backend costs latency × (1 + mean): 6 calls over 12 backends.
      means.push(algorithm.cost(pool.get(idOf('a0'))!, clock.now()) / 10 - 1);
      expect(pool.explain().note).toContain('+ 0.5 in flight per backend');
    }
    expect(means[0]).toBeCloseTo(0.5, 9);
    expect(means[1]).toBeCloseTo(0.5, 9);
  });

  it("works attached by other code, without the pool's counts: the mean of the candidates", () => {
    const { pool, clock } = testPool(['a', 'b', 'c'].map(url));
    sample(pool, 'a', 10);
    sample(pool, 'b', 10);
    hold(pool, 'a', 3);
    const algorithm = new PeakEwma({ choices: 'all' });
    algorithm.attach({ clock, random: seededRandom(1), latencyDecayMs: 10_000 });
    const candidates = pool.backends().slice(0, 2);
    // 3 calls over the 2 candidates: a costs 10 × (4 + 1.5), b 10 × (1 + 1.5).
    expect(algorithm.pick(candidates)!.id).toBe(idOf('b'));
    expect(algorithm.explain(candidates).note).toContain('1.5 in flight per backend');
    expect(algorithm.explain(candidates).wouldPick!.id).toBe(idOf('b'));
  });

  it.each([{ choices: 3 }, { choices: '2' }, { decay: 1 }, { cost: 'peak' }, { cost: 1 }])(
    'rejects %o',
    (options) => {
      expect(() => new PeakEwma(options as never)).toThrow(LoadBalancerConfigError);
    },
  );
});

describe('RandomPick', () => {
  it.each([
    { weights: { a: 1, b: 1, c: 1, d: 1 } },
    { weights: { a: 1, b: 2, c: 3, d: 4 } },
    { weights: { a: 10, b: 1 } },
    { weights: { a: 0.25, b: 0.5, c: 2.25 } },
  ])('picks in proportion to weights $weights', ({ weights }) => {
    const { pool } = makePool(new RandomPick(), weighted(weights), 11);
    const total = Object.values(weights).reduce((s, w) => s + w, 0);
    const counts: Record<string, number> = {};
    const picks = 100_000;
    for (let i = 0; i < picks; i++) {
      const name = nameOf(pool.acquire().backend.id);
      counts[name] = (counts[name] ?? 0) + 1;
    }
    for (const [name, w] of Object.entries(weights)) {
      // Binomial standard deviation is at most 0.0016 at this size; allow 4 of them.
      expect(Math.abs((counts[name] ?? 0) / picks - w / total)).toBeLessThan(0.0065);
    }
  });

  it('is reproducible under the same seed', () => {
    const run = () => sequence(makePool(new RandomPick(), weighted({ a: 1, b: 2 }), 5).pool, 40);
    expect(run()).toBe(run());
  });

  it('draws from a retry reduced list without dropping its table', () => {
    const { pool } = makePool(new RandomPick(), weighted({ a: 1, b: 1, c: 2 }), 2);
    for (let i = 0; i < 200; i++) {
      const lease = pool.acquire({ exclude: [idOf('c')] });
      expect(lease.backend.id).not.toBe(idOf('c'));
      lease.release();
    }
  });
});

describe('algorithm instances', () => {
  it('serve one pool only', () => {
    const algorithm = new RoundRobin();
    makePool(algorithm, [url('a')]);
    expect(() => makePool(algorithm, [url('b')])).toThrow(LoadBalancerConfigError);
  });
});

describe('RoundRobin with retries that exclude a failing backend', () => {
  it('keeps every healthy backend in turn (a shared counter used to starve one)', async () => {
    const { BackendPool, RoundRobin } = await import('../../src/index.js');
    const { ManualClock, seededRandom } = await import('../../src/testing/index.js');
    const pool = new BackendPool({
      backends: ['http://a:1', 'http://b:1', 'http://c:1'],
      algorithm: new RoundRobin({ startIndex: 0 }),
      clock: new ManualClock(),
      random: seededRandom(3),
      skew: false,
    });
    const served = new Map<string, number>();
    for (let call = 0; call < 60; call++) {
      let lease = pool.acquire();
      if (lease.backend.id === 'a:1') {
        // No health checks: the dead backend stays eligible and each call retries elsewhere.
        lease.release({ ok: false, failure: 'connect' });
        lease = pool.acquire({ exclude: ['a:1'] });
      }
      served.set(lease.backend.id, (served.get(lease.backend.id) ?? 0) + 1);
      lease.release({ ok: true });
    }
    expect(served.get('a:1')).toBeUndefined();
    expect(served.get('b:1')).toBe(30);
    expect(served.get('c:1')).toBe(30);
  });
});

describe('every algorithm with two priority tiers sharing the calls', () => {
  // Tier 0 at 2 of 4 healthy takes 70% (Envoy's priority load), tier 1 the other 30%. Each
  // algorithm keeps its own state per tier's snapshot: the split holds, and within each tier the
  // calls spread evenly over its healthy backends.
  const backends: BackendSpec[] = [
    url('a'),
    url('b'),
    url('c'),
    url('d'),
    { url: url('x'), priority: 1 },
    { url: url('y'), priority: 1 },
  ];
  // Rotations (strict: each tier's backends take turns exactly) and random or hashed picks.
  const algorithms = EVERY_ALGORITHM;

  it.each(algorithms)('%s', (_name, make, strict) => {
    const { pool } = makePool(make(), backends, 11);
    pool.setHealthy(idOf('c'), false);
    pool.setHealthy(idOf('d'), false);
    const counts: Record<string, number> = {};
    const n = 4000;
    for (let i = 0; i < n; i++) {
      const lease = pool.acquire({ key: `user-${i}` });
      const name = nameOf(lease.backend.id);
      counts[name] = (counts[name] ?? 0) + 1;
      lease.release();
    }
    expect(Object.keys(counts).sort()).toEqual(['a', 'b', 'x', 'y']);
    const share = (name: string) => counts[name]! / n;
    expect(share('a') + share('b')).toBeCloseTo(0.7, 1);
    expect(share('a')).toBeCloseTo(0.35, 1);
    expect(share('x')).toBeCloseTo(0.15, 1);
    if (strict) {
      expect(Math.abs(counts.a! - counts.b!)).toBeLessThanOrEqual(1);
      expect(Math.abs(counts.x! - counts.y!)).toBeLessThanOrEqual(1);
    }
  });
});
