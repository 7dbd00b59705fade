import { readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { HealthCheckTimeoutError } from '../../src/errors/health-check-timeout-error.js';
import { PoolClosedError } from '../../src/errors/pool-closed-error.js';
import { HealthChecker, type HealthCheckerOptions } from '../../src/health/health-checker.js';
import { httpProbe, type Probe } from '../../src/health/probes.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { BackendState } from '../../src/types.js';
import { expectConfigErrors } from '../support/config-errors.js';
import { numbered } from '../support/pools.js';

type Verdict = boolean | 'hang' | 'ignore-abort' | { delayMs: number; ok: boolean };

function setup(n = 3, seed = 7) {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends: numbered(n),
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    random: seededRandom(seed),
    skew: false,
  });
  const verdicts = new Map<string, Verdict>();
  const calls: { id: string; at: number }[] = [];
  const active = new Map<string, number>();
  let maxActive = 0;
  const signals: AbortSignal[] = [];
  const probe: Probe = (backend, signal) => {
    calls.push({ id: backend.id, at: clock.now() });
    signals.push(signal);
    const now = (active.get(backend.id) ?? 0) + 1;
    active.set(backend.id, now);
    maxActive = Math.max(maxActive, now);
    const done = (): void => {
      active.set(backend.id, (active.get(backend.id) ?? 1) - 1);
    };
    const v = verdicts.get(backend.id) ?? true;
    if (v === 'hang') {
      return new Promise((_, reject) => {
        signal.addEventListener('abort', () => {
          done();
          reject(signal.reason);
        });
      });
    }
    if (v === 'ignore-abort') return new Promise(() => {});
    if (typeof v === 'object') {
      return new Promise((resolve) => {
        clock.setTimeout(() => {
          done();
          resolve(v.ok);
        }, v.delayMs);
      });
    }
    done();
    return Promise.resolve(v);
  };
  const states: { id: string; from: BackendState; to: BackendState; reason: string }[] = [];
  pool.on('state', (e) =>
    states.push({ id: e.backend.id, from: e.from, to: e.to, reason: e.reason }),
  );
  const checker = (options: HealthCheckerOptions = {}): HealthChecker =>
    new HealthChecker(pool, { probe, jitter: 0, intervalMs: 1000, timeoutMs: 100, ...options });
  const timesOf = (id: string): number[] => calls.filter((c) => c.id === id).map((c) => c.at);
  return {
    clock,
    pool,
    verdicts,
    calls,
    signals,
    states,
    checker,
    timesOf,
    maxActive: () => maxActive,
  };
}

describe('HealthChecker: configuration', () => {
  const pool = new BackendPool({ backends: ['http://a:1'], clock: new ManualClock(), skew: false });
  const probe: Probe = async () => true;
  it.each([
    ['timeout equal to interval', { probe, intervalMs: 1000, timeoutMs: 1000 }, 'timeoutMs'],
    ['timeout above interval', { probe, intervalMs: 1000, timeoutMs: 5000 }, 'timeoutMs'],
    ['default interval, long timeout', { probe, timeoutMs: 5000 }, 'timeoutMs'],
    ['unknown option', { probe, intervalMS: 10 }, 'HealthCheckerOptions.intervalMS'],
    ['zero interval', { probe, intervalMs: 0 }, 'intervalMs'],
    ['threshold 0', { probe, healthyThreshold: 0 }, 'healthyThreshold'],
    ['fractional threshold', { probe, unhealthyThreshold: 1.5 }, 'unhealthyThreshold'],
    ['jitter above 0.5', { probe, jitter: 0.6 }, 'jitter'],
    ['bad role', { probe, role: 'startup' }, 'role'],
    ['bad initial state', { probe, initialState: 'down' }, 'initialState'],
    ['tcp without a probe', { type: 'tcp' }, 'probe'],
    ['custom without a probe', { type: 'custom' }, 'probe'],
    ['http options next to a probe', { probe, path: '/x' }, 'path'],
    ['probe not a function', { probe: 'GET /health' }, 'probe'],
    ['bad expected statuses', { expectedStatuses: [200, 1000] }, 'expectedStatuses[1]'],
    ['empty expected statuses', { expectedStatuses: [] }, 'expectedStatuses'],
    ['full URL as path', { path: 'http://other/health' }, 'path'],
    ['bad method', { method: 'POST' }, 'method'],
    [
      'CR/LF in a header value',
      { headers: { 'x-token': 'a\r\nX-Injected: 1' } },
      'headers.x-token',
    ],
    ['LF in a header value', { headers: { 'x-token': 'a\nb' } }, 'headers.x-token'],
    ['NUL in a header value', { headers: { 'x-token': 'a\u0000b' } }, 'headers.x-token'],
    ['a leading space in a header value', { headers: { 'x-token': ' a' } }, 'headers.x-token'],
    [
      'a character above U+00FF in a header value',
      { headers: { 'x-token': 'a\u0100' } },
      'headers.x-token',
    ],
    ['a space in a header name', { headers: { 'x token': 'a' } }, 'headers'],
    ['a colon in a header name', { headers: { 'x-token:': 'a' } }, 'headers'],
    ['an empty header name', { headers: { '': 'a' } }, 'headers'],
    ['a scheme-relative path to another host', { path: '//other-host/h' }, 'path'],
    ['a backslash path to another host', { path: '\\\\other-host/h' }, 'path'],
    ['a slash-backslash path to another host', { path: '/\\other-host/h' }, 'path'],
    ['a path with a newline', { path: '/he\nalth' }, 'path'],
    ['a path with a tab', { path: '/he\talth' }, 'path'],
    ['a path with a space', { path: '/he alth' }, 'path'],
  ])('rejects %s', (_name, options, field) => {
    let thrown: unknown;
    try {
      new HealthChecker(pool, options as HealthCheckerOptions);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(LoadBalancerConfigError);
    expect((thrown as LoadBalancerConfigError).field).toBe(field);
  });

  it('accepts header values and paths the RFC 9110 grammar allows', () => {
    const ok = [
      { headers: { 'x-token': 'a\tb c', "x-!#$%&'*+-.^_`|~": '', 'x-latin1': 'caf\u00e9' } },
      { path: 'health' },
      { path: '../health?full=1' },
      { path: '/health/ready?x=%20' },
    ];
    for (const options of ok) expect(() => new HealthChecker(pool, options)).not.toThrow();
  });

  it('httpProbe() refuses the same headers and paths when called alone', () => {
    expectConfigErrors([
      [() => httpProbe({ headers: { a: 'x\r\ny' } }), 'headers.a'],
      [() => httpProbe({ headers: { 'a b': 'x' } }), 'headers'],
      [() => httpProbe({ path: '//other-host/h' }), 'path'],
    ]);
  });

  it('says why the timeout must be below the interval', () => {
    expect(() => new HealthChecker(pool, { probe, intervalMs: 1000, timeoutMs: 1000 })).toThrow(
      /less than intervalMs \(1000\)/,
    );
  });

  it('points a tcp check without a probe at loadwise/node', () => {
    expect(() => new HealthChecker(pool, { type: 'tcp' })).toThrow(/loadwise\/node/);
  });

  it('rejects a non-pool and a closed pool', async () => {
    expect(() => new HealthChecker({} as BackendPool, { probe })).toThrow(LoadBalancerConfigError);
    const closed = new BackendPool({ clock: new ManualClock(), skew: false });
    await closed.close();
    expect(() => new HealthChecker(closed, { probe })).toThrow(PoolClosedError);
  });

  it('derives distinct default names per role, type and path', () => {
    const names = [
      new HealthChecker(pool, { path: '/health/ready' }),
      new HealthChecker(pool, { role: 'liveness', path: '/health/live' }),
      new HealthChecker(pool, { probe }),
      new HealthChecker(pool, { probe, type: 'tcp' }),
    ].map((c) => {
      void c.close();
      return `${c.name}|${c.type}|${c.role}`;
    });
    expect(names).toEqual([
      'readiness:http:/health/ready|http|readiness',
      'liveness:http:/health/live|http|liveness',
      'readiness:custom|custom|readiness',
      'readiness:tcp|tcp|readiness',
    ]);
  });

  it('never imports node: modules from the core health code', () => {
    const dir = new URL('../../src/health/', import.meta.url);
    for (const file of readdirSync(dir)) {
      const text = readFileSync(new URL(file, dir), 'utf8');
      expect(text, file).not.toMatch(/from ['"]node:/);
    }
  });
});

describe('HealthChecker: schedule', () => {
  it('probes every backend at once on start, then every intervalMs after each probe', async () => {
    const t = setup(2);
    const checker = t.checker().start();
    await t.clock.advanceAsync(0);
    await t.clock.advanceAsync(3500);
    expect(t.timesOf('b0')).toEqual([0, 1000, 2000, 3000]);
    expect(t.timesOf('b1')).toEqual([0, 1000, 2000, 3000]);
    await checker.close();
  });

  it('keeps every wait within interval × [1 - jitter, 1 + jitter] and spreads the first probes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), async (seed) => {
        const t = setup(4, seed);
        const checker = t.checker({ jitter: 0.2 }).start();
        await t.clock.advanceAsync(10_000);
        const firsts: number[] = [];
        for (const id of ['b0', 'b1', 'b2', 'b3']) {
          const times = t.timesOf(id);
          firsts.push(times[0]!);
          expect(times[0]).toBeGreaterThanOrEqual(0);
          expect(times[0]).toBeLessThanOrEqual(200);
          for (let i = 1; i < times.length; i++) {
            const gap = times[i]! - times[i - 1]!;
            expect(gap).toBeGreaterThanOrEqual(800);
            expect(gap).toBeLessThanOrEqual(1200);
          }
        }
        // Four backends never all fire at the same instant under jitter.
        expect(new Set(firsts).size).toBeGreaterThan(1);
        await checker.close();
      }),
      { seed: 42, numRuns: 15 },
    );
  });

  it('probes fast while a backend changes state and at unhealthyIntervalMs while it is down', async () => {
    const t = setup(1);
    const checker = t
      .checker({
        fastIntervalMs: 200,
        unhealthyIntervalMs: 500,
        healthyThreshold: 2,
        unhealthyThreshold: 3,
      })
      .start();
    await t.clock.advanceAsync(0); // pass at 0 → next at 1000
    t.verdicts.set('b0', false);
    await t.clock.advanceAsync(1000); // fail 1 at 1000 → fast
    await t.clock.advanceAsync(400); // fail 2 at 1200, fail 3 at 1400 → unhealthy
    expect(t.pool.get('b0')?.state).toBe('unhealthy');
    await t.clock.advanceAsync(500); // fail at 1900 (unhealthy interval)
    t.verdicts.set('b0', true);
    await t.clock.advanceAsync(500); // pass 1 at 2400 → fast
    await t.clock.advanceAsync(200); // pass 2 at 2600 → healthy → 1000
    expect(t.pool.get('b0')?.state).toBe('healthy');
    await t.clock.advanceAsync(1000); // 3600
    expect(t.timesOf('b0')).toEqual([0, 1000, 1200, 1400, 1900, 2400, 2600, 3600]);
    await checker.close();
  });

  it('never runs a probe on a backend while its previous probe is still running', async () => {
    const t = setup(2);
    // Failing probes take 300 ms; the fast interval (50 ms) is much shorter than that.
    t.verdicts.set('b0', { delayMs: 300, ok: false });
    t.verdicts.set('b1', { delayMs: 300, ok: false });
    const checker = t.checker({ timeoutMs: 500, fastIntervalMs: 50, unhealthyIntervalMs: 50 });
    checker.start();
    await t.clock.advanceAsync(0);
    const joined = checker.checkNow();
    await t.clock.advanceAsync(5000);
    const results = await joined;
    expect(results.map((r) => [r.ok, r.durationMs])).toEqual([
      [false, 300],
      [false, 300],
    ]);
    expect(t.maxActive()).toBe(1);
    const times = t.timesOf('b0');
    expect(times.length).toBeGreaterThan(10);
    // checkNow() joined the running probes; each probe starts 50 ms after the previous ended.
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBe(350);
    await checker.close();
  });

  it('times a probe out on the checker clock and aborts its signal with HealthCheckTimeoutError', async () => {
    const t = setup(1);
    t.verdicts.set('b0', 'hang');
    const checker = t.checker({ timeoutMs: 250 });
    const pending = checker.checkNow();
    await t.clock.advanceAsync(249);
    expect(checker.status()[0]?.probing).toBe(true);
    await t.clock.advanceAsync(1);
    const [result] = await pending;
    expect(result?.ok).toBe(false);
    expect(result?.durationMs).toBe(250);
    expect(result?.error).toBeInstanceOf(HealthCheckTimeoutError);
    expect(result?.error).toMatchObject({ code: 'LB_HEALTH_CHECK_TIMEOUT', timeoutMs: 250 });
    expect(t.signals[0]?.aborted).toBe(true);
    expect(t.signals[0]?.reason).toBe(result?.error);
    await checker.close();
  });

  it('fails a probe that ignores its signal at the timeout and probes again on schedule', async () => {
    const t = setup(1);
    t.verdicts.set('b0', 'ignore-abort');
    const checker = t.checker({ timeoutMs: 100, fastIntervalMs: 300 }).start();
    await t.clock.advanceAsync(0);
    await t.clock.advanceAsync(100);
    expect(checker.status()[0]?.last?.reason).toMatch(/timed out after 100 ms/);
    await t.clock.advanceAsync(300);
    expect(t.timesOf('b0')).toEqual([0, 400]);
    await checker.close();
  });

  it('close() leaves no timer behind, even with probes in flight', async () => {
    const t = setup(3);
    t.verdicts.set('b1', 'hang');
    const checker = t.checker().start();
    await t.clock.advanceAsync(0);
    expect(t.clock.pendingTimers()).toBeGreaterThan(0);
    expect(t.clock.refedTimers()).toBe(0); // background timers are unref'd
    await checker.close();
    expect(t.clock.pendingTimers()).toBe(0);
    const before = t.calls.length;
    await t.clock.advanceAsync(10_000);
    expect(t.calls.length).toBe(before);
    expect(checker.closed).toBe(true);
    await expect(checker.checkNow()).rejects.toBeInstanceOf(PoolClosedError);
    expect(() => checker.start()).toThrow(PoolClosedError);
    await checker.close(); // idempotent
  });

  it('stops when the pool closes', async () => {
    const t = setup(2);
    const checker = t.checker().start();
    await t.clock.advanceAsync(0);
    await t.pool.close();
    expect(checker.closed).toBe(true);
    expect(t.clock.pendingTimers()).toBe(0);
  });

  it('stop() pauses without reporting the cancelled probe; start() resumes', async () => {
    const t = setup(1);
    t.verdicts.set('b0', 'hang');
    const checker = t.checker({ unhealthyThreshold: 1 }).start();
    await t.clock.advanceAsync(0);
    checker.stop();
    await t.clock.advanceAsync(0);
    expect(t.clock.pendingTimers()).toBe(0);
    expect(t.pool.get('b0')?.state).toBe('healthy');
    expect(checker.status()[0]?.last).toBeUndefined();
    t.verdicts.set('b0', false);
    checker.start();
    await t.clock.advanceAsync(0);
    expect(t.pool.get('b0')?.state).toBe('unhealthy');
    await checker.close();
  });

  it('checkNow() before start() probes once and schedules nothing', async () => {
    const t = setup(2);
    t.verdicts.set('b1', false);
    const checker = t.checker({ unhealthyThreshold: 1 });
    const results = await checker.checkNow();
    expect(results.map((r) => [r.id, r.ok])).toEqual([
      ['b0', true],
      ['b1', false],
    ]);
    expect(t.pool.get('b1')?.state).toBe('unhealthy');
    expect(t.clock.pendingTimers()).toBe(0);
    await checker.close();
  });

  it('follows backends added to and removed from the pool', async () => {
    const t = setup(1);
    const checker = t.checker().start();
    await t.clock.advanceAsync(0);
    t.pool.add({ url: 'http://10.0.0.9:80', id: 'late' });
    await t.clock.advanceAsync(0);
    expect(t.timesOf('late')).toEqual([0]);
    t.verdicts.set('late', 'hang');
    await t.clock.advanceAsync(1000);
    expect(checker.status().find((s) => s.id === 'late')?.probing).toBe(true);
    await t.pool.remove('late', { drain: false });
    await t.clock.advanceAsync(5000);
    expect(t.timesOf('late')).toEqual([0, 1000]);
    expect(checker.status().map((s) => s.id)).toEqual(['b0']);
    await checker.close();
    expect(t.clock.pendingTimers()).toBe(0);
  });
});

describe('HealthChecker: thresholds and results', () => {
  it('flips state only after unhealthyThreshold failures and healthyThreshold passes', async () => {
    const t = setup(1);
    const checker = t.checker({ healthyThreshold: 2, unhealthyThreshold: 3 });
    t.verdicts.set('b0', false);
    for (const expected of ['healthy', 'healthy', 'unhealthy', 'unhealthy']) {
      await checker.checkNow();
      expect(t.pool.get('b0')?.state).toBe(expected);
    }
    t.verdicts.set('b0', true);
    for (const expected of ['unhealthy', 'healthy', 'healthy']) {
      await checker.checkNow();
      expect(t.pool.get('b0')?.state).toBe(expected);
    }
    expect(t.states.map((s) => [s.to, s.reason])).toEqual([
      ['unhealthy', '3 consecutive failing probes (readiness:custom): probe returned false'],
      ['healthy', '2 consecutive passing probes (readiness:custom)'],
    ]);
    await checker.close();
  });

  it('does not flap when results alternate', async () => {
    const t = setup(1);
    const changes: boolean[] = [];
    const checker = t.checker({ healthyThreshold: 2, unhealthyThreshold: 2 });
    checker.on('change', (e) => changes.push(e.healthy));
    for (let i = 0; i < 20; i++) {
      t.verdicts.set('b0', i % 2 === 0);
      await checker.checkNow();
    }
    expect(changes).toEqual([]);
    expect(t.states).toEqual([]);
    await checker.close();
  });

  it.each([
    ['true', true, true, 'passed'],
    ['undefined', undefined, true, 'passed'],
    ['false', false, false, 'probe returned false'],
    ['{ ok: false, reason }', { ok: false, reason: 'disk full' }, false, 'disk full'],
    ['{ ok: true, status }', { ok: true, status: 204 }, true, 'passed'],
    ['a string', 'yes', false, 'unexpected value (string)'],
    ['a number', 1, false, 'unexpected value (number)'],
  ])('reads a probe resolving to %s', async (_name, value, ok, reason) => {
    const t = setup(1);
    const checker = new HealthChecker(t.pool, {
      probe: async () => value as boolean,
      timeoutMs: 100,
      intervalMs: 1000,
    });
    const [result] = await checker.checkNow();
    expect(result?.ok).toBe(ok);
    expect(result?.reason).toContain(reason);
    await checker.close();
  });

  it('fails a probe that throws, synchronously or not, keeping the error', async () => {
    const t = setup(2);
    const boom = new Error('database unreachable');
    const checker = new HealthChecker(t.pool, {
      probe: (backend) => {
        if (backend.id === 'b0') throw boom;
        return Promise.reject(new TypeError('fetch failed', { cause: { code: 'X' } }));
      },
    });
    const [a, b] = await checker.checkNow();
    expect(a).toMatchObject({ ok: false, reason: 'database unreachable', error: boom });
    expect(b).toMatchObject({ ok: false, reason: 'fetch failed' });
    await checker.close();
  });

  it('emits a probe event per result and a change event per transition', async () => {
    const t = setup(1);
    const probes: boolean[] = [];
    const changes: unknown[] = [];
    const checker = t.checker({ unhealthyThreshold: 2 });
    checker.on('probe', (e) => probes.push(e.ok));
    checker.on('change', (e) =>
      changes.push({ id: e.backend.id, healthy: e.healthy, previous: e.previous }),
    );
    t.verdicts.set('b0', false);
    await checker.checkNow();
    await checker.checkNow();
    expect(probes).toEqual([false, false]);
    expect(changes).toEqual([{ id: 'b0', healthy: false, previous: true }]);
    await checker.close();
  });

  it('a passing probe ends an ejection early', async () => {
    const t = setup(2);
    const checker = t.checker();
    t.pool.eject('b0', 60_000, 'outlier');
    expect(t.pool.get('b0')?.state).toBe('ejected');
    await checker.checkNow();
    expect(t.pool.get('b0')?.state).toBe('healthy');
    await checker.close();
  });
});

describe('HealthChecker: roles and initial state', () => {
  it('a liveness checker reports nothing to the pool and only emits events', async () => {
    const t = setup(2);
    const changes: boolean[] = [];
    const all: string[] = [];
    const checker = t.checker({ role: 'liveness', unhealthyThreshold: 1 });
    checker.on('change', (e) => changes.push(e.healthy));
    checker.on('all-unhealthy', (e) => all.push(e.message));
    t.verdicts.set('b0', false);
    t.verdicts.set('b1', false);
    await checker.checkNow();
    expect(changes).toEqual([false, false]);
    expect(t.pool.stats().healthy).toBe(2);
    expect(t.states).toEqual([]);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatch(/liveness checker: routing is unchanged/);
    await checker.close();
  });

  it('readiness and liveness checkers watch one pool side by side', async () => {
    const t = setup(1);
    const readiness = t.checker({ unhealthyThreshold: 1 });
    const liveness = new HealthChecker(t.pool, {
      role: 'liveness',
      probe: async () => true,
      timeoutMs: 100,
      intervalMs: 1000,
    });
    t.verdicts.set('b0', false);
    await Promise.all([readiness.checkNow(), liveness.checkNow()]);
    expect(t.pool.get('b0')?.state).toBe('unhealthy');
    expect(liveness.status()[0]?.healthy).toBe(true);
    await readiness.close();
    await liveness.close();
  });

  it("initialState 'unknown' holds backends out until their first probe, under the panic rule", async () => {
    const t = setup(3);
    t.verdicts.set('b2', false);
    const checker = t.checker({ initialState: 'unknown', jitter: 0.1 });
    expect(t.pool.stats().healthy).toBe(3); // nothing changes before start()
    checker.start();
    expect(t.pool.stats().healthy).toBe(0);
    expect(t.states.every((s) => s.reason === 'awaiting first probe (readiness:custom)')).toBe(
      true,
    );
    expect(t.pool.panic).toBe(true);
    expect(() => t.pool.acquire().release()).not.toThrow();
    await t.clock.advanceAsync(100); // every first probe falls within jitter × interval
    // The first result decides at once, whatever the thresholds.
    expect(t.pool.backends().map((b) => b.state)).toEqual(['healthy', 'healthy', 'unhealthy']);
    expect(checker.status().map((s) => s.healthy)).toEqual([true, true, false]);
    await checker.close();
  });

  it('a backend added later starts unknown too', async () => {
    const t = setup(1);
    const checker = t.checker({ initialState: 'unknown' }).start();
    await t.clock.advanceAsync(0);
    t.pool.add({ url: 'http://10.0.0.7:80', id: 'new' });
    expect(t.pool.get('new')?.state).toBe('unhealthy');
    await t.clock.advanceAsync(0);
    expect(t.pool.get('new')?.state).toBe('healthy');
    await checker.close();
  });
});

describe('HealthChecker: every backend failing at once', () => {
  it('emits all-unhealthy once with the likely cause, keeps routing under panic, and recovers', async () => {
    const t = setup(3);
    const events: { message: string; total: number; panic: boolean }[] = [];
    const recovered: number[] = [];
    const checker = t.checker({ unhealthyThreshold: 2, healthyThreshold: 2 });
    checker.on('all-unhealthy', (e) => events.push(e));
    checker.on('recovered', (e) => recovered.push(e.healthy));
    for (const id of ['b0', 'b1', 'b2']) t.verdicts.set(id, false);
    for (let i = 0; i < 4; i++) await checker.checkNow();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ total: 3, panic: true });
    expect(events[0]?.message).toMatch(/All 3 backends failed/);
    expect(events[0]?.message).toMatch(/shared?/);
    expect(events[0]?.message).toMatch(/panic rule/);
    expect(t.pool.stats().healthy).toBe(0);
    const picked = Array.from({ length: 9 }, () => {
      const lease = t.pool.acquire();
      lease.release({ ok: false });
      return lease.backend.id;
    });
    expect(new Set(picked)).toEqual(new Set(['b0', 'b1', 'b2']));
    for (const id of ['b0', 'b1', 'b2']) t.verdicts.set(id, true);
    await checker.checkNow();
    expect(recovered).toEqual([]);
    await checker.checkNow();
    expect(recovered).toEqual([1]);
    expect(t.pool.stats().healthy).toBe(3);
    expect(t.pool.panic).toBe(false);
    await checker.close();
  });
});
