/**
 * Unit-testing your own code with `ManualClock` and `seededRandom`: the retry backoff, an
 * outlier ejection and a connection drain are driven through their whole schedules (30 s, 60 s
 * ejections included) without waiting in real time and without a socket. The same checks work
 * in vitest, node:test or jest; here they run as a plain script with node:assert.
 *
 * Run: npx tsx examples/manual-clock-testing.ts
 */
import assert from 'node:assert/strict';
import {
  BackendPool,
  type Clock,
  createBalancedFetch,
  type FetchFunction,
  OutlierDetector,
  type Random,
  RoundRobin,
} from '../src/index.js';
import { ManualClock, seededRandom } from '../src/testing/index.js';

// ---------------------------------------------------------------- the code under test

/**
 * Your module: a client of an inventory service. It takes `clock`, `random` and `fetch` so a
 * test can inject them; production code leaves them out.
 */
class InventoryClient {
  readonly pool: BackendPool;
  readonly #fetch: ReturnType<typeof createBalancedFetch>;

  constructor(options: { clock?: Clock; random?: Random; fetch?: FetchFunction } = {}) {
    this.pool = new BackendPool({
      backends: ['a', 'b', 'c'].map((id) => ({ url: `http://${id}.inventory.test:8080`, id })),
      algorithm: new RoundRobin({ startIndex: 0 }),
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.random ? { random: options.random } : {}),
    });
    // Eject a backend after 3 failures in a row: 30 s the first time, 60 s the second...
    new OutlierDetector(this.pool, { consecutiveFailures: 3, maxEjectionPercent: 50 });
    this.#fetch = createBalancedFetch(this.pool, {
      retries: 2,
      timeoutMs: 1000,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async stock(sku: string): Promise<number | undefined> {
    const res = await this.#fetch(`/stock/${sku}`);
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return ((await res.json()) as { stock: number }).stock;
  }

  close(): Promise<void> {
    return this.pool.close(); // the outlier detector stops with the pool
  }
}

// ---------------------------------------------------------------- test helpers

/** A fetch double: each backend answers with `answer(backendId)`; every attempt is logged. */
function fakeFetch(clock: ManualClock, answer: (id: string) => Response | Error) {
  const attempts: { at: number; backend: string }[] = [];
  const fetch: FetchFunction = async (url) => {
    const backend = new URL(url).hostname.split('.')[0]!;
    attempts.push({ at: clock.now(), backend });
    const result = answer(backend);
    if (result instanceof Error) throw result;
    return result;
  };
  return { fetch, attempts };
}

/** What undici throws when nothing listens: a TypeError whose cause has `code: ECONNREFUSED`. */
function connectionRefused(): Error {
  return new TypeError('fetch failed', {
    cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
  });
}

/** Moves the clock 1 ms at a time until `promise` settles (bounded), then returns it. */
async function drive<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; !settled && i < 10_000; i++) await clock.advanceAsync(1);
  return promise;
}

async function test(name: string, body: () => Promise<void>): Promise<void> {
  await body();
  console.log(`ok - ${name}`);
}

// ---------------------------------------------------------------- the tests

await test('a 503 is retried on another backend after a jittered backoff', async () => {
  const clock = new ManualClock();
  const { fetch, attempts } = fakeFetch(clock, (id) =>
    id === 'a' ? new Response('busy', { status: 503 }) : Response.json({ stock: 7 }),
  );
  const client = new InventoryClient({ clock, random: seededRandom(42), fetch });

  assert.equal(await drive(clock, client.stock('sku-1')), 7);
  const [first, retry] = attempts as [(typeof attempts)[0], (typeof attempts)[0]];
  assert.equal(attempts.length, 2);
  assert.deepEqual(first, { at: 0, backend: 'a' });
  assert.notEqual(retry.backend, 'a', 'a retry prefers a backend not tried yet');
  // Retry n waits a random time in [0, (2^n - 1) × 25 ms): the first retry, under 25 ms.
  assert.ok(retry.at >= 0 && retry.at < 25);
  console.log(`     attempts: a at 0 ms (503), ${retry.backend} at ${retry.at} ms (200)`);
  await client.close();
  assert.equal(clock.pendingTimers(), 0, 'close() clears every timer');
});

await test('every backend answers 503: three attempts, then the last 503 is returned', async () => {
  const clock = new ManualClock();
  const { fetch, attempts } = fakeFetch(clock, () => new Response('busy', { status: 503 }));
  const client = new InventoryClient({ clock, random: seededRandom(42), fetch });

  assert.equal(await drive(clock, client.stock('sku-1')), undefined);
  assert.deepEqual(attempts.map((a) => a.backend).sort(), ['a', 'b', 'c'], 'three backends');
  const [first, second, third] = attempts.map((a) => a.at) as [number, number, number];
  assert.ok(second - first < 25 && third - second < 75);
  console.log(`     attempts at ${first}, ${second} and ${third} ms`);
  await client.close();
});

await test('a refusing backend is ejected for 30 s, then for 60 s when it fails again', async () => {
  const clock = new ManualClock();
  let bUp = false;
  const { fetch } = fakeFetch(clock, (id) =>
    id === 'b' && !bUp ? connectionRefused() : Response.json({ stock: 7 }),
  );
  const client = new InventoryClient({ clock, random: seededRandom(1), fetch });
  const ejectedAt: number[] = [];
  client.pool.on('state', (e) => {
    if (e.to === 'ejected') ejectedAt.push(clock.now());
  });
  const stateOfB = () => client.pool.get('b')?.state;

  await clock.advanceAsync(5000); // some quiet time first
  // Every call still succeeds (refused connections are retried elsewhere) until b is ejected.
  while (stateOfB() !== 'ejected') assert.equal(await drive(clock, client.stock('sku')), 7);
  const first = ejectedAt[0]!;
  await clock.advanceAsync(first + 30_000 - 1 - clock.now());
  assert.equal(stateOfB(), 'ejected');
  await clock.advanceAsync(1);
  assert.equal(stateOfB(), 'healthy');
  console.log(`     ejected at ${first} ms, back at ${clock.now()} ms`);

  // Still refusing: ejected again, now for 2 × 30 s (Envoy's base_ejection_time × n).
  while (stateOfB() !== 'ejected') await drive(clock, client.stock('sku'));
  const second = ejectedAt[1]!;
  bUp = true;
  await clock.advanceAsync(second + 60_000 - 1 - clock.now());
  assert.equal(stateOfB(), 'ejected');
  await clock.advanceAsync(1);
  assert.equal(stateOfB(), 'healthy');
  console.log(`     ejected again at ${second} ms, back at ${clock.now()} ms`);
  await client.close();
});

await test('a drain stops new calls at once and gives up after its grace period', async () => {
  const clock = new ManualClock();
  const client = new InventoryClient({ clock, random: seededRandom(1) });
  const pool = client.pool;

  const slowCall = pool.acquire({ affinity: { id: 'a' } }); // a call that will outlast the drain
  let result: { completed: boolean; remaining: number } | undefined;
  void pool.drain('a', { graceMs: 10_000 }).then((r) => {
    result = r;
  });
  assert.equal(pool.get('a')?.state, 'draining');
  for (let i = 0; i < 10; i++) {
    const lease = pool.acquire();
    assert.notEqual(lease.backend.id, 'a');
    lease.release({ ok: true });
  }
  await clock.advanceAsync(9_999);
  assert.equal(result, undefined);
  await clock.advanceAsync(1);
  assert.deepEqual(result, { id: 'a', completed: false, remaining: 1 });
  assert.equal(slowCall.release({ ok: true }), true); // a late release is still counted once

  // A drain whose calls finish in time resolves as soon as the last one is released.
  const quickCall = pool.acquire({ affinity: { id: 'b' } });
  const drained = pool.drain('b', { graceMs: 10_000 });
  await clock.advanceAsync(2_000);
  quickCall.release({ ok: true });
  assert.deepEqual(await drained, { id: 'b', completed: true, remaining: 0 });
  console.log(`     a gave up at 10000 ms with 1 call left; b drained at ${clock.now()} ms`);
  await client.close();
});

console.log('all tests passed, in no real time at all');
