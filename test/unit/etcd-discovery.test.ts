/**
 * EtcdDiscovery's bookkeeping on ManualClock, against a scripted client: which revision a watch
 * resumes from, replays dropped, pages read at one revision, retries, coalescing and options.
 * (The same source runs against a real etcd in test/integration/etcd-discovery.test.ts.)
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/backoff.js';
import { prefixEnd } from '../../src/etcd/etcd-discovery.js';
import {
  decodeEtcdEndpoint,
  type EtcdClientLike,
  EtcdDiscovery,
  type EtcdDiscoveryOptions,
  type EtcdKeyValueLike,
  type EtcdRangeBuilderLike,
  type EtcdRangeResponseLike,
  type EtcdWatchBuilderLike,
  type EtcdWatchResponseLike,
} from '../../src/etcd/index.js';
import type { BackendSpec } from '../../src/index.js';
import { LoadBalancerConfigError } from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

function kv(key: string, value: string, rev: number): EtcdKeyValueLike {
  return { key: Buffer.from(key), value: Buffer.from(value), mod_revision: String(rev) };
}

interface RangeCall {
  prefix?: string;
  start?: string;
  revision?: string;
  limit?: number;
}

class FakeWatcher extends EventEmitter {
  canceled = false;
  constructor(readonly fromRevision: number) {
    super();
  }
  cancel(): Promise<void> {
    this.canceled = true;
    return Promise.resolve();
  }
  connect(headerRevision: number): void {
    this.emit('connected', { header: { revision: String(headerRevision) }, events: [] });
  }
  send(events: { type: 'Put' | 'Delete'; kv: EtcdKeyValueLike }[], headerRevision = 0): void {
    const res: EtcdWatchResponseLike = { header: { revision: String(headerRevision) }, events };
    this.emit('data', res);
  }
}

/** A client whose range reads answer from `store` (or fail), and whose watchers are kept. */
class FakeClient implements EtcdClientLike {
  store: EtcdKeyValueLike[] = [];
  revision = 1;
  ranges: RangeCall[] = [];
  watchers: FakeWatcher[] = [];
  failRanges = 0;
  hangRanges = false;

  getAll(): EtcdRangeBuilderLike {
    const call: RangeCall = {};
    const builder: EtcdRangeBuilderLike = {
      prefix: (p) => {
        call.prefix = p;
        return builder;
      },
      inRange: (r) => {
        call.start = String(r.start);
        return builder;
      },
      revision: (rev) => {
        call.revision = rev;
        return builder;
      },
      limit: (n) => {
        call.limit = n;
        return builder;
      },
      exec: () => {
        this.ranges.push(call);
        if (this.hangRanges) return new Promise<EtcdRangeResponseLike>(() => {});
        if (this.failRanges > 0) {
          this.failRanges--;
          return Promise.reject(new Error('14 UNAVAILABLE: connection refused'));
        }
        const sorted = [...this.store].sort((a, b) => Buffer.compare(a.key, b.key));
        const from = call.start === undefined ? undefined : Buffer.from(call.start);
        const rest = sorted.filter((x) => from === undefined || Buffer.compare(x.key, from) >= 0);
        const limit = call.limit ?? rest.length;
        return Promise.resolve({
          header: { revision: call.revision ?? String(this.revision) },
          kvs: rest.slice(0, limit),
          more: rest.length > limit,
        });
      },
    };
    return builder;
  }

  watch(): EtcdWatchBuilderLike {
    let from = 0;
    const builder: EtcdWatchBuilderLike = {
      prefix: () => builder,
      startRevision: (rev) => {
        from = Number(rev);
        return builder;
      },
      watcher: () => {
        const w = new FakeWatcher(from);
        this.watchers.push(w);
        return w as never;
      },
    };
    return builder;
  }

  get watcher(): FakeWatcher {
    return this.watchers.at(-1)!;
  }
}

function setup(options: Partial<EtcdDiscoveryOptions> = {}) {
  const clock = new ManualClock();
  const client = new FakeClient();
  const source = new EtcdDiscovery({
    client,
    prefix: 'svc/',
    clock,
    random: seededRandom(7),
    ...options,
  });
  const answers: (readonly BackendSpec[] | 'failed')[] = [];
  source.subscribe((a) => answers.push(a.ok ? a.endpoints : 'failed'));
  return { clock, client, source, answers };
}

const flush = () => new Promise((r) => setImmediate(r));

describe('EtcdDiscovery (scripted client)', () => {
  it('hands on the listed set, then watches from the read revision + 1', async () => {
    const { client, source, answers } = setup();
    client.store = [kv('svc/a', 'http://10.0.0.1:80', 3), kv('svc/b', 'http://10.0.0.2:80', 5)];
    client.revision = 9;
    source.start();
    await flush();
    expect(answers).toEqual([['http://10.0.0.1:80', 'http://10.0.0.2:80']]);
    expect(source.revision).toBe(9);
    expect(client.watcher.fromRevision).toBe(10);
  });

  it('resumes from the last applied event revision, not from a header that ran ahead', async () => {
    const { client, clock, source } = setup({ minRetryMs: 100, maxRetryMs: 100 });
    client.revision = 10;
    source.start();
    await flush();
    const w = client.watcher;
    // The created response carries the store's current revision (50), far past what the watch
    // has delivered; then a catch-up batch up to revision 20 only.
    w.connect(50);
    w.send([{ type: 'Put', kv: kv('svc/a', 'http://10.0.0.1:80', 20) }], 50);
    w.emit('disconnected', new Error('stream reset'));
    expect(w.canceled).toBe(true);
    clock.advance(100);
    expect(client.watchers).toHaveLength(2);
    expect(client.watcher.fromRevision).toBe(21);
  });

  it('drops events at or below the applied revision (a replay) and says so', async () => {
    const { client, clock, source, answers } = setup({ coalesceMs: 0 });
    client.revision = 10;
    client.store = [kv('svc/a', 'http://10.0.0.1:80', 8)];
    source.start();
    await flush();
    const changes: { skipped: number; puts: number }[] = [];
    source.on('changes', (e) => changes.push(e));
    client.watcher.send([
      { type: 'Delete', kv: kv('svc/a', '', 9) },
      { type: 'Put', kv: kv('svc/b', 'http://10.0.0.2:80', 11) },
    ]);
    expect(changes).toMatchObject([{ skipped: 1, puts: 1 }]);
    expect(answers.at(-1)).toEqual(['http://10.0.0.1:80', 'http://10.0.0.2:80']);
    clock.advance(1);
  });

  it('gathers a burst of changes for coalesceMs and hands them on once', async () => {
    const { client, clock, source, answers } = setup({ coalesceMs: 50 });
    source.start();
    await flush();
    for (let i = 0; i < 100; i++) {
      client.watcher.send([{ type: 'Put', kv: kv(`svc/${i}`, `http://10.0.1.${i}:80`, 2 + i) }]);
    }
    expect(answers).toHaveLength(1); // only the initial (empty) list so far
    clock.advance(49);
    expect(answers).toHaveLength(1);
    clock.advance(1);
    expect(answers).toHaveLength(2);
    expect(answers[1]).toHaveLength(100);
    expect(source.revision).toBe(101);
  });

  it('reads in pages at the first page revision', async () => {
    const { client, source, answers } = setup({ pageSize: 2 });
    client.revision = 40;
    client.store = ['a', 'b', 'c', 'd', 'e'].map((k, i) =>
      kv(`svc/${k}`, `http://10.0.2.${i}:80`, i + 2),
    );
    source.start();
    await flush();
    expect(client.ranges.map((r) => r.revision)).toEqual([undefined, '40', '40']);
    expect(client.ranges[1]!.start).toBe('svc/b\0');
    expect(answers[0]).toHaveLength(5);
  });

  it('retries a failed read with growing, jittered waits on the clock, and reports each failure', async () => {
    const { client, clock, source, answers } = setup({ minRetryMs: 100, maxRetryMs: 400 });
    client.failRanges = 3;
    const waits: number[] = [];
    source.on('list-failed', (e) => waits.push(e.retryInMs));
    source.start();
    for (let i = 0; i < 3; i++) {
      await flush();
      clock.advance(waits.at(-1)!);
    }
    await flush();
    expect(waits).toHaveLength(3);
    expect(waits.every((w) => w >= 100 && w <= 400)).toBe(true);
    expect(answers).toEqual(['failed', 'failed', 'failed', []]);
    expect(source.watching).toBe(true);
  });

  it('waits as the fetch retries do (full jitter), never less than minRetryMs', async () => {
    const { client, clock, source } = setup({ minRetryMs: 100, maxRetryMs: 1000 });
    client.failRanges = 4;
    const waits: number[] = [];
    source.on('list-failed', (e) => waits.push(e.retryInMs));
    source.start();
    for (let i = 0; i < 4; i++) {
      await flush();
      clock.advance(waits.at(-1)!);
    }
    await flush();
    const random = seededRandom(7);
    const expected = [1, 2, 3, 4].map((n) => Math.max(100, backoffDelay(n, 100, 1000, random)));
    expect(waits).toEqual(expected);
    expect(waits[0]).toBe(100);
  });

  it('gives up on a read that hangs after timeoutMs and tries again', async () => {
    const { client, clock, source } = setup({ timeoutMs: 1000, minRetryMs: 10, maxRetryMs: 10 });
    client.hangRanges = true;
    const failed: unknown[] = [];
    source.on('list-failed', (e) => failed.push(e.error));
    source.start();
    clock.advance(999);
    await flush();
    expect(failed).toHaveLength(0);
    clock.advance(1);
    await flush();
    expect(failed).toMatchObject([{ code: 'LB_DISCOVERY_TIMEOUT' }]);
    client.hangRanges = false;
    clock.advance(10);
    await flush();
    expect(source.watching).toBe(true);
  });

  it('reads everything again when the watch is cancelled, naming compaction when the probe says so', async () => {
    const { client, source } = setup();
    client.revision = 5;
    source.start();
    await flush();
    const listed: string[] = [];
    source.on('listed', (e) => listed.push(e.reason));
    // The probe read at revision 6 fails as etcd does for compacted history.
    const getAll = client.getAll.bind(client);
    client.getAll = () => {
      const b = getAll();
      const exec = b.exec;
      let rev: string | undefined;
      const revision = b.revision;
      b.revision = (r) => {
        rev = r;
        return revision(r);
      };
      b.exec = () =>
        rev === '6'
          ? Promise.reject(new Error('etcdserver: mvcc: required revision has been compacted'))
          : exec();
      return b;
    };
    client.watcher.emit('error', new Error('Watcher canceled: '));
    await flush();
    await flush();
    expect(listed).toEqual(['compacted']);
    expect(client.watcher.fromRevision).toBe(6);
  });

  it('reads everything again when the store revision went backwards (a reset cluster)', async () => {
    const { client, source } = setup();
    client.revision = 100;
    source.start();
    await flush();
    const listed: string[] = [];
    source.on('listed', (e) => listed.push(e.reason));
    client.revision = 3;
    client.watcher.connect(3);
    await flush();
    expect(listed).toEqual(['reset']);
    expect(source.revision).toBe(3);
  });

  it('closes cleanly: timers cleared, watch cancelled, no answer after close', async () => {
    const { client, clock, source, answers } = setup();
    source.start();
    await flush();
    const w = client.watcher;
    w.send([{ type: 'Put', kv: kv('svc/x', 'http://10.0.0.9:80', 2) }]);
    await source.close();
    expect(w.canceled).toBe(true);
    clock.advance(10_000);
    expect(answers).toHaveLength(1);
    expect(clock.pendingTimers()).toBe(0);
  });

  it('checks its options', () => {
    const client = new FakeClient();
    expect(() => new EtcdDiscovery({ client, prefix: '' })).toThrow(LoadBalancerConfigError);
    expect(() => new EtcdDiscovery({ client: {} as never, prefix: 'p/' })).toThrow(/client/);
    expect(() => new EtcdDiscovery({ client, prefix: 'p/', coalesceMs: -1 })).toThrow(/coalesceMs/);
    expect(() => new EtcdDiscovery({ client, prefix: 'p/', pageSize: 0 })).toThrow(/pageSize/);
    expect(
      () => new EtcdDiscovery({ client, prefix: 'p/', minRetryMs: 500, maxRetryMs: 100 }),
    ).toThrow(/maxRetryMs/);
    expect(() => new EtcdDiscovery({ client, prefix: 'p/', bogus: 1 } as never)).toThrow(/bogus/);
  });

  it('decodes URLs and JSON, and refuses JSON that is not an object', () => {
    expect(decodeEtcdEndpoint('k', ' http://10.0.0.1:80 \n')).toBe('http://10.0.0.1:80');
    expect(decodeEtcdEndpoint('k', '{"url":"http://10.0.0.1:80","weight":2}')).toEqual({
      url: 'http://10.0.0.1:80',
      weight: 2,
    });
    expect(() => decodeEtcdEndpoint('k', '{"url":')).toThrow(LoadBalancerConfigError);
    expect(() => decodeEtcdEndpoint('k', '{}x')).toThrow(/JSON/);
  });

  it('computes the end of a prefix range as etcd does', () => {
    expect(prefixEnd('svc/')).toEqual(Buffer.from('svc0'));
    // U+00FF is C3 BF in UTF-8: the last byte is below 0xff, so it is the one incremented.
    expect(prefixEnd('a\u00ff')).toEqual(Buffer.from([0x61, 0xc3, 0xc0]));
    expect(prefixEnd('')).toEqual(Buffer.from([0]));
  });
});
