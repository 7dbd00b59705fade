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
    let start = live();
    let map: Map<string, SessionRecord> | undefined = new Map();
    for (let i = 0; i < N; i++) map.set(keys[i]!, record(i));
    mapBytes.push((live() - start) / N);
    consume(map.size);
    map = undefined;

    start = live();
    let store: MemorySessionStore | undefined = new MemorySessionStore({
      maxEntries: N,
      cleanupIntervalMs: 0,
    });
    for (let i = 0; i < N; i++) store.set(keys[i]!, record(i), TTL);
    storeBytes.push((live() - start) / N);
    consume(store.size);
    store.close();
    store = undefined;
  }
  const mapPer = median(mapBytes);
  const storePer = median(storeBytes);
  const recordBytes = await measureRecords();

  // ---- lookup time over 1M live sessions, in a random order
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
  map.clear();

  // ---- maxEntries: memory flat as clients grow past the cap
  const checkpoints = [CAP, 250_000, 500_000, N];
  const capped: number[] = [];
  const unbounded: number[] = [];
  {
    const start = live();
    const s = new MemorySessionStore({ maxEntries: CAP, cleanupIntervalMs: 0 });
    let next = 0;
    for (const upTo of checkpoints) {
      for (; next < upTo; next++) s.set(keys[next]!, record(next), TTL);
      capped.push(live() - start);
    }
    consume(s.size);
    s.close();
  }
  {
    const start = live();
    const m = new Map<string, SessionRecord>();
    let next = 0;
    for (const upTo of checkpoints) {
      for (; next < upTo; next++) m.set(keys[next]!, record(next));
      unbounded.push(live() - start);
    }
    consume(m.size);
  }

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

/** Bytes of one record object, to show how much of an entry is the record itself. */
async function measureRecords(): Promise<number> {
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
