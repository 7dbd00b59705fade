import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  type BackendPoolOptions,
  type BackendSpec,
  LoadBalancerConfigError,
  LoadBalancerError,
  NoBackendAvailableError,
  PoolClosedError,
  UnknownBackendError,
} from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { configError } from '../support/config-errors.js';
import { idOf, testPool, url } from '../support/pools.js';

describe('BackendPool validation', () => {
  it.each<{ spec: unknown; field: string; value: unknown }>([
    { spec: 'not a url', field: 'backends[0].url', value: 'not a url' },
    { spec: 'http://', field: 'backends[0].url', value: 'http://' },
    { spec: '', field: 'backends[0].url', value: '' },
    { spec: 'http://u:p@a.test', field: 'backends[0].url', value: 'http://***@a.test/' },
    { spec: 'http://a.test/?x=1', field: 'backends[0].url', value: 'http://a.test/?x=1' },
    { spec: 'http://a.test/#top', field: 'backends[0].url', value: 'http://a.test/#top' },
    { spec: { weight: 1 }, field: 'backends[0].url', value: undefined },
    { spec: { url: 42 }, field: 'backends[0].url', value: 42 },
    { spec: { url: url('a'), weight: 0 }, field: 'backends[0].weight', value: 0 },
    { spec: { url: url('a'), weight: -1 }, field: 'backends[0].weight', value: -1 },
    { spec: { url: url('a'), weight: Number.NaN }, field: 'backends[0].weight', value: Number.NaN },
    {
      spec: { url: url('a'), weight: Number.POSITIVE_INFINITY },
      field: 'backends[0].weight',
      value: Number.POSITIVE_INFINITY,
    },
    { spec: { url: url('a'), weight: '3' }, field: 'backends[0].weight', value: '3' },
    { spec: { url: url('a'), id: '' }, field: 'backends[0].id', value: '' },
    { spec: { url: url('a'), id: 7 }, field: 'backends[0].id', value: 7 },
    { spec: { url: url('a'), zone: 5 }, field: 'backends[0].zone', value: 5 },
    { spec: { url: url('a'), priority: -1 }, field: 'backends[0].priority', value: -1 },
    { spec: { url: url('a'), priority: 0.5 }, field: 'backends[0].priority', value: 0.5 },
    { spec: { url: url('a'), metadata: [1] }, field: 'backends[0].metadata', value: [1] },
    { spec: { url: url('a'), wieght: 2 }, field: 'backends[0].wieght', value: 2 },
    { spec: 42, field: 'backends[0]', value: 42 },
    { spec: null, field: 'backends[0]', value: null },
  ])('rejects backend $spec naming $field', ({ spec, field, value }) => {
    const e = configError(() => testPool([spec as BackendSpec]));
    expect(e.field).toBe(field);
    expect(Object.is(e.value, value) || JSON.stringify(e.value) === JSON.stringify(value)).toBe(
      true,
    );
    expect(e.code).toBe('LB_CONFIG');
    expect(e.message).toContain(field);
  });

  it('names the duplicate id and its index', () => {
    const e = configError(() => testPool([url('a'), url('b'), 'http://a.test']));
    expect(e.field).toBe('backends[2].id');
    expect(e.value).toBe(idOf('a'));
    expect(e.message).toContain('"a.test:80"');
  });

  it('accepts the same URL twice under explicit ids', () => {
    const { pool } = testPool([
      { url: url('a'), id: 'a1' },
      { url: url('a'), id: 'a2' },
    ]);
    expect(pool.backends().map((b) => b.id)).toEqual(['a1', 'a2']);
  });

  it.each<{ options: Record<string, unknown>; field: string }>([
    { options: { wat: 1 }, field: 'BackendPoolOptions.wat' },
    { options: { backends: url('a') }, field: 'backends' },
    { options: { minHealthy: -1 }, field: 'minHealthy' },
    { options: { minHealthy: 1.5 }, field: 'minHealthy' },
    { options: { minHealthy: '1' }, field: 'minHealthy' },
    { options: { panicThreshold: 1.5 }, field: 'panicThreshold' },
    { options: { panicThreshold: -0.1 }, field: 'panicThreshold' },
    { options: { overprovisioningFactor: 0 }, field: 'overprovisioningFactor' },
    {
      options: { overprovisioningFactor: Number.POSITIVE_INFINITY },
      field: 'overprovisioningFactor',
    },
    { options: { overprovisioningFactor: '1.4' }, field: 'overprovisioningFactor' },
    { options: { slowStartMs: -1 }, field: 'slowStartMs' },
    { options: { slowStartMinWeight: 0 }, field: 'slowStartMinWeight' },
    { options: { slowStartMinWeight: 2 }, field: 'slowStartMinWeight' },
    { options: { slowStartAggression: 0 }, field: 'slowStartAggression' },
    { options: { latencyDecayMs: 0 }, field: 'latencyDecayMs' },
    { options: { drainGraceMs: -5 }, field: 'drainGraceMs' },
    { options: { skew: 'yes' }, field: 'skew' },
    { options: { skew: { factor: 1 } }, field: 'skew.factor' },
    { options: { skew: { windowMs: 0 } }, field: 'skew.windowMs' },
    { options: { skew: { minRequests: 0 } }, field: 'skew.minRequests' },
    { options: { skew: { every: 1 } }, field: 'skew.every' },
    { options: { name: '' }, field: 'name' },
    { options: { clock: { now: () => 0 } }, field: 'clock' },
    { options: { random: 0.5 }, field: 'random' },
    { options: { algorithm: {} }, field: 'algorithm' },
  ])('rejects option $options naming $field', ({ options, field }) => {
    const e = configError(() => new BackendPool(options as BackendPoolOptions));
    expect(e.field).toBe(field);
  });

  it('rejects options that are not an object', () => {
    expect(configError(() => new BackendPool('x' as never)).field).toBe('BackendPoolOptions');
  });

  it('validates add() the same way and leaves the pool unchanged', () => {
    const { pool } = testPool([url('a')]);
    expect(configError(() => pool.add({ url: url('b'), weight: 0 })).field).toBe('backend.weight');
    expect(configError(() => pool.add(url('a'))).field).toBe('backend.id');
    expect(pool.backends()).toHaveLength(1);
  });

  it('normalizes URLs and derives ids from host and port', () => {
    const { pool } = testPool([
      'http://a.test',
      'https://b.test/api/',
      { url: 'http://c.test:8080/v1', weight: 2, zone: 'z1', metadata: { rack: 3 } },
    ]);
    expect(pool.backends().map((b) => [b.id, b.url])).toEqual([
      ['a.test:80', 'http://a.test'],
      ['b.test:443/api', 'https://b.test/api'],
      ['c.test:8080/v1', 'http://c.test:8080/v1'],
    ]);
    const c = pool.get('c.test:8080/v1')!;
    expect([c.weight, c.zone, c.metadata]).toEqual([2, 'z1', { rack: 3 }]);
    expect(Object.isFrozen(c.metadata)).toBe(true);
  });
});

describe('leases', () => {
  it('counts calls in flight and totals', () => {
    const { pool } = testPool([url('a'), url('b')]);
    const l1 = pool.acquire();
    const l2 = pool.acquire();
    const l3 = pool.acquire();
    const a = pool.get(idOf('a'))!;
    expect([a.inFlight, a.requests]).toEqual([2, 2]);
    expect(pool.stats().inFlight).toBe(3);
    l1.release({ ok: false, failure: 'http', status: 503 });
    l2.release({ ok: true });
    l3.release();
    expect(pool.stats()).toMatchObject({ inFlight: 0, healthy: 2, total: 2, panic: false });
    expect([a.inFlight, a.requests, a.failures]).toEqual([0, 2, 1]);
  });

  it('ignores a second release: it returns false and changes nothing', () => {
    const { pool } = testPool([url('a')]);
    const releases: unknown[] = [];
    pool.on('release', (e) => releases.push(e.outcome));
    const lease = pool.acquire();
    expect(lease.released).toBe(false);
    expect(lease.release({ ok: false })).toBe(true);
    expect(lease.released).toBe(true);
    expect(lease.release({ ok: false })).toBe(false);
    expect(lease.release()).toBe(false);
    const a = pool.get(idOf('a'))!;
    expect([a.inFlight, a.failures]).toEqual([0, 1]);
    expect(releases).toHaveLength(1);
  });

  it('measures latency on the pool clock unless the outcome gives it', () => {
    const { pool, clock } = testPool([url('a')]);
    const seen: number[] = [];
    pool.on('release', (e) => seen.push(e.latencyMs));
    const lease = pool.acquire();
    expect(lease.acquiredAt).toBe(0);
    clock.advance(42);
    lease.release();
    pool.acquire().release({ ok: true, latencyMs: 7 });
    expect(seen).toEqual([42, 7]);
  });

  it('does not count an aborted call against the backend', () => {
    const { pool, clock } = testPool([url('a')]);
    const lease = pool.acquire();
    clock.advance(900);
    lease.release({ ok: false, failure: 'aborted' });
    const a = pool.get(idOf('a'))!;
    expect([a.failures, a.latencyEwma, a.inFlight]).toEqual([0, 0, 0]);
  });

  it.each([
    { outcome: 'ok', field: 'lease.release(outcome)' },
    { outcome: { ok: 'yes' }, field: 'lease.release(outcome).ok' },
    { outcome: null, field: 'lease.release(outcome)' },
    { outcome: { ok: true, latencyMs: Number.NaN }, field: 'lease.release(outcome).latencyMs' },
    { outcome: { ok: true, latencyMs: -1 }, field: 'lease.release(outcome).latencyMs' },
    {
      outcome: { ok: true, latencyMs: Number.POSITIVE_INFINITY },
      field: 'lease.release(outcome).latencyMs',
    },
    { outcome: { ok: true, latencyMs: '5' }, field: 'lease.release(outcome).latencyMs' },
  ])('rejects release($outcome) and keeps the lease open', ({ outcome, field }) => {
    const { pool } = testPool([url('a')]);
    const lease = pool.acquire();
    expect(configError(() => lease.release(outcome as never)).field).toBe(field);
    expect(lease.released).toBe(false);
    expect(pool.get(idOf('a'))!.inFlight).toBe(1);
    expect(lease.release()).toBe(true);
  });

  it.each([
    { ctx: 'user-1', field: 'ctx' },
    { ctx: { affinity: 'a.test:80' }, field: 'ctx.affinity' },
    { ctx: { affinity: { id: 3 } }, field: 'ctx.affinity' },
    { ctx: { affinity: null }, field: 'ctx.affinity' },
    { ctx: { exclude: 'a.test:80' }, field: 'ctx.exclude' },
    { ctx: { exclude: null }, field: 'ctx.exclude' },
    { ctx: { exclude: { size: 1 } }, field: 'ctx.exclude' },
  ])('rejects acquire($ctx) without counting a call', ({ ctx, field }) => {
    const { pool } = testPool([url('a'), url('b')]);
    expect(configError(() => pool.acquire(ctx as never)).field).toBe(field);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('emits acquire with the context', () => {
    const { pool } = testPool([url('a')]);
    const seen: unknown[] = [];
    pool.on('acquire', (e) => seen.push([e.backend.id, e.ctx]));
    pool.acquire({ key: 'k' });
    expect(seen).toEqual([[idOf('a'), { key: 'k' }]]);
  });
});

describe('NoBackendAvailableError', () => {
  it.each([
    {
      name: 'empty',
      setup: () => testPool([]).pool,
      reason: 'empty',
      counts: { healthy: 0, unhealthy: 0, draining: 0, ejected: 0 },
    },
    {
      name: 'all unhealthy (panic off)',
      setup: () => {
        const { pool } = testPool([url('a'), url('b')], { minHealthy: 0, panicThreshold: 0 });
        pool.setHealthy(idOf('a'), false);
        pool.setHealthy(idOf('b'), false);
        return pool;
      },
      reason: 'all-unhealthy',
      counts: { healthy: 0, unhealthy: 2, draining: 0, ejected: 0 },
    },
    {
      name: 'unhealthy and ejected (panic off)',
      setup: () => {
        const { pool } = testPool([url('a'), url('b')], { minHealthy: 0, panicThreshold: 0 });
        pool.setHealthy(idOf('a'), false);
        pool.eject(idOf('b'), 1000);
        return pool;
      },
      reason: 'all-unhealthy',
      counts: { healthy: 0, unhealthy: 1, draining: 0, ejected: 1 },
    },
    {
      name: 'all draining',
      setup: () => {
        const { pool } = testPool([url('a'), url('b')]);
        void pool.drain(idOf('a'));
        void pool.drain(idOf('b'));
        return pool;
      },
      reason: 'all-draining',
      counts: { healthy: 0, unhealthy: 0, draining: 2, ejected: 0 },
    },
  ])('says why: $name', ({ setup, reason, counts }) => {
    const pool = setup();
    let error: unknown;
    try {
      pool.acquire();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NoBackendAvailableError);
    expect(error).toBeInstanceOf(LoadBalancerError);
    const e = error as NoBackendAvailableError;
    expect(e.code).toBe('LB_NO_BACKEND');
    expect(e.reason).toBe(reason);
    expect(e.counts).toEqual(counts);
    expect(e.message).toContain(reason);
    expect(pool.explain().error).toBe(e.message);
  });

  it('after close: PoolClosedError, a NoBackendAvailableError with code LB_POOL_CLOSED', async () => {
    const { pool } = testPool([url('a')]);
    await pool.close();
    let error: unknown;
    try {
      pool.acquire();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PoolClosedError);
    expect(error).toBeInstanceOf(NoBackendAvailableError);
    expect(error).toMatchObject({ code: 'LB_POOL_CLOSED', reason: 'pool-closed' });
    expect(() => pool.add(url('b'))).toThrow(PoolClosedError);
    expect(() => pool.eject(idOf('a'), 10)).toThrow(PoolClosedError);
    expect(pool.explain()).toMatchObject({ wouldPick: undefined, note: 'pool closed' });
  });

  it('UnknownBackendError names the id and the known ones', async () => {
    const { pool } = testPool([url('a')]);
    for (const call of [
      () => pool.setHealthy('nope', false),
      () => pool.eject('nope', 10),
      () => pool.uneject('nope'),
      () => pool.undrain('nope'),
      () => pool.setWeight('nope', 2),
      () => pool.reportProbe('nope', { ok: true }),
      () => pool.drain('nope'),
    ]) {
      expect(call).toThrow(UnknownBackendError);
    }
    await expect(pool.remove('nope')).rejects.toMatchObject({
      code: 'LB_UNKNOWN_BACKEND',
      backendId: 'nope',
    });
    expect(() => pool.setHealthy('nope', false)).toThrow(/"nope".*a\.test:80/);
  });
});

describe('exclude', () => {
  it.each([
    { name: 'an array', exclude: [idOf('a'), idOf('b')] },
    { name: 'a Set', exclude: new Set([idOf('a'), idOf('b')]) },
  ])('avoids excluded backends given as $name', ({ exclude }) => {
    const { pool } = testPool([url('a'), url('b'), url('c')]);
    for (let i = 0; i < 6; i++) {
      const lease = pool.acquire({ exclude });
      expect(lease.backend.id).toBe(idOf('c'));
      lease.release();
    }
  });

  it('still picks when every routable backend is excluded', () => {
    const { pool } = testPool([url('a'), url('b')]);
    const lease = pool.acquire({ exclude: [idOf('a'), idOf('b')] });
    expect([idOf('a'), idOf('b')]).toContain(lease.backend.id);
  });

  it('ignores ids the pool does not hold, and restores eligibility after the pick', () => {
    const { pool } = testPool([url('a'), url('b')]);
    pool.acquire({ exclude: ['zzz', idOf('a')] });
    expect(pool.backends().map((b) => b.eligible)).toEqual([true, true]);
    expect(pool.eligible()).toHaveLength(2);
  });
});

describe('affinity', () => {
  it('routes to the pinned backend when it can take the call', () => {
    const { pool } = testPool([url('a'), url('b'), url('c')]);
    for (let i = 0; i < 5; i++) {
      expect(pool.acquire({ affinity: { id: idOf('c') } }).backend.id).toBe(idOf('c'));
    }
    expect(pool.explain({ affinity: { id: idOf('c') } })).toMatchObject({
      affinity: 'applied',
      wouldPick: idOf('c'),
    });
  });

  it.each([
    {
      name: 'unhealthy',
      setup: (p: BackendPool) => p.setHealthy(idOf('a'), false),
      allowDraining: true,
    },
    { name: 'ejected', setup: (p: BackendPool) => p.eject(idOf('a'), 1000), allowDraining: true },
    {
      name: 'draining without allowDraining',
      setup: (p: BackendPool) => void p.drain(idOf('a')),
      allowDraining: false,
    },
    {
      name: 'unknown (a is down too)',
      setup: (p: BackendPool) => p.setHealthy(idOf('a'), false),
      allowDraining: false,
      id: 'gone',
    },
  ])('falls back to the algorithm when the pinned backend is $name', (t) => {
    const { pool } = testPool([url('a'), url('b'), url('c')]);
    t.setup(pool);
    const affinity = { id: t.id ?? idOf('a'), allowDraining: t.allowDraining };
    for (let i = 0; i < 4; i++) expect(pool.acquire({ affinity }).backend.id).not.toBe(idOf('a'));
    expect(pool.explain({ affinity }).affinity).toBe('not-routable');
  });

  it('lets a draining backend serve existing sessions with allowDraining', () => {
    const { pool } = testPool([url('a'), url('b')]);
    void pool.drain(idOf('a'));
    void pool.drain(idOf('b'));
    // No candidate is left, yet the session keeps its backend.
    const lease = pool.acquire({ affinity: { id: idOf('a'), allowDraining: true } });
    expect(lease.backend.id).toBe(idOf('a'));
    expect(() => pool.acquire()).toThrow(NoBackendAvailableError);
  });
});

describe('explain()', () => {
  it('lists eligible and excluded backends with reasons, and the next pick', () => {
    const { pool } = testPool([url('a'), { url: url('b'), weight: 3 }, url('c'), url('d')]);
    pool.setHealthy(idOf('c'), false);
    void pool.drain(idOf('d'));
    const lease = pool.acquire();
    const e = pool.explain();
    expect(e.algorithm).toBe('round-robin');
    expect(e.panic).toBe(false);
    expect(e.eligible).toEqual([
      { id: idOf('a'), state: 'healthy', effectiveWeight: 1, inFlight: 1 },
      { id: idOf('b'), state: 'healthy', effectiveWeight: 3, inFlight: 0 },
    ]);
    expect(e.excluded).toEqual([
      { id: idOf('c'), state: 'unhealthy', why: 'failing health checks' },
      { id: idOf('d'), state: 'draining', why: 'draining: takes no new calls' },
    ]);
    expect(e.affinity).toBe('none');
    expect(e.wouldPick).toBe(idOf('b'));
    expect(e.note).toContain('round robin');
    expect(e.error).toBeUndefined();
    lease.release();
    // explain() changes nothing: the next pick is the one it named.
    expect(pool.acquire().backend.id).toBe(idOf('b'));
  });

  it('names the ejection and its end', () => {
    const { pool, clock } = testPool([url('a'), url('b'), url('c')]);
    clock.advance(100);
    pool.eject(idOf('a'), 5000, 'outlier: 5 consecutive 5xx');
    expect(pool.explain().excluded).toEqual([
      { id: idOf('a'), state: 'ejected', why: 'ejected until 5100: outlier: 5 consecutive 5xx' },
    ]);
  });

  it('says when panic applies', () => {
    const { pool } = testPool([url('a'), url('b')]);
    pool.setHealthy(idOf('a'), false);
    pool.setHealthy(idOf('b'), false);
    const e = pool.explain();
    expect(e.panic).toBe(true);
    expect(e.note).toMatch(/^PANIC/);
    expect(e.eligible.map((b) => b.id)).toEqual([idOf('a'), idOf('b')]);
  });
});

describe('weights and membership', () => {
  it('setWeight changes the weight, emits updated, and validates', () => {
    const { pool } = testPool([url('a')]);
    const updates: string[] = [];
    pool.on('updated', (e) => updates.push(`${e.backend.id}=${e.backend.weight}`));
    pool.setWeight(idOf('a'), 4);
    pool.setWeight(idOf('a'), 4);
    expect(updates).toEqual([`${idOf('a')}=4`]);
    expect(pool.get(idOf('a'))!.effectiveWeight).toBe(4);
    expect(configError(() => pool.setWeight(idOf('a'), 0)).field).toBe('weight');
  });

  it('add emits added and the backend takes calls at once', () => {
    const { pool } = testPool([url('a')]);
    const added: string[] = [];
    pool.on('added', (e) => added.push(e.backend.id));
    const view = pool.add({ url: url('b'), zone: 'z' });
    expect(view).toMatchObject({ id: idOf('b'), state: 'healthy', eligible: true, zone: 'z' });
    expect(added).toEqual([idOf('b')]);
    expect(pool.has(idOf('b'))).toBe(true);
    expect(new Set([pool.acquire().backend.id, pool.acquire().backend.id]).size).toBe(2);
  });

  it('stats() reports every backend', () => {
    const { pool, clock } = testPool([url('a'), { url: url('b'), weight: 2, priority: 1 }]);
    const lease = pool.acquire();
    clock.advance(20);
    lease.release({ ok: false });
    pool.eject(idOf('b'), 300);
    const [a, b] = pool.stats().backends;
    expect(a).toMatchObject({
      id: idOf('a'),
      url: url('a').replace(':80', ''),
      state: 'healthy',
      weight: 1,
      effectiveWeight: 1,
      inFlight: 0,
      requests: 1,
      failures: 1,
      latencyEwmaMs: 20,
      priority: 0,
      ejectedUntil: undefined,
    });
    expect(b).toMatchObject({ state: 'ejected', weight: 2, priority: 1, ejectedUntil: 320 });
  });
});

describe('close()', () => {
  it('is idempotent, emits close once, and clears every timer', async () => {
    const clock = new ManualClock();
    const pool = new BackendPool({
      backends: [url('a'), url('b')],
      clock,
      skew: { windowMs: 1000 },
    });
    pool.eject(idOf('a'), 10_000);
    const lease = pool.acquire();
    const drained = pool.drain(idOf('b'), { graceMs: 60_000 });
    expect(clock.pendingTimers()).toBeGreaterThanOrEqual(2);
    let closes = 0;
    pool.on('close', () => closes++);
    const first = pool.close();
    expect(pool.close()).toBe(first);
    await first;
    await pool.close();
    expect(closes).toBe(1);
    expect(pool.closed).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
    // a is ejected, so the lease is on b; the drain cut short by close() reports it running.
    expect(lease.backend.id).toBe(idOf('b'));
    await expect(drained).resolves.toEqual({ id: idOf('b'), completed: false, remaining: 1 });
    // A lease taken before close still releases harmlessly.
    expect(lease.release()).toBe(true);
  });

  it('with graceMs waits for calls in flight', async () => {
    const { pool, clock } = testPool([url('a')]);
    const lease = pool.acquire();
    let done = false;
    const closing = pool.close({ graceMs: 5000 }).then(() => {
      done = true;
    });
    expect(() => pool.acquire()).toThrow(PoolClosedError);
    await clock.advanceAsync(1000);
    expect(done).toBe(false);
    lease.release();
    await closing;
    expect(done).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('supports await using (Symbol.asyncDispose)', async () => {
    const clock = new ManualClock();
    {
      await using pool = new BackendPool({ backends: [url('a')], clock });
      pool.eject(idOf('a'), 1000);
      expect(clock.pendingTimers()).toBeGreaterThan(0);
    }
    expect(clock.pendingTimers()).toBe(0);
  });

  it('validates its options', () => {
    const { pool } = testPool([url('a')]);
    expect(configError(() => pool.close({ graceMs: -1 })).field).toBe('graceMs');
  });
});

describe('control characters in backend URLs', () => {
  it.each([
    ['CR/LF in the host', 'http://a.test\r\n:80'],
    ['LF in the path', 'http://a.test:80/v1\nX-Injected: 1'],
    ['a tab in the host', 'http://a.\ttest:80'],
    ['a leading LF', '\nhttp://a.test:80'],
    ['a trailing CR', 'http://a.test:80\r'],
    ['NUL', 'http://a.test:80/\u0000'],
    ['DEL', 'http://a.test:80/\u007f'],
  ])('refuses %s instead of silently rewriting the URL', async (_label, raw) => {
    const e = configError(() => testPool([raw]));
    expect(e.field).toBe('backends[0].url');
    expect(e.message).toContain('control characters');
    const { pool } = testPool([]);
    expect(() => pool.add({ url: raw })).toThrow(LoadBalancerConfigError);
    expect(pool.backends()).toHaveLength(0);
    await pool.close();
  });
});

describe('credentials in backend URLs', () => {
  it('refuses them without echoing the password into the error message', async () => {
    const { BackendPool, LoadBalancerConfigError } = await import('../../src/index.js');
    for (const url of ['http://admin:s3cret@10.0.0.9:80', 'http://admin:s3cret@[bad']) {
      let error: unknown;
      try {
        new BackendPool({ backends: [url] });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LoadBalancerConfigError);
      expect((error as Error).message).toContain('backends[0].url');
      expect((error as Error).message).not.toContain('s3cret');
      expect(String((error as LoadBalancerConfigError).value)).not.toContain('s3cret');
    }
  });
});
