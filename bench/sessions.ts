/**
 * Sticky-session memory and lookup cost: 1,000,000 distinct sessions in MemorySessionStore
 * against a plain Map of the same keys and records (the baseline, measured in the same run),
 * `maxEntries` holding memory flat as clients grow past it, and the cost of a sticky acquire
 * against a plain pool acquire.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { RoundRobin } from '../src/algorithms/round-robin.js';
import { BackendPool } from '../src/pool/backend-pool.js';
import { MemorySessionStore } from '../src/session/memory-store.js';
import { SessionPersistenceManager } from '../src/session/session-persistence-manager.js';
import type { SessionRecord } from '../src/session/store.js';
import { seededRandom } from '../src/testing/seeded-random.js';
import { consume, fmt, median, msPerRun, nsPerOp, type Section, table } from './harness.js';

const N = 1_000_000;
const CAP = 100_000;
const RUNS = 3;
const TTL = 3_600_000;
const BACKENDS = Array.from({ length: 8 }, (_, i) => `10.0.0.${i + 1}:8080`);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Live bytes after a full collection: the JS heap plus array buffers (lru-cache's links). */
function live(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const record = (i: number): SessionRecord => ({
  backend: BACKENDS[i & 7]!,
  createdAt: 1_700_000_000_000 + i,
});

export default async function run(): Promise<Section[]> {
  const before = live();
  const keys = Array.from(
    { length: N },
    (_, i) => `session-${i.toString(36)}-${(i * 2654435761) >>> 0}`,
  );
  // Hash (and so flatten) every key once, so that neither measured structure pays for it.
  let warm: Map<string, number> | undefined = new Map();
  for (const k of keys) warm.set(k, 0);
  warm = undefined;
  const keyBytes = (live() - before) / N;

  // ---- memory per entry, 1M entries
  const mapBytes: number[] = [];
  const storeBytes: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    mapBytes.push(perEntry(keys, false));
    storeBytes.push(perEntry(keys, true));
  }
  const mapPer = median(mapBytes);
  const storePer = median(storeBytes);
  const recordBytes = measureRecords();

  // ---- lookup time over 1M live sessions, in a random order
  const { mapGet, storeGet, mapSet, storeSet } = lookups(keys);

  // ---- maxEntries: memory flat as clients grow past the cap
  const checkpoints = [CAP, 250_000, 500_000, N];
  const capped = growth(keys, checkpoints, true);
  const unbounded = growth(keys, checkpoints, false);

  // ---- a sticky acquire against a plain acquire
  const acquire = await measureAcquire(keys);

  const mb = (b: number) => `${fmt(b / 1e6)} MB`;
  const memoryBody = [
    `${N.toLocaleString('en-US')} distinct sessions (record: backend id + creation time; keys built beforehand, ${fmt(keyBytes)} B each, not counted below). Live heap + array buffers after a full GC, median of ${RUNS} runs.`,
    '',
    table(
      ['structure', 'bytes per session', 'vs Map'],
      [
        ['Map<string, record> (baseline)', fmt(mapPer), '1.00x'],
        [
          'MemorySessionStore (lru-cache, LRU + TTL)',
          fmt(storePer),
          `${fmt(storePer / mapPer, 2)}x`,
        ],
        ['of which the record object', fmt(recordBytes), ''],
      ],
    ),
    '',
    `Lookups of random keys among the ${N.toLocaleString('en-US')} live sessions (median of 5 runs of 200,000):`,
    '',
    table(
      ['operation', 'ns/op', 'vs Map'],
      [
        ['Map.get (baseline)', fmt(mapGet), '1.00x'],
        [
          'MemorySessionStore.get (TTL check + LRU bump)',
          fmt(storeGet),
          `${fmt(storeGet / mapGet, 2)}x`,
        ],
        ['Map.set (baseline)', fmt(mapSet), '1.00x'],
        [
          'MemorySessionStore.set (sliding refresh)',
          fmt(storeSet),
          `${fmt(storeSet / mapSet, 2)}x`,
        ],
      ],
    ),
  ].join('\n');

  const flatBody = [
    `\`maxEntries: ${CAP.toLocaleString('en-US')}\` while ${N.toLocaleString('en-US')} distinct clients arrive, against an unbounded Map of the same sessions (live bytes after a full GC).`,
    '',
    table(
      ['clients so far', 'MemorySessionStore (cap 100k)', 'unbounded Map', 'store / Map'],
      checkpoints.map((c, i) => [
        c.toLocaleString('en-US'),
        mb(capped[i]!),
        mb(unbounded[i]!),
        `${fmt(capped[i]! / unbounded[i]!, 2)}x`,
      ]),
    ),
    '',
    `The capped store grows by ${fmt(((capped.at(-1)! - capped[0]!) / capped[0]!) * 100)}% from ${CAP.toLocaleString('en-US')} to ${N.toLocaleString('en-US')} clients; the Map by ${fmt(((unbounded.at(-1)! - unbounded[0]!) / unbounded[0]!) * 100)}%.`,
  ].join('\n');

  const acquireBody = [
    `Acquire + release, ${acquire.calls.toLocaleString('en-US')} calls in sequence over ${acquire.keys.toLocaleString('en-US')} warm sessions, 8 backends, round robin; median of 5 runs.`,
    '',
    table(
      ['call', 'ns per call', 'vs pool.acquire'],
      [
        ['pool.acquire() (baseline)', fmt(acquire.plain), '1.00x'],
        [
          'await sessions.acquire(key), session kept',
          fmt(acquire.sticky),
          `${fmt(acquire.sticky / acquire.plain, 1)}x`,
        ],
      ],
    ),
    '',
    'The sticky call is async (it may wait for a shared store), so part of its cost is the promise round trip.',
  ].join('\n');

  return [
    { title: 'Sessions: memory and lookups at 1M sessions', body: memoryBody },
    { title: 'Sessions: maxEntries keeps memory flat', body: flatBody },
    { title: 'Sessions: sticky acquire overhead', body: acquireBody },
  ];
}

/** ns per get and set over N live sessions, random keys, against a Map. */
function lookups(keys: readonly string[]) {
  const random = seededRandom(42);
  const order = new Uint32Array(N);
  for (let i = 0; i < N; i++) order[i] = Math.floor(random() * N);
  const map = new Map<string, SessionRecord>();
  const store = new MemorySessionStore({ maxEntries: N, cleanupIntervalMs: 0 });
  for (let i = 0; i < N; i++) {
    const rec = record(i);
    map.set(keys[i]!, rec);
    store.set(keys[i]!, rec, TTL);
  }
  // 200k random lookups a run: enough to miss the CPU caches as real traffic would.
  const opts = { iterations: 200_000, runs: 5, warmup: 50_000 };
  const mapGet = nsPerOp((i) => map.get(keys[order[i % N]!]!), opts);
  const storeGet = nsPerOp((i) => store.get(keys[order[i % N]!]!), opts);
  const storeSet = nsPerOp((i) => store.set(keys[order[i % N]!]!, record(i), TTL), opts);
  const mapSet = nsPerOp((i) => map.set(keys[order[i % N]!]!, record(i)), opts);
  store.close();
  return { mapGet, storeGet, mapSet, storeSet };
}

/** Live bytes per session of N sessions in a MemorySessionStore or a Map. */
function perEntry(keys: readonly string[], inStore: boolean): number {
  const start = live();
  if (inStore) {
    const store = new MemorySessionStore({ maxEntries: N, cleanupIntervalMs: 0 });
    for (let i = 0; i < N; i++) store.set(keys[i]!, record(i), TTL);
    const bytes = (live() - start) / N;
    consume(store.size);
    store.close();
    return bytes;
  }
  const map = new Map<string, SessionRecord>();
  for (let i = 0; i < N; i++) map.set(keys[i]!, record(i));
  const bytes = (live() - start) / N;
  consume(map.size);
  return bytes;
}

/**
 * Live bytes of a capped store or an unbounded Map at each checkpoint of distinct clients. A
 * plain function, so that its structure is garbage once it returns (locals of an async function
 * can outlive their block and spoil the next measurement).
 */
function growth(keys: readonly string[], checkpoints: readonly number[], cap: boolean): number[] {
  const out: number[] = [];
  const start = live();
  const store = cap ? new MemorySessionStore({ maxEntries: CAP, cleanupIntervalMs: 0 }) : undefined;
  const map = cap ? undefined : new Map<string, SessionRecord>();
  let next = 0;
  for (const upTo of checkpoints) {
    for (; next < upTo; next++) {
      if (store !== undefined) store.set(keys[next]!, record(next), TTL);
      else map!.set(keys[next]!, record(next));
    }
    out.push(live() - start);
  }
  consume(store?.size ?? map?.size);
  store?.close();
  return out;
}

/** Bytes of one record object, to show how much of an entry is the record itself. */
function measureRecords(): number {
  const start = live();
  const records = Array.from({ length: N }, (_, i) => record(i));
  const total = live() - start;
  consume(records.length);
  // Minus the array holding them (8 bytes a slot).
  return total / N - 8;
}

async function measureAcquire(keys: readonly string[]) {
  const KEYS = 100_000;
  const CALLS = 50_000;
  const pool = new BackendPool({
    backends: BACKENDS.map((id) => `http://${id}`),
    algorithm: new RoundRobin(),
    skew: false,
  });
  const sessions = new SessionPersistenceManager(pool, { maxEntries: KEYS, cleanupIntervalMs: 0 });
  for (let i = 0; i < KEYS; i++) (await sessions.acquire(keys[i]!)).lease.release();
  const plainMs = await msPerRun(
    async () => {
      for (let i = 0; i < CALLS; i++) pool.acquire().release();
    },
    5,
    1,
  );
  const stickyMs = await msPerRun(
    async () => {
      for (let i = 0; i < CALLS; i++) (await sessions.acquire(keys[i % KEYS]!)).lease.release();
    },
    5,
    1,
  );
  await sessions.close();
  await pool.close();
  return {
    keys: KEYS,
    calls: CALLS,
    plain: (plainMs * 1e6) / CALLS,
    sticky: (stickyMs * 1e6) / CALLS,
  };
}
