/**
 * HTTP: the balanced fetch against the plain fetch on loopback, and against undici 7's
 * `BalancedPool`, with 16 and 1 calls in flight.
 *
 * Three HTTP servers are started on 127.0.0.1 inside this process (so client and servers share
 * the CPU, as they would not in production: the ratios are what matter) and closed at the end.
 * Every configuration runs once per round, in a rotating order, and the figure is the median of
 * the rounds, so drift on a shared machine spreads over all of them.
 *
 * A second table times the wrapper alone: a fetch implementation that returns a ready `Response`
 * without any network, called directly and through the balanced fetch.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, BalancedPool, fetch as undiciFetch } from 'undici';
import { BackendPool, createBalancedFetch, type FetchFunction, RoundRobin } from '../src/index.js';
import { fmt, median, type Section, table } from './harness.js';

const ROUNDS = 5;
const CALLS: Record<number, number> = { 16: 1500, 1: 500 };
const WRAPPER_CALLS = 20_000;
const BODY = 'x'.repeat(64);

interface Started {
  url: string;
  close(): Promise<void>;
}

async function startServer(): Promise<Started> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

type Call = () => Promise<unknown>;

/** Requests per second of `call` with `concurrency` calls in flight. */
async function rps(call: Call, total: number, concurrency: number): Promise<number> {
  let started = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < total) {
        started++;
        await call();
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return total / seconds;
}

async function text(res: Response | Promise<Response>): Promise<string> {
  return (await res).text();
}

export default async function fetchBench(): Promise<Section[]> {
  const servers = await Promise.all([startServer(), startServer(), startServer()]);
  const urls = servers.map((s) => s.url);
  const one = urls[0]!;
  const agent = new Agent({ connections: 32 });
  const undiciInjected: FetchFunction = (url, init) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
  const balancedUndici = new BalancedPool(urls, { connections: 32 });
  const pools: BackendPool[] = [];
  const pool = (backends: string[]): BackendPool => {
    const p = new BackendPool({ backends, algorithm: new RoundRobin(), skew: false });
    pools.push(p);
    return p;
  };
  const balancedGlobal3 = createBalancedFetch(pool(urls));
  const balancedGlobal1 = createBalancedFetch(pool([one]));
  const balancedUndici3 = createBalancedFetch(pool(urls), { fetch: undiciInjected });
  const balancedUndici1 = createBalancedFetch(pool([one]), { fetch: undiciInjected });

  const configs: { name: string; group: string; baseline?: string; call: Call }[] = [
    { name: 'plain fetch, 1 backend', group: 'global', call: () => text(fetch(`${one}/x`)) },
    {
      name: 'balanced fetch, same 1 backend',
      group: 'global',
      baseline: 'plain fetch, 1 backend',
      call: () => text(balancedGlobal1('/x')),
    },
    {
      name: 'balanced fetch, 3 backends',
      group: 'global',
      baseline: 'plain fetch, 1 backend',
      call: () => text(balancedGlobal3('/x')),
    },
    {
      name: 'undici fetch, 1 backend',
      group: 'undici',
      call: () => text(undiciInjected(`${one}/x`, {})),
    },
    {
      name: 'balanced fetch over undici fetch, same 1 backend',
      group: 'undici',
      baseline: 'undici fetch, 1 backend',
      call: () => text(balancedUndici1('/x')),
    },
    {
      name: 'balanced fetch over undici fetch, 3 backends',
      group: 'undici',
      baseline: 'undici fetch, 1 backend',
      call: () => text(balancedUndici3('/x')),
    },
    {
      name: 'undici fetch + BalancedPool, 3 backends',
      group: 'undici',
      baseline: 'undici fetch, 1 backend',
      call: () =>
        text(
          undiciFetch(`${one}/x`, { dispatcher: balancedUndici }) as unknown as Promise<Response>,
        ),
    },
    {
      name: 'BalancedPool.request (no fetch layer), 3 backends',
      group: 'undici',
      baseline: 'undici fetch, 1 backend',
      call: async () => {
        const r = await balancedUndici.request({ path: '/x', method: 'GET' });
        return r.body.text();
      },
    },
  ];

  const sections: Section[] = [];
  try {
    const rows: (string | number)[][] = [];
    for (const concurrency of [16, 1]) {
      const total = CALLS[concurrency]!;
      // Warm up every path (connections, JIT) before measuring.
      for (const c of configs) await rps(c.call, Math.ceil(total / 5), concurrency);
      const samples = new Map<string, number[]>(configs.map((c) => [c.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < configs.length; k++) {
          const c = configs[(k + round) % configs.length]!;
          samples.get(c.name)!.push(await rps(c.call, total, concurrency));
        }
      }
      const med = new Map([...samples].map(([name, xs]) => [name, median(xs)]));
      for (const c of configs) {
        const value = med.get(c.name)!;
        const base = c.baseline === undefined ? undefined : med.get(c.baseline)!;
        rows.push([
          concurrency,
          c.name,
          fmt(value, 0),
          base === undefined ? 'baseline' : `${fmt(value / base, 3)}`,
          base === undefined ? '' : `${fmt((base / value - 1) * 100, 1)}%`,
        ]);
      }
    }
    sections.push({
      title: 'HTTP: balanced fetch on loopback',
      body: [
        `Three servers on 127.0.0.1 in the bench process, a ${BODY.length}-byte body, keep-alive. ` +
          `Requests/s, median of ${ROUNDS} rounds of ${CALLS[16]} calls (16 in flight) or ` +
          `${CALLS[1]} calls (1 in flight). "vs baseline" is the throughput ratio; "overhead" is ` +
          'the extra time per call against the baseline of the same fetch implementation. ' +
          'Default options (retries 2, retry budget on, no timeouts), RoundRobin.',
        '',
        table(['in flight', 'configuration', 'req/s', 'vs baseline', 'overhead'], rows),
      ].join('\n'),
    });

    // The wrapper alone, without a network: what the balanced fetch adds to each call.
    const ready: FetchFunction = async () => new Response(null, { status: 204 });
    const wrapped = createBalancedFetch(pool(urls), { fetch: ready });
    const direct: Call = () => ready(`${one}/x`, {});
    const through: Call = () => wrapped('/x');
    for (let i = 0; i < 2; i++) {
      await rps(direct, WRAPPER_CALLS, 1);
      await rps(through, WRAPPER_CALLS, 1);
    }
    const d: number[] = [];
    const w: number[] = [];
    for (let round = 0; round < 7; round++) {
      d.push(1e6 / (await rps(direct, WRAPPER_CALLS, 1)));
      w.push(1e6 / (await rps(through, WRAPPER_CALLS, 1)));
    }
    const dm = median(d);
    const wm = median(w);
    sections.push({
      title: 'HTTP: wrapper cost per call',
      body: [
        `A fetch implementation returning a ready 204 \`Response\` (no network), ${WRAPPER_CALLS} ` +
          'sequential calls, median of 7 runs: pick, URL resolution, lease, retry loop and release.',
        '',
        table(
          ['path', 'µs per call', 'added µs'],
          [
            ['fake fetch called directly', fmt(dm, 2), 'baseline'],
            ['through createBalancedFetch', fmt(wm, 2), fmt(wm - dm, 2)],
          ],
        ),
      ].join('\n'),
    });
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await agent.close();
    await balancedUndici.close();
    await Promise.all(servers.map((s) => s.close()));
  }
  return sections;
}
