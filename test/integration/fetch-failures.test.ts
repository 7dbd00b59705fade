/**
 * The balanced fetch against real HTTP servers on 127.0.0.1, with the system clock and small
 * timeouts: failover, hanging backends, POSTs, refused URLs, aborts, bodies, leaks.
 */
import { Agent, fetch as undiciFetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { LeastConnections } from '../../src/algorithms/least-connections.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { AllAttemptsFailedError } from '../../src/errors/all-attempts-failed-error.js';
import { RequestRefusedError } from '../../src/errors/request-refused-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock } from '../../src/testing/index.js';
import { hang, inFlightEverywhere, useFetchBackends } from '../support/fetch-backends.js';
import { respond, unusedPort } from '../support/servers.js';

const { servers, serve, setup, later, trackPool, trackAgent } = useFetchBackends();

describe('failures', () => {
  it('fails over when a backend stops mid-run', async () => {
    const { pool, fetch } = await setup(3, new RoundRobin());
    let stoppedAt = -1;
    const bodies: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (next < 150) {
          const i = next++;
          if (i === 50) {
            stoppedAt = bodies.length;
            await servers[1]!.close();
          }
          bodies.push(await (await fetch('/work')).text());
        }
      }),
    );
    expect(bodies.length).toBe(150);
    expect(stoppedAt).toBeGreaterThan(0);
    // A few answers from server 1 may have been on their way when it stopped; none later.
    expect(bodies.slice(stoppedAt + 6).filter((b) => b === '1')).toEqual([]);
    expect(pool.stats().backends[1]!.failures).toBeGreaterThan(0);
    expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
  });

  it('a hanging backend hits the timeout and the retry goes elsewhere', async () => {
    const { pool, fetch } = await setup(3, new RoundRobin({ startIndex: 0 }), {
      timeoutMs: 300,
      // Spare retries, so a live backend that is slow on a loaded machine cannot fail the call.
      retries: 4,
    });
    servers[0]!.setHandler(hang);
    const started = performance.now();
    const bodies = await Promise.all(
      Array.from({ length: 6 }, async () => (await fetch('/work')).text()),
    );
    const elapsed = performance.now() - started;
    expect(bodies.every((b) => b === '1' || b === '2')).toBe(true);
    expect(servers[0]!.hits).toBeGreaterThan(0);
    expect(pool.stats().backends[0]!.failures).toBe(servers[0]!.hits);
    expect(elapsed).toBeLessThan(5000);
    expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
  });

  it('a POST is not retried once it may have reached a server', async () => {
    const { pool, fetch } = await setup(3, new RoundRobin({ startIndex: 0 }));
    servers[0]!.setHandler(respond(503, 'busy'));
    const res = await fetch('/orders', { method: 'POST', body: '{"item":1}' });
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('busy');
    servers[1]!.setHandler((req) => {
      req.socket.destroy();
    });
    const error = await fetch('/orders', { method: 'POST', body: '{"item":2}' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AllAttemptsFailedError);
    expect((error as AllAttemptsFailedError).attempts.length).toBe(1);
    expect(servers.map((s) => s.hits)).toEqual([1, 1, 0]);
    expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
  });

  it('a POST whose connection was refused goes to another backend', async () => {
    await serve(1);
    const dead = await unusedPort();
    const pool = new BackendPool({
      backends: [`http://127.0.0.1:${dead}`, servers[0]!.url],
      algorithm: new RoundRobin({ startIndex: 0 }),
      skew: false,
    });
    trackPool(pool);
    const fetch = createBalancedFetch(pool, { backoffBaseMs: 2 });
    const res = await fetch('/orders', { method: 'POST', body: 'x' });
    expect(await res.text()).toBe('0');
    expect(servers[0]!.hits).toBe(1);
    expect(pool.stats().backends[0]!.failures).toBe(1);
  });

  it.each([
    ['//evil.example/x'],
    ['http://evil.example/x'],
    ['javascript:alert(1)'],
    ['file:///etc/passwd'],
  ])('refuses %j before sending anything', async (raw) => {
    const { pool, fetch } = await setup(2, new RoundRobin());
    await expect(fetch(raw)).rejects.toBeInstanceOf(RequestRefusedError);
    const other = await unusedPort();
    await expect(fetch(`http://127.0.0.1:${other}/x`)).rejects.toBeInstanceOf(RequestRefusedError);
    await expect(fetch(`https://127.0.0.1:${servers[0]!.port}/x`)).rejects.toMatchObject({
      reason: 'scheme-change',
    });
    expect(servers.map((s) => s.hits)).toEqual([0, 0]);
    expect(pool.stats().backends.map((b) => b.requests)).toEqual([0, 0]);
  });
});

describe('aborts and bodies', () => {
  it('an aborted call rejects at once and is not retried', async () => {
    const { pool, fetch } = await setup(2, new RoundRobin({ startIndex: 0 }));
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    // The server never answers: only the abort can end the call, once the request has arrived.
    servers[0]!.setHandler(() => controller.abort(reason));
    await expect(fetch('/work', { signal: controller.signal })).rejects.toBe(reason);
    expect(servers.map((s) => s.hits)).toEqual([1, 0]);
    expect(inFlightEverywhere(pool)).toEqual([0, 0]);
    expect(pool.stats().backends[0]!.failures).toBe(0);
  });

  it('aborting while the body streams errors the body and releases the lease', async () => {
    const { pool, fetch } = await setup(1, new RoundRobin());
    servers[0]!.setHandler((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part;');
    });
    const controller = new AbortController();
    const res = await fetch('/stream', { signal: controller.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('first part;');
    expect(pool.stats().inFlight).toBe(1);
    controller.abort();
    await expect(reader.read()).rejects.toMatchObject({ name: 'AbortError' });
    expect(pool.stats().inFlight).toBe(0);
    expect(pool.stats().backends[0]!.failures).toBe(0);
  });

  it('bodies never read, cancelled, or cut by the server leave in-flight at 0', async () => {
    // Real sockets; the unread-body timer runs on a manual clock so the test does not race it.
    const clock = new ManualClock();
    const { pool, fetch } = await setup(2, new RoundRobin(), { unreadBodyTimeoutMs: 50, clock });
    const unread = await Promise.all(Array.from({ length: 40 }, () => fetch('/work')));
    expect(pool.stats().inFlight).toBe(40);
    await clock.advanceAsync(49);
    expect(pool.stats().inFlight).toBe(40);
    await clock.advanceAsync(1);
    expect(pool.stats().inFlight).toBe(0);
    expect(unread.every((r) => r.status === 200)).toBe(true);

    const cancelled = await fetch('/work');
    await cancelled.body!.cancel();
    expect(pool.stats().inFlight).toBe(0);

    for (const s of servers) {
      s.setHandler((req, res) => {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        later(() => req.socket.destroy(), 10);
      });
    }
    const cut = await fetch('/work');
    await expect(cut.text()).rejects.toThrow();
    expect(pool.stats().inFlight).toBe(0);
    expect(pool.stats().backends.reduce((sum, b) => sum + b.failures, 0)).toBe(1);
  });

  it('1000 concurrent calls leave every in-flight count at 0', async () => {
    // All 1000 calls hold leases at once; undici queues them on 64 sockets per backend.
    const agent = new Agent({ connections: 64 });
    trackAgent(agent);
    const { pool, fetch } = await setup(3, new LeastConnections(), {
      fetch: (url, init) =>
        undiciFetch(url, {
          ...(init as object),
          dispatcher: agent,
        }) as unknown as Promise<Response>,
      // Calls wait in the agent's queue; this test counts leases, it does not time attempts.
      timeoutMs: false,
      deadlineMs: 60_000,
    });
    let peak = 0;
    pool.on('acquire', () => {
      peak = Math.max(peak, pool.stats().inFlight);
    });
    const results = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const res = await fetch(`/work?i=${i}`);
        if (i % 10 === 0) {
          await res.body?.cancel();
          return res.status;
        }
        await res.text();
        return res.status;
      }),
    );
    expect(results.every((s) => s === 200)).toBe(true);
    expect(peak).toBe(1000);
    expect(inFlightEverywhere(pool)).toEqual([0, 0, 0]);
    expect(pool.stats().backends.reduce((sum, b) => sum + b.requests, 0)).toBeGreaterThanOrEqual(
      1000,
    );
  });
});
