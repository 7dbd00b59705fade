/**
 * Rows of the property-based bad-input suite for `loadwise/node` and `loadwise/redis`: Layer 4
 * connections and TCP probes against a real loopback server, DNS discovery through a stub
 * resolver (no query leaves the machine), diagnostics channels, and the Redis session store
 * against a real redis-server. The unknown-key checks of these rows run in the unit suite (they
 * are refused before any socket is opened); the property runs need {@link NODE_SERVICES} and run
 * in test/integration/reliability-options.test.ts.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { expect } from 'vitest';
import {
  AllAttemptsFailedError,
  attachDiscovery,
  type BackendPool,
  createBalancedFetch,
  LocalFailureError,
  NoBackendAvailableError,
  TimeoutError,
} from '../../src/index.js';
import {
  type BalancedSocket,
  connect,
  DIAGNOSTICS_CHANNELS,
  DnsDiscovery,
  type DnsResolverLike,
  DnsSrvDiscovery,
  enableDiagnostics,
  tcpProbe,
} from '../../src/node/index.js';
import { type RedisClientLike, RedisSessionStore } from '../../src/redis/index.js';
import { count, durationMs, name } from './bad-values.js';
import {
  attemptAsync,
  clockOption,
  type Env,
  live,
  pending,
  type Target,
} from './option-harness.js';

/** Lets a test pass a value the types forbid, as plain JavaScript callers can. */
const any = <T>(value: unknown): T => value as T;

/** The real services the property runs of these rows use (set by the integration suite). */
export const NODE_SERVICES: {
  /** A TCP server on 127.0.0.1 that accepts connections and holds them. */
  tcpPort: number;
  /** `redis://127.0.0.1:<port>` of a real redis-server. */
  redisUrl: string;
  /** An ioredis client connected to it. */
  redisClient: RedisClientLike | undefined;
} = { tcpPort: 0, redisUrl: 'redis://127.0.0.1:1', redisClient: undefined };

let storeKeys = 0;

/** A pool whose one backend is the loopback server (on the run's ManualClock). */
function loopbackPool(env: Env): BackendPool {
  return env.pool({ backends: [`tcp://127.0.0.1:${NODE_SERVICES.tcpPort}`] });
}

/** Real time: what a socket needs to connect on the loopback interface. */
function realTime(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A resolver that answers from a table: what a registry's DNS would say, without a socket. */
function stubResolver(): DnsResolverLike {
  return {
    resolve4: async (host) =>
      host === 'api.internal'
        ? [
            { address: '10.8.0.1', ttl: 30 },
            { address: '10.8.0.2', ttl: 0 },
          ]
        : [{ address: '10.8.1.1', ttl: 5 }],
    resolve6: async () => [{ address: '2001:db8::8', ttl: 60 }],
    resolveSrv: async () => [
      { name: 'a.api.internal', port: 8080, priority: 10, weight: 5 },
      { name: '10.8.2.2', port: 8081, priority: 20, weight: 0 },
      { name: '.', port: 0, priority: 0, weight: 0 },
    ],
  };
}

/** Options shared by both DNS sources. */
const dnsCommon = {
  name,
  intervalMs: durationMs(1),
  minRefreshMs: durationMs(1),
  maxRefreshMs: durationMs(1),
  timeoutMs: durationMs(1),
  clock: clockOption,
  family: fc.constantFrom(0, 4, 6),
  scheme: fc.constantFrom('http', 'https', 'tcp', 'h2c'),
  basePath: fc.constantFrom('', '/v1', '/a/b'),
  zone: name,
  servers: fc.constantFrom(['127.0.0.1'], ['10.0.0.2:5353', '[::1]:53']),
  resolverOptions: fc.constantFrom({}, { timeout: 500 }, { tries: 1 }),
  resolver: live('a stub resolver', () => stubResolver()),
};

/** Options node:dns refuses with its own errors. */
const dnsBad = {
  resolverOptions: fc.constantFrom({ timeout: 'x' }, { tries: -1 }, { timeout: 2 ** 40 }),
  servers: fc.constantFrom(['not an address'], ['10.0.0.1:99999'], [42]),
};

/** Starts a DNS source under a pool, refreshes it, and closes both. */
async function exerciseDns(source: DnsDiscovery | DnsSrvDiscovery, env: Env): Promise<void> {
  const pool = env.pool({ backends: [] });
  const binding = attachDiscovery(pool, source);
  // Without a stub resolver the source would ask real DNS servers: only the stub ones start.
  if ((source as { usesStub?: boolean }).usesStub === true) {
    await env.clock.stepAsync(5);
    await env.otherClock.stepAsync(5);
    const refreshed = binding.refresh();
    await env.clock.stepAsync(5);
    await env.otherClock.stepAsync(5);
    await refreshed;
    for (const b of pool.backends()) expect(b.url).toMatch(/^[a-z0-9+.-]+:\/\//);
  }
  await binding.close();
  await source.close();
}

export const NODE: Target[] = [
  {
    name: 'connect(target, options)',
    covers: ['connect'],
    label: 'ConnectOptions',
    keys: {
      connectTimeoutMs: durationMs(1),
      maxAttempts: count(1),
      tls: fc.constantFrom(false, true, { rejectUnauthorized: false }),
      context: fc.constantFrom({}, { key: 'k' }),
      signal: fc.constantFrom(new AbortController().signal, AbortSignal.abort()),
      keepAliveMs: durationMs(),
    },
    useErrors: [AllAttemptsFailedError, TimeoutError, LocalFailureError, NoBackendAvailableError],
    build: async (o, env) => {
      const pool = loopbackPool(env);
      let settled = false;
      const promise = connect(pool, any(o));
      const call = pending(promise);
      promise.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      // Connecting takes real time, and each attempt's timeout runs on the pool's ManualClock. A
      // TLS handshake with the plain server never ends: for it both move until the call settles.
      // A plain connect always completes, and the clock stands still for it: stepped alongside,
      // a short connectTimeoutMs (11 ms: 11 steps, 55 ms) timed out a connect that a loaded
      // machine took longer than that to make.
      const tls = o['tls'];
      const handshakeHangs = tls === true || (typeof tls === 'object' && tls !== null);
      for (let i = 0; i < (handshakeHangs ? 50 : 400) && !settled; i++) {
        await realTime(5);
        if (handshakeHangs) env.clock.step(1);
      }
      try {
        return { pool, socket: await call() };
      } catch (error) {
        // The server accepts every connection: the only failure that may blame it is a TLS
        // handshake it cannot answer (a timeout). Anything else is the caller's and must not
        // be counted against the backend.
        if (error instanceof AllAttemptsFailedError) {
          expect(error.attempts.map((a) => a.outcome).filter((x) => x !== 'timeout')).toEqual([]);
          expect(o['tls'] === true || typeof o['tls'] === 'object').toBe(true);
        }
        throw error;
      }
    },
    // An aborted signal rejects with its reason, as fetch does.
    buildErrors: [AllAttemptsFailedError, TimeoutError, LocalFailureError, DOMException],
    bad: {
      tls: fc.constantFrom({ ca: 5 }, { minVersion: 'TLSv9' }, { servername: 42 }, { port: 'x' }),
    },
    runs: 150,
    exercise: async (made) => {
      const { pool, socket } = made as { pool: BackendPool; socket: BalancedSocket | undefined };
      if (socket !== undefined) {
        expect(pool.stats().inFlight).toBe(1);
        const closed = new Promise((resolve) => socket.once('close', resolve));
        socket.destroy();
        await closed;
      }
      expect(pool.stats().inFlight).toBe(0);
    },
  },
  {
    name: 'tcpProbe(options)',
    covers: ['tcpProbe'],
    label: 'TcpProbeOptions',
    keys: {
      port: fc.oneof(
        live('the loopback port', () => NODE_SERVICES.tcpPort),
        fc.constantFrom(1, 65_535),
      ),
      host: fc.constantFrom('127.0.0.1', '::1', 'localhost'),
    },
    build: (o) => tcpProbe(any(o)),
    exercise: async (probe, env, given) => {
      const host = given.options['host'];
      // A host name is looked up in DNS: only addresses are probed, so nothing leaves the machine.
      if (host !== undefined && (typeof host !== 'string' || isIP(host) === 0)) return;
      const controller = new AbortController();
      const result = pending(
        (probe as ReturnType<typeof tcpProbe>)(loopbackPool(env).backends()[0]!, controller.signal),
      );
      await realTime(15);
      controller.abort(new Error('probe timed out'));
      const r = await attemptAsync(result, []).catch((e: unknown) => e);
      if (!(r instanceof Error)) expect(typeof (r as { ok: unknown }).ok).toBe('boolean');
    },
  },
  {
    name: 'new DnsDiscovery(options)',
    covers: ['DnsDiscovery'],
    label: 'DnsDiscoveryOptions',
    keys: {
      ...dnsCommon,
      hostname: fc.constantFrom('api.internal', 'other.internal'),
      port: fc.constantFrom(1, 80, 8080, 65_535),
      weight: fc.constantFrom(0.5, 1, 2 ** 31),
    },
    required: ['hostname', 'port'],
    bad: dnsBad,
    runs: 200,
    build: (o) => {
      const source = new DnsDiscovery(any(o));
      Object.assign(source, { usesStub: o['resolver'] !== undefined });
      return source;
    },
    exercise: (source, env) => exerciseDns(source as DnsDiscovery, env),
  },
  {
    name: 'new DnsSrvDiscovery(options)',
    covers: ['DnsSrvDiscovery'],
    label: 'DnsSrvDiscoveryOptions',
    keys: {
      ...dnsCommon,
      service: fc.constantFrom('_http._tcp.api.internal', 'api.internal'),
      zeroWeight: fc.constantFrom(0.01, 1, 2 ** 31),
    },
    required: ['service'],
    bad: dnsBad,
    runs: 200,
    build: (o) => {
      const source = new DnsSrvDiscovery(any(o));
      Object.assign(source, { usesStub: o['resolver'] !== undefined });
      return source;
    },
    exercise: (source, env) => exerciseDns(source as DnsSrvDiscovery, env),
  },
  {
    name: 'enableDiagnostics(...sources)',
    covers: ['enableDiagnostics'],
    label: undefined,
    // Keys are the argument positions, as the messages name them ("argument 0").
    keys: {
      '0': live('a pool', (env) => env.pool()),
      '1': live('a balanced fetch', (env) =>
        createBalancedFetch(env.pool(), { fetch: env.transport }),
      ),
    },
    required: ['0'],
    build: (o) => {
      const sources = [o['0'], ...('1' in o ? [o['1']] : [])];
      return { handle: enableDiagnostics(...any<BackendPool[]>(sources)), sources };
    },
    exercise: async (made) => {
      const { handle, sources } = made as {
        handle: ReturnType<typeof enableDiagnostics>;
        sources: unknown[];
      };
      const seen: unknown[] = [];
      const listener = (message: unknown) => seen.push(message);
      subscribe(DIAGNOSTICS_CHANNELS.pick, listener);
      try {
        for (const s of sources) {
          if (typeof (s as BackendPool).acquire === 'function') {
            (s as BackendPool).acquire().release();
          }
        }
      } finally {
        unsubscribe(DIAGNOSTICS_CHANNELS.pick, listener);
        handle.close();
      }
    },
  },
  {
    name: 'new RedisSessionStore(options)',
    covers: ['RedisSessionStore'],
    label: 'RedisSessionStoreOptions',
    keys: {
      client: live('an ioredis client', () => NODE_SERVICES.redisClient),
      prefix: fc.oneof(name, fc.constant('')),
    },
    required: ['client'],
    build: (o) => new RedisSessionStore(any(o)),
    exercise: async (store) => {
      const s = store as RedisSessionStore;
      const key = `props-${++storeKeys}`;
      await s.set(key, { backend: '10.0.0.1:80', createdAt: 0 }, 5000);
      expect((await s.get(key))?.backend).toBe('10.0.0.1:80');
      expect(await s.delete(key)).toBe(true);
      await s.close();
    },
  },
  {
    name: 'RedisSessionStore.connect(options)',
    covers: [],
    label: 'RedisConnectOptions',
    keys: {
      url: live('the redis-server URL', () => NODE_SERVICES.redisUrl),
      prefix: name,
      connectTimeoutMs: fc.constantFrom(500, 2000, 2 ** 31),
      redis: fc.constantFrom({}, { db: 1 }, { maxRetriesPerRequest: 0 }),
    },
    required: ['url'],
    build: (o) => RedisSessionStore.connect(any(o)),
    exercise: async (store) => {
      const s = store as RedisSessionStore;
      await s.set('props-connect', { backend: 'b', createdAt: 0 }, 1000);
      await s.close();
    },
    runs: 25,
  },
];
