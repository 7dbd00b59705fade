import { describe, expect, it } from 'vitest';
import {
  type BackendPoolOptions,
  type BackendSpec,
  LoadBalancerConfigError,
} from '../../src/index.js';
import { idOf, testPool, url } from '../support/pools.js';

/** A {@link testPool} that records its state, drained and removed events. */
function makePool(backends: readonly BackendSpec[], options: BackendPoolOptions = {}) {
  const { pool, clock } = testPool(backends, options);
  const events: string[] = [];
  pool.on('state', (e) => events.push(`${e.backend.id}:${e.from}->${e.to}`));
  pool.on('drained', (e) =>
    events.push(`drained ${e.backend.id} completed=${e.completed} remaining=${e.remaining}`),
  );
  pool.on('removed', (e) => events.push(`removed ${e.backend.id}`));
  return { pool, clock, events };
}

/** Whether the promise has settled, after letting callbacks run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('drain()', () => {
  it('stops new calls at once and resolves when calls in flight reach 0', async () => {
    const { pool, events } = makePool([url('a'), url('b')]);
    const l1 = pool.acquire({ affinity: { id: idOf('a') } });
    const l2 = pool.acquire({ affinity: { id: idOf('a') } });
    const drained = pool.drain(idOf('a'), { graceMs: 10_000 });
    expect(pool.get(idOf('a'))!.state).toBe('draining');
    for (let i = 0; i < 4; i++) expect(pool.acquire().backend.id).toBe(idOf('b'));
    l1.release();
    expect(await settled(drained)).toBe(false);
    l2.release();
    await expect(drained).resolves.toEqual({ id: idOf('a'), completed: true, remaining: 0 });
    expect(events).toEqual([
      `${idOf('a')}:healthy->draining`,
      `drained ${idOf('a')} completed=true remaining=0`,
    ]);
    // It stays in the pool, draining, until undrain() or remove().
    expect(pool.get(idOf('a'))!.state).toBe('draining');
  });

  it('reports the calls still running when the grace period ends', async () => {
    const { pool, clock, events } = makePool([url('a'), url('b')]);
    const leases = [1, 2, 3].map(() => pool.acquire({ affinity: { id: idOf('a') } }));
    const drained = pool.drain(idOf('a'), { graceMs: 5000 });
    leases[0]!.release();
    clock.advance(4999);
    expect(await settled(drained)).toBe(false);
    clock.advance(1);
    await expect(drained).resolves.toEqual({ id: idOf('a'), completed: false, remaining: 2 });
    expect(events.at(-1)).toBe(`drained ${idOf('a')} completed=false remaining=2`);
    expect(clock.pendingTimers()).toBe(0);
    // Late releases are still counted.
    for (const l of leases) l.release();
    expect(pool.get(idOf('a'))!.inFlight).toBe(0);
  });

  it('uses the pool drainGraceMs when the call gives none', async () => {
    const { pool, clock } = makePool([url('a')], { drainGraceMs: 300 });
    pool.acquire();
    const drained = pool.drain(idOf('a'));
    clock.advance(300);
    await expect(drained).resolves.toMatchObject({ completed: false, remaining: 1 });
  });

  it('resolves at once for an idle backend, and emits one state event for repeated drains', async () => {
    const { pool, events } = makePool([url('a'), url('b')]);
    await expect(pool.drain(idOf('a'))).resolves.toEqual({
      id: idOf('a'),
      completed: true,
      remaining: 0,
    });
    await pool.drain(idOf('a'));
    expect(events.filter((e) => e.includes('->'))).toEqual([`${idOf('a')}:healthy->draining`]);
  });

  it('undrain() puts the backend back into rotation', async () => {
    const { pool, events } = makePool([url('a'), url('b')]);
    await pool.drain(idOf('a'));
    pool.undrain(idOf('a'));
    pool.undrain(idOf('a'));
    expect(pool.get(idOf('a'))!.state).toBe('healthy');
    const seen = new Set([1, 2, 3, 4].map(() => pool.acquire().backend.id));
    expect(seen).toEqual(new Set([idOf('a'), idOf('b')]));
    expect(events.filter((e) => e.includes('->'))).toEqual([
      `${idOf('a')}:healthy->draining`,
      `${idOf('a')}:draining->healthy`,
    ]);
  });

  it('a draining backend that is also unhealthy comes back unhealthy', async () => {
    const { pool } = makePool([url('a'), url('b'), url('c')]);
    pool.setHealthy(idOf('a'), false);
    await pool.drain(idOf('a'));
    pool.undrain(idOf('a'));
    expect(pool.get(idOf('a'))!.state).toBe('unhealthy');
  });

  it.each([
    { options: { graceMs: -1 }, field: 'graceMs' },
    { options: { graceMs: 'soon' }, field: 'graceMs' },
    { options: { grace: 5 }, field: 'drain options.grace' },
  ])('rejects $options', ({ options, field }) => {
    const { pool } = makePool([url('a')]);
    let error: unknown;
    try {
      void pool.drain(idOf('a'), options as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as LoadBalancerConfigError).field).toBe(field);
    expect(pool.get(idOf('a'))!.state).toBe('healthy');
  });
});

describe('remove()', () => {
  it('drains by default: no new calls at once, removed when calls finish', async () => {
    const { pool, events } = makePool([url('a'), url('b')]);
    const lease = pool.acquire({ affinity: { id: idOf('a') } });
    const removed = pool.remove(idOf('a'));
    expect(pool.acquire().backend.id).toBe(idOf('b'));
    expect(pool.has(idOf('a'))).toBe(true);
    expect(await settled(removed)).toBe(false);
    lease.release();
    await expect(removed).resolves.toEqual({ id: idOf('a'), completed: true, remaining: 0 });
    expect(pool.has(idOf('a'))).toBe(false);
    expect(pool.backends().map((b) => b.id)).toEqual([idOf('b')]);
    expect(events).toEqual([
      `${idOf('a')}:healthy->draining`,
      `drained ${idOf('a')} completed=true remaining=0`,
      `removed ${idOf('a')}`,
    ]);
  });

  it('removes after the grace period even with calls running', async () => {
    const { pool, clock } = makePool([url('a'), url('b')]);
    const lease = pool.acquire({ affinity: { id: idOf('a') } });
    const removed = pool.remove(idOf('a'), { graceMs: 1000 });
    clock.advance(1000);
    await expect(removed).resolves.toEqual({ id: idOf('a'), completed: false, remaining: 1 });
    expect(pool.has(idOf('a'))).toBe(false);
    // The late release is harmless.
    expect(lease.release()).toBe(true);
    expect(lease.backend.inFlight).toBe(0);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('with drain: false removes at once', async () => {
    const { pool, events } = makePool([url('a'), url('b')]);
    const lease = pool.acquire({ affinity: { id: idOf('a') } });
    await expect(pool.remove(idOf('a'), { drain: false })).resolves.toEqual({
      id: idOf('a'),
      completed: false,
      remaining: 1,
    });
    expect(events).toEqual([`removed ${idOf('a')}`]);
    lease.release();
    expect(pool.eligible().map((b) => b.id)).toEqual([idOf('b')]);
  });

  it('clears an ejection timer of the removed backend', async () => {
    const { pool, clock } = makePool([url('a'), url('b'), url('c')]);
    pool.eject(idOf('a'), 60_000);
    expect(clock.pendingTimers()).toBe(1);
    await pool.remove(idOf('a'));
    expect(clock.pendingTimers()).toBe(0);
  });

  it('validates its options', async () => {
    const { pool } = makePool([url('a')]);
    await expect(pool.remove(idOf('a'), { drain: 'yes' } as never)).rejects.toBeInstanceOf(
      LoadBalancerConfigError,
    );
    await expect(pool.remove(idOf('a'), { now: true } as never)).rejects.toMatchObject({
      field: 'remove options.now',
    });
    expect(pool.has(idOf('a'))).toBe(true);
  });
});
