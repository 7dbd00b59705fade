/**
 * HTTP: the balanced fetch against the plain fetch on loopback, and against undici 7's
 * `BalancedPool`, with 16 and 1 calls in flight.
 *
 * Three HTTP servers are started on 127.0.0.1 inside this process (so client and servers share
 * the CPU, as they would not in production: the ratios are what matter) and closed at the end.
 * Every configuration runs once per round, in a rotating order; figures are medians over the
 * rounds. The overhead is judged on CPU time per call (client and servers together, from
 * `process.cpuUsage()`), the median of per-round ratios to the baseline: on a shared machine, wall
 * time swings with other processes' load, CPU time spent on the work itself much less.
 *
 * A second table times the wrapper alone: a fetch implementation that returns a ready `Response`
 * without any network, called directly and through the balanced fetch, and relates what the
 * wrapper adds to the CPU cost of a loopback call measured in the same run.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, BalancedPool, fetch as undiciFetch } from 'undici';
import { BackendPool, createBalancedFetch, type FetchFunction, RoundRobin } from '../src/index.js';
import { fmt, median, type Section, table } from './harness.js';

const ROUNDS = 9;
const CALLS: Record<number, number> = { 16: 200, 1: 60 };
const WRAPPER_CALLS = 10_000;
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

interface Sample {
  /** Requests per second of wall time. */
  rps: number;
  /** CPU time of this process (client and servers) per call, in µs. */
  cpuUs: number;
}

/** Runs `total` calls of `call` with `concurrency` in flight. */
async function measure(call: Call, total: number, concurrency: number): Promise<Sample> {
  let started = 0;
  const cpu0 = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpu0);
  return { rps: total / seconds, cpuUs: (cpu.user + cpu.system) / total };
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
  /** CPU µs per call of the plain global fetch, by calls in flight. */
  const loopbackBaseline = new Map<number, number>();
  try {
    const rows: (string | number)[][] = [];
    for (const concurrency of [16, 1]) {
      const total = CALLS[concurrency]!;
      // Warm up every path (connections, JIT) before measuring.
      for (const c of configs) await measure(c.call, Math.ceil(total / 3), concurrency);
      const samples = new Map<string, Sample[]>(configs.map((c) => [c.name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (let k = 0; k < configs.length; k++) {
          const c = configs[(k + round) % configs.length]!;
          samples.get(c.name)!.push(await measure(c.call, total, concurrency));
        }
      }
      loopbackBaseline.set(concurrency, median(samples.get(configs[0]!.name)!.map((x) => x.cpuUs)));
      for (const c of configs) {
        const xs = samples.get(c.name)!;
        const base = c.baseline === undefined ? undefined : samples.get(c.baseline)!;
        const ratio =
          base === undefined ? undefined : median(xs.map((x, i) => x.cpuUs / base[i]!.cpuUs));
        rows.push([
          concurrency,
          c.name,
          fmt(median(xs.map((x) => x.rps)), 0),
          fmt(median(xs.map((x) => x.cpuUs)), 0),
          ratio === undefined ? 'baseline' : fmt(ratio, 3),
          ratio === undefined ? '' : `${fmt((ratio - 1) * 100, 1)}%`,
        ]);
      }
    }
    sections.push({
      title: 'HTTP: balanced fetch on loopback',
      body: [
        `Three servers on 127.0.0.1 in the bench process, a ${BODY.length}-byte body, keep-alive; ` +
          `medians of ${ROUNDS} rounds of ${CALLS[16]} calls (16 in flight) or ${CALLS[1]} calls ` +
          '(1 in flight). "CPU µs/call" is the CPU time of the whole process (client and servers) ' +
          'per call; "CPU vs baseline" the median of per-round ratios to the baseline of the same ' +
          'fetch implementation, and "overhead" the extra CPU per call it means. Requests/s are ' +
          "wall-clock and swing with the machine's load. Default options (retries 2, retry " +
          'budget on, no timeouts), RoundRobin.',
        '',
        table(
          ['in flight', 'configuration', 'req/s', 'CPU µs/call', 'CPU vs baseline', 'overhead'],
          rows,
        ),
      ].join('\n'),
    });

    // The wrapper alone, without a network: what the balanced fetch adds to each call.
    const empty: FetchFunction = async () => new Response(null, { status: 204 });
    const small: FetchFunction = async () => new Response(BODY);
    const wrappedEmpty = createBalancedFetch(pool(urls), { fetch: empty });
    const wrappedSmall = createBalancedFetch(pool(urls), { fetch: small });
    const pairs: [string, Call, Call][] = [
      ['204, no body', () => empty(`${one}/x`, {}), () => wrappedEmpty('/x')],
      [
        `200, ${BODY.length}-byte body read with text()`,
        () => text(small(`${one}/x`, {})),
        () => text(wrappedSmall('/x')),
      ],
    ];
    const wrapperRows: (string | number)[][] = [];
    let addedWithBody = 0;
    for (const [name, direct, through] of pairs) {
      for (let i = 0; i < 2; i++) {
        await measure(direct, WRAPPER_CALLS, 1);
        await measure(through, WRAPPER_CALLS, 1);
      }
      const d: number[] = [];
      const w: number[] = [];
      for (let round = 0; round < 7; round++) {
        d.push((await measure(direct, WRAPPER_CALLS, 1)).cpuUs);
        w.push((await measure(through, WRAPPER_CALLS, 1)).cpuUs);
      }
      const added = median(w.map((x, i) => x - d[i]!));
      addedWithBody = added;
      wrapperRows.push([name, fmt(median(d), 2), fmt(median(w), 2), fmt(added, 2)]);
    }
    const loopbackCpu = loopbackBaseline.get(16) ?? Number.NaN;
    sections.push({
      title: 'HTTP: wrapper cost per call',
      body: [
        `A fetch implementation that returns a ready \`Response\` without any network, called ` +
          `directly and through \`createBalancedFetch\`: ${WRAPPER_CALLS} sequential calls, CPU ` +
          'time per call, median of 7 paired runs. This is what the balanced fetch adds to each ' +
          'call (pick, URL resolution, lease, retry loop, body tracking, release), free of the ' +
          'network noise above. Run from TypeScript through tsx, whose name-keeping helper adds ' +
          'a little to every closure; compiled output is somewhat cheaper.',
        '',
        table(['response', 'direct, CPU µs', 'balanced, CPU µs', 'added µs'], wrapperRows),
        '',
        `Against the CPU cost of one loopback call in the same run (plain fetch, 16 in flight: ` +
          `${fmt(loopbackCpu, 0)} µs), the ${fmt(addedWithBody, 2)} µs added per call with a ` +
          `body is ${fmt((addedWithBody / loopbackCpu) * 100, 2)}%.`,
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
