/**
 * The cost behind the hash-table size limits (2^22 ketama ring points in all, Maglev tables of at
 * most 5,000,011 slots): build time and memory kept, at sizes up to the limits.
 *
 * Run on its own, with the garbage collector exposed (it builds the largest tables allowed, so it
 * is not part of `npm run bench`):
 *
 *     node --expose-gc --import tsx bench/hash-limits.ts
 *
 * - Ring: the first build of a ring (MD5 of every point, then a sort), a rebuild after one
 *   backend leaves (the digests are cached, so this is mostly the sort), and the bytes kept per
 *   point. Baseline: sorting a `Float64Array` of the same length in the same process, which is
 *   the core of every rebuild.
 * - Maglev: the build of one table over equal backends, and the bytes kept.
 * Times are process CPU time (user + system) of one build each, so time spent waiting for a
 * core on a shared machine is left out; compare rows with the baseline of the same run.
 */
import { ConsistentHashRing, MaglevTable } from '../src/index.js';
import { consume, fmt, type Section, table } from './harness.js';

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('run with node --expose-gc --import tsx');
  collect();
  collect();
}

/** Bytes held now, on the heap and in array buffers (typed arrays live outside the heap). */
function held(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** CPU time (user + system) since `start`, in ms: a shared machine's waits are left out. */
function ms(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

const ids = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`);

function sortBaseline(n: number): number {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 ** 53;
  const start = process.cpuUsage();
  a.sort();
  const t = ms(start);
  consume(a);
  return t;
}

function ring(virtualNodes: number, backends: number): (string | number)[] {
  gc();
  const before = held();
  let start = process.cpuUsage();
  const r = new ConsistentHashRing(ids(backends), { virtualNodes });
  const points = r.pointCount;
  const first = ms(start);
  r.remove(ids(backends)[backends - 1]!);
  start = process.cpuUsage();
  consume(r.pointCount);
  const rebuild = ms(start);
  gc();
  const kept = held() - before;
  consume(r);
  const baseline = sortBaseline(points);
  return [
    `${virtualNodes} × ${backends}`,
    points,
    fmt(first, 0),
    fmt(rebuild, 0),
    fmt(baseline, 0),
    fmt(rebuild / baseline, 2),
    fmt(kept / 2 ** 20, 1),
    fmt(kept / points, 1),
  ];
}

function maglev(tableSize: number, backends: number): (string | number)[] {
  gc();
  const before = held();
  const start = process.cpuUsage();
  const t = new MaglevTable(
    ids(backends).map((id) => ({ id })),
    { tableSize },
  );
  const build = ms(start);
  gc();
  const kept = held() - before;
  consume(t);
  return [tableSize, backends, fmt(build, 0), fmt(kept / 2 ** 20, 1)];
}

export default function run(): Section[] {
  const rings = [
    ring(160, 6_554), // about 2^20 points at libketama's 160 per backend
    ring(1_024, 1_024), // 2^20
    ring(4_096, 512), // 2^21
    ring(4_096, 1_024), // 2^22, the limit
  ];
  const tables = [maglev(65_537, 1_000), maglev(5_000_011, 2), maglev(5_000_011, 1_000)];
  return [
    {
      title: 'Ketama ring size (limit: 2^22 points in all)',
      body: table(
        [
          'virtualNodes × backends',
          'points',
          'first build ms',
          'rebuild ms',
          'sort baseline ms',
          'rebuild / baseline',
          'kept MB',
          'bytes / point',
        ],
        rings,
      ),
    },
    {
      title: 'Maglev table size (limit: 5,000,011 slots)',
      body: table(['slots', 'backends', 'build ms', 'kept MB'], tables),
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`# hash table limits\n\nNode ${process.version}\n`);
  for (const s of run()) console.log(`## ${s.title}\n\n${s.body}\n`);
}
