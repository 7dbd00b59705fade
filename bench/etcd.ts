/**
 * etcd discovery at fleet size: how long until a pool holds 5,000 endpoints registered in a real
 * etcd (started here on free ports, in a temporary data directory), against the same 5,000
 * handed to the binding by a StaticDiscovery (the baseline: the reconcile alone, measured in
 * the same run).
 * - initial list: a source started on a prefix that already holds 5,000 keys (range read in
 *   pages, decode, validation, 5,000 pool.add);
 * - watch burst: 5,000 keys registered at once (40 transactions of 125 puts under one lease)
 *   while a source watches the empty prefix: from the first write sent to the last backend in
 *   the pool, and from the last write acknowledged to the last backend in the pool.
 */
import { Etcd3 } from 'etcd3';
import { DeterministicSubset } from '../src/algorithms/deterministic-subset.js';
import { attachDiscovery } from '../src/discovery/binding.js';
import { StaticDiscovery } from '../src/discovery/static-discovery.js';
import { EtcdDiscovery } from '../src/etcd/etcd-discovery.js';
import { BackendPool } from '../src/pool/backend-pool.js';
import type { Algorithm } from '../src/types.js';
import { type EtcdServer, startEtcd } from '../test/support/etcd.js';
import { hasCommand } from '../test/support/services.js';
import { fmt, median, type Section, table } from './harness.js';

const N = Number(process.env.BENCH_ETCD_N ?? 5000);
const RUNS = Number(process.env.BENCH_ETCD_RUNS ?? 7);

function endpoint(i: number): { key: string; url: string } {
  const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return { key: `${host}:8080`, url: `http://${host}:8080` };
}

async function until(check: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

async function register(writer: Etcd3, prefix: string): Promise<void> {
  const lease = writer.lease(600, { autoKeepAlive: false });
  const id = await lease.grant();
  const kv = (writer as unknown as { kv: { txn(r: unknown): Promise<unknown> } }).kv;
  await Promise.all(
    Array.from({ length: N / 125 }, (_, t) =>
      kv.txn({
        success: Array.from({ length: 125 }, (_, j) => {
          const e = endpoint(t * 125 + j);
          return {
            request_put: { key: Buffer.from(prefix + e.key), value: Buffer.from(e.url), lease: id },
          };
        }),
      }),
    ),
  );
}

/** Wall time and this process's CPU time (user + system) of one measured path, in ms. */
interface Sample {
  wall: number;
  cpu: number;
}

function startTimer(): () => Sample {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(cpu);
    return { wall: performance.now() - wall, cpu: (d.user + d.system) / 1000 };
  };
}

const pool = (algorithm?: Algorithm): BackendPool =>
  new BackendPool({ skew: false, ...(algorithm === undefined ? {} : { algorithm }) });
const subset = (): Algorithm =>
  new DeterministicSubset({ clientIndex: 3, clientCount: 500, size: 20 });

export default async function run(): Promise<Section> {
  const title = 'etcd discovery: reconciling 5,000 endpoints';
  if (!hasCommand('etcd')) {
    return {
      title,
      body: 'Skipped: `etcd` is not installed (Debian: `apt-get install etcd-server`).',
    };
  }
  const etcd: EtcdServer = await startEtcd();
  const writer = new Etcd3({ hosts: etcd.host });
  const specs = Array.from({ length: N }, (_, i) => endpoint(i).url);
  const staticMs: Sample[] = [];
  const staticSubsetMs: Sample[] = [];
  const listMs: Sample[] = [];
  const listSubsetMs: Sample[] = [];
  const burstMs: Sample[] = [];
  const lagMs: Sample[] = [];
  try {
    // Run 0 warms up (JIT, first connections) and is left out of the medians.
    for (let r = 0; r <= RUNS; r++) {
      const keep = r > 0;
      const record = (out: Sample[], sample: Sample): void => {
        if (keep) out.push(sample);
      };
      for (const [out, algorithm] of [
        [staticMs, undefined],
        [staticSubsetMs, subset()],
      ] as const) {
        const p = pool(algorithm);
        const stop = startTimer();
        attachDiscovery(p, new StaticDiscovery(specs));
        p.acquire().release();
        record(out, stop());
        await p.close();
      }

      const listed = `bench/list-${r}/`;
      await register(writer, listed);
      for (const [out, algorithm] of [
        [listMs, undefined],
        [listSubsetMs, subset()],
      ] as const) {
        const client = new Etcd3({ hosts: etcd.host });
        const p = pool(algorithm);
        const stop = startTimer();
        const binding = attachDiscovery(p, new EtcdDiscovery({ client, prefix: listed }));
        await binding.ready();
        p.acquire().release();
        record(out, stop());
        if (p.backends().length !== N) throw new Error(`listed ${p.backends().length}, not ${N}`);
        // The source (closed with the binding) cancels its watch before the client goes.
        await binding.close();
        await p.close();
        client.close();
      }

      const watched = `bench/watch-${r}/`;
      const client = new Etcd3({ hosts: etcd.host });
      const p = pool();
      const source = new EtcdDiscovery({ client, prefix: watched });
      let watching = false;
      source.on('watching', () => {
        watching = true;
      });
      const binding = attachDiscovery(p, source);
      await until(() => watching);
      const stop = startTimer();
      await register(writer, watched);
      const stopLag = startTimer();
      await until(() => p.backends().length === N);
      record(burstMs, stop());
      record(lagMs, stopLag());
      await binding.close();
      await p.close();
      client.close();
    }
  } finally {
    writer.close();
    await etcd.stop();
  }
  const base = median(staticMs.map((x) => x.cpu));
  const row = (what: string, samples: Sample[]): (string | number)[] => {
    const cpu = median(samples.map((x) => x.cpu));
    return [what, fmt(median(samples.map((x) => x.wall))), fmt(cpu), `${fmt(cpu / base, 2)}×`];
  };
  const body = [
    `Median of ${RUNS} runs (after one warm-up run); a real etcd ${'3.4'} on 127.0.0.1 (data on tmpfs), the client \`etcd3\`. The baseline hands the same 5,000 URLs to the binding from a StaticDiscovery. Wall time includes etcd's own work and the machine's load; client CPU is this process's (the library, etcd3 and gRPC decoding), which other jobs on a shared machine disturb much less.`,
    '',
    table(
      ['path to a pool of 5,000 backends', 'wall ms', 'client CPU ms', 'CPU vs baseline'],
      [
        row('baseline: StaticDiscovery, reconcile only', staticMs),
        row('baseline, pool with DeterministicSubset (20 of 5,000)', staticSubsetMs),
        row('etcd: initial range read (5 pages) + reconcile', listMs),
        row('etcd: initial read, pool with DeterministicSubset', listSubsetMs),
        row('etcd: 5,000 registered at once, first write → all in the pool', burstMs),
        row('etcd: same, last write acknowledged → all in the pool', lagMs),
      ],
    ),
  ].join('\n');
  return { title, body };
}
