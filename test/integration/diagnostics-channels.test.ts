/**
 * The `loadwise:*` diagnostics channels, subscribed the way an APM does: by name, through
 * `node:diagnostics_channel`, with no reference to loadwise's objects.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AllAttemptsFailedError,
  BackendPool,
  type BackendPoolOptions,
  createBalancedFetch,
  LoadBalancerConfigError,
  type ObservableFetch,
  RoundRobin,
} from '../../src/index.js';
import {
  DIAGNOSTICS_CHANNELS,
  type DiagnosticsHandle,
  enableDiagnostics,
  type FetchRetryMessage,
  type PoolPickMessage,
  type PoolReleaseMessage,
  type PoolStateMessage,
} from '../../src/node/index.js';
import { ManualClock } from '../../src/testing/index.js';
import { closeAll, respond, startServer, type TestServer, unusedPort } from '../support/servers.js';

type ChannelName = (typeof DIAGNOSTICS_CHANNELS)[keyof typeof DIAGNOSTICS_CHANNELS];

const subscriptions: Array<[ChannelName, (message: unknown, name: string | symbol) => void]> = [];
const handles: DiagnosticsHandle[] = [];
const pools: BackendPool[] = [];
const servers: TestServer[] = [];

afterEach(async () => {
  for (const [name, fn] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
  for (const h of handles.splice(0)) h.close();
  vi.restoreAllMocks();
  await Promise.all(pools.splice(0).map((p) => p.close()));
  await closeAll(servers.splice(0));
});

/** Subscribes to channels by name; returns the messages received, in order, with their channel. */
function record(...names: ChannelName[]): Array<{ channel: string; message: unknown }> {
  const log: Array<{ channel: string; message: unknown }> = [];
  for (const name of names) {
    const fn = (message: unknown, channel: string | symbol): void => {
      log.push({ channel: String(channel), message });
    };
    diagnosticsChannel.subscribe(name, fn);
    subscriptions.push([name, fn]);
  }
  return log;
}

function enable(...sources: Array<BackendPool | ObservableFetch>): DiagnosticsHandle {
  const h = enableDiagnostics(...sources);
  handles.push(h);
  return h;
}

function makePool(options: BackendPoolOptions = {}): { pool: BackendPool; clock: ManualClock } {
  const clock = new ManualClock();
  const pool = new BackendPool({
    name: 'users',
    backends: ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080'],
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    skew: false,
    ...options,
  });
  pools.push(pool);
  return { pool, clock };
}

const ALL = Object.values(DIAGNOSTICS_CHANNELS);

describe('diagnostics channels without subscribers', () => {
  it('publish nothing, and the pool carries no listener at all', async () => {
    const { pool, clock } = makePool({ skew: { windowMs: 100, minRequests: 3 } });
    enable(pool);
    const publish = ALL.map((name) => vi.spyOn(diagnosticsChannel.channel(name), 'publish'));
    // Nothing at all is attached while nobody subscribes.
    expect(pool.eventNames()).toEqual([]);

    for (let i = 0; i < 6; i++) pool.acquire({ affinity: { id: '10.0.0.1:8080' } }).release();
    clock.advance(100); // skew window closes
    pool.setHealthy('10.0.0.2:8080', false);
    pool.setHealthy('10.0.0.3:8080', false); // panic
    pool.add('http://10.0.0.4:8080');
    await pool.remove('10.0.0.4:8080');
    await pool.drain('10.0.0.1:8080');
    for (const spy of publish) expect(spy).not.toHaveBeenCalled();
  });

  it('leave a balanced fetch without listeners, so it builds no event objects', () => {
    const { pool } = makePool();
    const fetch = createBalancedFetch(pool, { fetch: async () => new Response('ok') });
    enable(fetch);
    expect(fetch.events.eventNames()).toEqual([]);
    const log = record(DIAGNOSTICS_CHANNELS.retry);
    expect(fetch.events.eventNames()).toEqual(['retry']);
    for (const [name, fn] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
    expect(fetch.events.eventNames()).toEqual([]);
    expect(log).toEqual([]);
  });
});

describe('the hedge channel', () => {
  it('publishes each hedge of a balanced fetch with the fetch attached', async () => {
    const { pool, clock } = makePool();
    const fetch = createBalancedFetch(pool, {
      hedge: { afterMs: 10, maxExtraLoad: 0.5 },
      timeoutMs: false,
      deadlineMs: false,
      // The first backend answers after 50 ms, the others at once.
      fetch: (url, init) =>
        new Promise<Response>((resolve, reject) => {
          init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
          clock.setTimeout(() => resolve(new Response('ok')), url.includes('.1:') ? 50 : 0);
        }),
    });
    enable(fetch);
    const log = record(DIAGNOSTICS_CHANNELS.hedge);
    const call = fetch('/x');
    await clock.advanceAsync(10);
    await clock.advanceAsync(1);
    await (await call).text();
    expect(log).toHaveLength(1);
    const message = log[0]!.message as { fetch: unknown; slow: { id: string }; delayMs: number };
    expect(message.fetch).toBe(fetch);
    expect(message.slow.id).toBe('10.0.0.1:8080');
    expect(message.delayMs).toBe(10);
  });
});

describe('diagnostics channels with subscribers', () => {
  it('publish each pick and release, and detach again on unsubscribe', () => {
    const { pool, clock } = makePool();
    enable(pool);
    const log = record(DIAGNOSTICS_CHANNELS.pick);
    expect(pool.listenerCount('acquire')).toBe(1);
    expect(pool.listenerCount('release')).toBe(0);
    // The deprecated-but-supported Channel#subscribe attaches the release listener too.
    const releases: unknown[] = [];
    const onRelease = (m: unknown): void => {
      releases.push(m);
    };
    diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.release).subscribe(onRelease);
    expect(pool.listenerCount('release')).toBe(1);

    const lease = pool.acquire({ key: 'user-42' });
    clock.advance(12);
    lease.release({ ok: false, status: 503, failure: 'http' });

    expect(log).toHaveLength(1);
    const pick = log[0]!.message as PoolPickMessage;
    expect(log[0]!.channel).toBe('loadwise:pool:pick');
    expect(pick.pool).toBe(pool);
    expect(pick.backend.id).toBe('10.0.0.1:8080');
    expect(pick.ctx).toEqual({ key: 'user-42' });
    const release = releases[0] as PoolReleaseMessage;
    expect(release).toMatchObject({
      pool,
      latencyMs: 12,
      outcome: { ok: false, status: 503, failure: 'http' },
    });
    expect(release.backend.id).toBe('10.0.0.1:8080');

    diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.release).unsubscribe(onRelease);
    for (const [name, fn] of subscriptions.splice(0)) diagnosticsChannel.unsubscribe(name, fn);
    expect(pool.listenerCount('acquire')).toBe(0);
    expect(pool.listenerCount('release')).toBe(0);
    pool.acquire().release();
    expect(log).toHaveLength(1);
  });

  it('attach the pick listener to pools enabled after the subscription too', () => {
    const log = record(DIAGNOSTICS_CHANNELS.pick);
    const { pool } = makePool();
    enable(pool);
    pool.acquire().release();
    expect(log.map((e) => (e.message as PoolPickMessage).backend.id)).toEqual(['10.0.0.1:8080']);
  });

  it('publish state, panic, membership, drain and skew events', async () => {
    const { pool, clock } = makePool({ skew: { windowMs: 100, minRequests: 3 } });
    enable(pool);
    const log = record(
      DIAGNOSTICS_CHANNELS.state,
      DIAGNOSTICS_CHANNELS.panic,
      DIAGNOSTICS_CHANNELS.added,
      DIAGNOSTICS_CHANNELS.removed,
      DIAGNOSTICS_CHANNELS.drained,
      DIAGNOSTICS_CHANNELS.skew,
    );
    for (let i = 0; i < 6; i++) pool.acquire({ affinity: { id: '10.0.0.1:8080' } }).release();
    clock.advance(100);
    pool.setHealthy('10.0.0.2:8080', false, 'probe failed');
    pool.setHealthy('10.0.0.3:8080', false);
    pool.add('http://10.0.0.4:8080');
    await pool.remove('10.0.0.4:8080', { drain: false });
    await pool.drain('10.0.0.1:8080');

    const summary = log.map(({ channel, message }) => {
      const m = message as Record<string, unknown> & { backend?: { id: string } };
      expect(m['pool']).toBe(pool);
      return [channel.replace('loadwise:pool:', ''), m.backend?.id ?? m['active']];
    });
    expect(summary).toEqual([
      ['skew', '10.0.0.1:8080'],
      ['state', '10.0.0.2:8080'],
      ['state', '10.0.0.3:8080'],
      ['panic', true],
      // A fourth, healthy backend makes 2 of 4 healthy: no panic until it leaves again.
      ['panic', false],
      ['added', '10.0.0.4:8080'],
      ['panic', true],
      ['removed', '10.0.0.4:8080'],
      ['state', '10.0.0.1:8080'],
      ['drained', '10.0.0.1:8080'],
    ]);
    expect(log[1]!.message as PoolStateMessage).toMatchObject({
      from: 'healthy',
      to: 'unhealthy',
      reason: 'probe failed',
    });
  });

  it('publish once for a source enabled twice, until every handle is closed', () => {
    const { pool } = makePool();
    const first = enable(pool);
    const second = enable(pool, pool);
    const log = record(DIAGNOSTICS_CHANNELS.pick, DIAGNOSTICS_CHANNELS.state);
    pool.acquire().release();
    expect(log).toHaveLength(1);
    first.close();
    first.close();
    pool.setHealthy('10.0.0.1:8080', false);
    expect(log).toHaveLength(2);
    second[Symbol.dispose]();
    expect(pool.listenerCount('acquire')).toBe(0);
    expect(pool.listenerCount('state')).toBe(0);
    pool.setHealthy('10.0.0.1:8080', true);
    pool.acquire().release();
    expect(log).toHaveLength(2);
  });

  it('publish a balanced fetch over real sockets: attempts, a retry, responses', async () => {
    const failing = await startServer(respond(503, 'busy'));
    const healthy = await startServer(respond(200, 'hello'));
    servers.push(failing, healthy);
    const pool = new BackendPool({
      name: 'edge',
      backends: [failing.url, healthy.url],
      algorithm: new RoundRobin({ startIndex: 0 }),
      skew: false,
    });
    pools.push(pool);
    const fetch = createBalancedFetch(pool, { retries: 1, backoffBaseMs: 0 });
    enable(pool, fetch);
    const log = record(
      DIAGNOSTICS_CHANNELS.pick,
      DIAGNOSTICS_CHANNELS.release,
      DIAGNOSTICS_CHANNELS.attempt,
      DIAGNOSTICS_CHANNELS.response,
      DIAGNOSTICS_CHANNELS.retry,
      DIAGNOSTICS_CHANNELS.failure,
    );
    const res = await fetch('/hello');
    expect(await res.text()).toBe('hello');
    const a = pool.backends()[0]!.id;
    const b = pool.backends()[1]!.id;
    expect(
      log.map(({ channel, message }) => [channel, (message as PoolPickMessage).backend.id]),
    ).toEqual([
      ['loadwise:pool:pick', a],
      ['loadwise:fetch:attempt', a],
      ['loadwise:fetch:response', a],
      ['loadwise:pool:release', a],
      ['loadwise:fetch:retry', a],
      ['loadwise:pool:pick', b],
      ['loadwise:fetch:attempt', b],
      ['loadwise:fetch:response', b],
      ['loadwise:pool:release', b],
    ]);
    const retry = log[4]!.message as FetchRetryMessage;
    expect(retry.fetch).toBe(fetch);
    expect(retry).toMatchObject({ attempt: 1, reason: 'status 503', delayMs: 0 });
    expect(retry.request.url).toMatch(/\/hello$/);
  });

  it('publish a failed attempt without a response', async () => {
    const port = await unusedPort();
    const pool = new BackendPool({ backends: [`http://127.0.0.1:${port}`], skew: false });
    pools.push(pool);
    const fetch = createBalancedFetch(pool, { retries: 0 });
    enable(fetch);
    const log = record(DIAGNOSTICS_CHANNELS.failure);
    await expect(fetch('/')).rejects.toBeInstanceOf(AllAttemptsFailedError);
    expect(log).toHaveLength(1);
    expect(log[0]!.message).toMatchObject({ fetch, attempt: 1 });
    expect((log[0]!.message as { backend: { id: string } }).backend.id).toBe(`127.0.0.1:${port}`);
  });
});

describe('enableDiagnostics input', () => {
  it.each([
    ['nothing', () => enableDiagnostics()],
    ['a plain object', () => enableDiagnostics({} as never)],
    ['a function without events', () => enableDiagnostics((() => {}) as never)],
  ])('rejects %s', (_what, call) => {
    expect(call).toThrow(LoadBalancerConfigError);
  });
});
