/**
 * EtcdDiscovery against a real etcd (started on free ports in a temporary data directory):
 * registration under leases, lease expiry, etcd restarted mid-watch, a compacted revision,
 * 5,000 endpoints at once and values that are not endpoints. Each case is bounded in time.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdDiscovery, type EtcdDiscoveryEvents } from '../../src/etcd/index.js';
import {
  attachDiscovery,
  BackendPool,
  type DiscoveryBinding,
  type DiscoveryEvents,
} from '../../src/index.js';
import { type EtcdServer, hasEtcd, startEtcd } from '../support/etcd.js';

const run = hasEtcd();

/** Resolves once `check()` holds, polling every 20 ms; rejects after `ms` with `what`. */
async function until(check: () => boolean, what: string, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Records every event of a source, in order. */
function recordSource(source: EtcdDiscovery) {
  const log: { [E in keyof EtcdDiscoveryEvents]: Parameters<EtcdDiscoveryEvents[E]>[0][] } = {
    listed: [],
    watching: [],
    changes: [],
    disconnected: [],
    'list-failed': [],
    'invalid-value': [],
  };
  for (const name of Object.keys(log) as (keyof EtcdDiscoveryEvents)[]) {
    source.on(name, ((e: never) => (log[name] as unknown[]).push(e)) as never);
  }
  return log;
}

function recordBinding(binding: DiscoveryBinding) {
  const log = {
    applied: [] as Parameters<DiscoveryEvents['applied']>[0][],
    removed: [] as Parameters<DiscoveryEvents['removed']>[0][],
    empty: [] as Parameters<DiscoveryEvents['empty-answer']>[0][],
    failed: [] as Parameters<DiscoveryEvents['refresh-failed']>[0][],
  };
  binding.on('applied', (e) => log.applied.push(e));
  binding.on('removed', (e) => log.removed.push(e));
  binding.on('empty-answer', (e) => log.empty.push(e));
  binding.on('refresh-failed', (e) => log.failed.push(e));
  return log;
}

function endpoint(i: number): { key: string; url: string; id: string } {
  const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return { key: `${host}:8080`, url: `http://${host}:8080`, id: `${host}:8080` };
}

describe.skipIf(!run)('EtcdDiscovery with a real etcd', () => {
  let etcd: EtcdServer;
  let writer: Etcd3;
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    writer = new Etcd3({ hosts: etcd.host });
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  afterAll(async () => {
    writer?.close();
    await etcd?.stop();
  });

  /** A pool following `prefix` through a source on its own client. */
  function follow(prefix: string, options: { minRetryMs?: number; coalesceMs?: number } = {}) {
    const client = new Etcd3({ hosts: etcd.host });
    const source = new EtcdDiscovery({ client, prefix, ...options });
    const sourceLog = recordSource(source);
    const pool = new BackendPool({ drainGraceMs: 0, skew: false });
    const binding = attachDiscovery(pool, source);
    const bindingLog = recordBinding(binding);
    cleanups.push(async () => {
      await pool.close();
      await binding.close();
      client.close();
    });
    return { client, source, pool, binding, sourceLog, bindingLog };
  }

  it('lists what is registered, then follows new registrations and revocations', async () => {
    const prefix = 'reg/api/';
    const a = writer.lease(30);
    const b = writer.lease(30);
    cleanups.push(() => Promise.allSettled([a.revoke(), b.revoke()]));
    await a.put(`${prefix}${endpoint(1).key}`).value(endpoint(1).url);
    await b
      .put(`${prefix}${endpoint(2).key}`)
      .value(JSON.stringify({ url: endpoint(2).url, weight: 3, zone: 'b' }));

    const { pool, binding, sourceLog } = follow(prefix);
    expect(await binding.ready()).toBe(true);
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(1).id, endpoint(2).id]);
    expect(pool.get(endpoint(2).id)).toMatchObject({ weight: 3, zone: 'b' });
    expect(sourceLog.listed).toMatchObject([{ reason: 'start', count: 2, invalid: 0 }]);

    // A third instance registers under its own lease: it joins.
    const c = writer.lease(30);
    cleanups.push(() => c.revoke().catch(() => {}));
    await c.put(`${prefix}${endpoint(3).key}`).value(endpoint(3).url);
    await until(() => pool.has(endpoint(3).id), 'the third backend to join');

    // The first one shuts down cleanly and revokes its lease: etcd deletes the key, it drains out.
    await a.revoke();
    await until(() => !pool.has(endpoint(1).id), 'the revoked backend to leave');
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(2).id, endpoint(3).id]);
    // Every change arrived once, in revision order.
    const ranges = sourceLog.changes.map((e) => [e.fromRevision, e.toRevision] as const);
    for (let i = 1; i < ranges.length; i++)
      expect(ranges[i]![0]).toBeGreaterThan(ranges[i - 1]![1]);
    expect(sourceLog.changes.reduce((n, e) => n + e.skipped, 0)).toBe(0);
  });

  it('drains out a backend whose lease expires; the last one stays when every lease is gone', async () => {
    const prefix = 'ttl/api/';
    const keep = writer.lease(30);
    cleanups.push(() => keep.revoke().catch(() => {}));
    await keep.put(`${prefix}${endpoint(10).key}`).value(endpoint(10).url);
    // A backend that dies without revoking: nobody keeps its 1 s lease alive.
    const dying = writer.lease(1, { autoKeepAlive: false });
    dying.on('lost', () => {});
    await dying.put(`${prefix}${endpoint(11).key}`).value(endpoint(11).url);

    const { pool, binding, bindingLog } = follow(prefix);
    await binding.ready();
    expect(pool.has(endpoint(11).id)).toBe(true);
    await until(() => !pool.has(endpoint(11).id), 'the expired lease to take its backend out');
    expect(bindingLog.removed).toMatchObject([{ id: endpoint(11).id, completed: true }]);
    expect(pool.has(endpoint(10).id)).toBe(true);

    // The last lease goes too: an empty answer is reported and the pool keeps its last good set.
    await keep.revoke();
    await until(() => bindingLog.empty.length > 0, 'the empty answer to be reported');
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(10).id]);
  });

  it('resumes from the last revision after etcd restarts mid-watch: nothing missed, nothing twice', async () => {
    const prefix = 'restart/api/';
    await writer.put(`${prefix}${endpoint(20).key}`).value(endpoint(20).url);
    await writer.put(`${prefix}${endpoint(21).key}`).value(endpoint(21).url);
    // A long first retry, so the changes below are made while the source is still away.
    const { pool, binding, source, sourceLog, bindingLog } = follow(prefix, { minRetryMs: 1500 });
    await binding.ready();
    await until(() => sourceLog.watching.length === 1, 'the watch to start');
    await writer.put(`${prefix}${endpoint(22).key}`).value(endpoint(22).url);
    await until(() => pool.has(endpoint(22).id), 'a change before the restart');
    const before = source.revision;

    await etcd.restart();
    await until(() => sourceLog.disconnected.length > 0, 'the source to notice the restart');
    expect(bindingLog.failed.length).toBeGreaterThan(0);
    expect(pool.backends()).toHaveLength(3); // the last good set stays meanwhile
    // Changes made after the restart, before the source is back.
    const fresh = new Etcd3({ hosts: etcd.host });
    cleanups.push(() => fresh.close());
    await fresh.delete().key(`${prefix}${endpoint(20).key}`);
    await fresh.put(`${prefix}${endpoint(23).key}`).value(endpoint(23).url);

    await until(
      () => pool.has(endpoint(23).id) && !pool.has(endpoint(20).id),
      'the changes made during the outage',
      15_000,
    );
    expect(pool.backends().map((x) => x.id)).toEqual([
      endpoint(21).id,
      endpoint(22).id,
      endpoint(23).id,
    ]);
    // It resumed where it stopped, without a fresh read.
    expect(sourceLog.watching.at(-1)!.fromRevision).toBe(before + 1);
    expect(sourceLog.listed).toHaveLength(1);
    const ranges = sourceLog.changes.map((e) => [e.fromRevision, e.toRevision] as const);
    for (let i = 1; i < ranges.length; i++)
      expect(ranges[i]![0]).toBeGreaterThan(ranges[i - 1]![1]);
    expect(sourceLog.changes.reduce((n, e) => n + e.puts + e.deletes, 0)).toBe(3);
    // Back in good health: the binding was told the source answers again.
    await until(() => binding.consecutiveFailures === 0, 'the binding to see a good answer');
  }, 30_000);

  it('reads everything again when the revision to resume from was compacted, and reconciles', async () => {
    const prefix = 'compact/api/';
    await writer.put(`${prefix}${endpoint(30).key}`).value(endpoint(30).url);
    await writer.put(`${prefix}${endpoint(31).key}`).value(endpoint(31).url);
    const { pool, binding, source, sourceLog } = follow(prefix, { minRetryMs: 1500 });
    await binding.ready();
    await until(() => sourceLog.watching.length === 1, 'the watch to start');
    const before = source.revision;

    await etcd.restart();
    await until(() => sourceLog.disconnected.length > 0, 'the source to notice the restart');
    const fresh = new Etcd3({ hosts: etcd.host });
    cleanups.push(() => fresh.close());
    await fresh.delete().key(`${prefix}${endpoint(30).key}`);
    const put = await fresh
      .put(`${prefix}${endpoint(32).key}`)
      .value(endpoint(32).url)
      .exec();
    // Compact the history up to now: the events the source would resume with are gone.
    await (
      fresh as unknown as {
        kv: { compact(r: { revision: string; physical: boolean }): Promise<unknown> };
      }
    ).kv.compact({ revision: put.header.revision, physical: true });
    expect(Number(put.header.revision)).toBeGreaterThan(before + 1);

    await until(() => sourceLog.listed.length === 2, 'a fresh read', 15_000);
    expect(sourceLog.listed[1]).toMatchObject({ reason: 'compacted', count: 2 });
    await until(
      () => pool.has(endpoint(32).id) && !pool.has(endpoint(30).id),
      'the pool to be reconciled',
    );
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(31).id, endpoint(32).id]);
    // And it watches on from the fresh read.
    await until(() => sourceLog.watching.length >= 2, 'the watch to start again');
    await fresh.put(`${prefix}${endpoint(33).key}`).value(endpoint(33).url);
    await until(() => pool.has(endpoint(33).id), 'a change after the fresh read');
  }, 30_000);

  it('takes 5,000 endpoints registered at once, reconciling in a few passes', async () => {
    const prefix = 'bulk/api/';
    const { pool, binding, bindingLog } = follow(prefix);
    // One seed entry so the binding has applied something before the burst.
    await writer.put(`${prefix}seed`).value(endpoint(40_000).url);
    await binding.ready();
    const lease = writer.lease(60);
    cleanups.push(() => lease.revoke().catch(() => {}));
    const id = await lease.grant();
    const started = Date.now();
    // etcd caps a transaction at 128 operations (--max-txn-ops): 40 transactions of 125 puts.
    const kv = (writer as unknown as { kv: { txn(r: unknown): Promise<unknown> } }).kv;
    await Promise.all(
      Array.from({ length: 40 }, (_, t) =>
        kv.txn({
          success: Array.from({ length: 125 }, (_, j) => {
            const e = endpoint(t * 125 + j + 100);
            return {
              request_put: {
                key: Buffer.from(prefix + e.key),
                value: Buffer.from(e.url),
                lease: id,
              },
            };
          }),
        }),
      ),
    );
    await until(() => pool.backends().length === 5001, '5,000 backends to join', 20_000);
    const elapsed = Date.now() - started;
    // Coalesced: far fewer reconciles than registrations.
    expect(bindingLog.applied.length).toBeLessThan(100);
    expect(elapsed).toBeLessThan(20_000);

    // A second source reads all of them at once, in pages at one revision.
    const client = new Etcd3({ hosts: etcd.host });
    cleanups.push(() => client.close());
    const second = new EtcdDiscovery({ client, prefix, pageSize: 700 });
    const log = recordSource(second);
    const pool2 = new BackendPool({ skew: false });
    const binding2 = attachDiscovery(pool2, second);
    cleanups.push(() => pool2.close());
    await binding2.ready();
    expect(pool2.backends()).toHaveLength(5001);
    expect(log.listed).toMatchObject([{ count: 5001, invalid: 0 }]);
  }, 40_000);

  it('refuses a value that is not an endpoint, reports it, and keeps everything else', async () => {
    const prefix = 'bad/api/';
    await writer.put(`${prefix}good`).value(endpoint(50).url);
    await writer.put(`${prefix}garbage`).value('not a url at all');
    const { pool, binding, sourceLog } = follow(prefix);
    await binding.ready();
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(50).id]);
    expect(sourceLog['invalid-value']).toMatchObject([{ key: `${prefix}garbage` }]);
    expect(sourceLog.listed).toMatchObject([{ count: 1, invalid: 1 }]);

    // Bad values arriving through the watch: broken JSON, a weight of -1, a URL with a password.
    await writer.put(`${prefix}json`).value('{"url": "http://10.0.0.9:8080", ');
    await writer
      .put(`${prefix}weight`)
      .value(JSON.stringify({ url: endpoint(51).url, weight: -1 }));
    await writer.put(`${prefix}creds`).value('http://user:secret@10.0.0.7:8080');
    await writer.put(`${prefix}next`).value(endpoint(52).url);
    await until(() => pool.has(endpoint(52).id), 'the good value after the bad ones');
    expect(sourceLog['invalid-value'].map((e) => e.key)).toEqual([
      `${prefix}garbage`,
      `${prefix}json`,
      `${prefix}weight`,
      `${prefix}creds`,
    ]);
    expect(JSON.stringify(sourceLog['invalid-value'].map((e) => String(e.error)))).not.toContain(
      'secret',
    );
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(50).id, endpoint(52).id]);

    // A good key overwritten with a bad value leaves: the endpoint it named is gone.
    await writer.put(`${prefix}good`).value('still not a url');
    await until(() => !pool.has(endpoint(50).id), 'the overwritten key to leave');
    expect(pool.backends().map((x) => x.id)).toEqual([endpoint(52).id]);
  });
});
