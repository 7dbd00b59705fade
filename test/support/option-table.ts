/**
 * The table of the property-based bad-input suite for the runtime-neutral entry points
 * (`loadwise`, `loadwise/testing`): one row per public constructor, function or method that
 * takes options, with every option key, its valid values, and how to exercise what the call
 * returns. The machinery is in option-harness.ts; the rows of `loadwise/node` and
 * `loadwise/redis`, which need sockets and a redis-server, are in option-table-node.ts.
 *
 * Adding an option to the library fails test/unit/reliability-options.test.ts until the option
 * is listed in its row: one line here.
 */
import * as otel from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { BalancedFetchOptions } from '../../src/fetch/types.js';
import * as core from '../../src/index.js';
import {
  AllAttemptsFailedError,
  BackendPool,
  ConsistentHash,
  ConsistentHashRing,
  createBalancedFetch,
  createCookieSigner,
  type DiscoveryBinding,
  getCookie,
  HealthChecker,
  httpProbe,
  InvalidRequestError,
  IpHash,
  jumpHash,
  LeastConnections,
  LoadBalancerConfigError,
  LocalFailureError,
  Maglev,
  MaglevTable,
  MemorySessionStore,
  md5,
  murmur3,
  NoBackendAvailableError,
  NoRouteError,
  OutlierDetector,
  PeakEwma,
  PollingDiscovery,
  PoolClosedError,
  PowerOfTwoChoices,
  parseCookieHeader,
  parseRetryAfter,
  RandomPick,
  RequestRefusedError,
  RetryBudget,
  RoundRobin,
  Router,
  SessionPersistenceManager,
  StaticDiscovery,
  serializeSetCookie,
  TimeoutError,
  UnknownBackendError,
  WeightedRoundRobin,
  xxhash64,
} from '../../src/index.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { Algorithm, BackendView, Lease } from '../../src/types.js';
import {
  badHeaders,
  callback,
  count,
  durationMs,
  fraction,
  name,
  randomSource,
  UserCallbackError,
} from './bad-values.js';
import {
  attempt,
  attemptAsync,
  clockOption,
  type Env,
  Live,
  live,
  pending,
  type Target,
} from './option-harness.js';

/** Lets a test pass a value the types forbid, as plain JavaScript callers can. */
const any = <T>(value: unknown): T => value as T;

// ---------------------------------------------------------------- shared values

const backendUrl = fc.constantFrom(
  'http://10.0.0.9:80',
  'https://api.internal',
  'http://[::1]:8080/v1/',
  'tcp://10.0.0.5:5432',
  'http://10.0.0.10:8080/base/path',
);
const weight = fc.oneof(
  fc.constantFrom(1, 2, 3, 0.5, 1e-300, 2 ** 31, 2 ** 53, Number.MAX_VALUE),
  fc.double({ min: 1e-6, max: 1000, noNaN: true }),
);
const backendSpec = fc.oneof(
  backendUrl,
  fc.record(
    {
      url: backendUrl,
      weight,
      id: name,
      zone: name,
      priority: fc.constantFrom(0, 1, 2, 2 ** 31),
      metadata: fc.constantFrom({}, { role: 'primary' }),
    },
    { requiredKeys: ['url'] },
  ),
);
const key = fc.oneof(fc.constantFrom('user-1', '', 'é€', 'a\r\nb', 'x'.repeat(500)), fc.string());
const statusList = fc.array(fc.integer({ min: 100, max: 599 }), { minLength: 1, maxLength: 4 });
const headerMap = fc.constantFrom({}, { 'x-a': '1' }, { authorization: 'Bearer t', 'x-b': '' });
const pickContext = fc.record(
  {
    key,
    clientAddress: fc.constantFrom('10.1.2.3', '::ffff:10.1.2.3', '2001:db8::1', ''),
    exclude: live('[first id]', (env) => [env.pool().backends()[0]!.id]),
    affinity: fc.constantFrom({ id: '10.0.0.1:8080' }, { id: 'gone', allowDraining: true }),
  },
  { requiredKeys: [] },
);

const NO_BACKEND = [NoBackendAvailableError];
/** A cookie secret of the strength the session manager asks for (many distinct bytes). */
const STRONG_SECRET = 'q7V2mX9pL4tR8wZ1nB6cH3jK5sD0fG-e';

/**
 * Probe headers with CR/LF or a space in the name are refused at construction by the fix of
 * issue 14 item 6, which is made on a branch of its own. Until it is in, this branch still
 * accepts them (each probe then fails): the probe rows try such headers only once httpProbe
 * refuses one, so they turn on by themselves when that fix arrives.
 */
const PROBE_HEADERS_CHECKED = (() => {
  try {
    httpProbe({ headers: { 'x-a': 'a\r\nb' }, fetch: async () => new Response('ok') });
    return false;
  } catch {
    return true;
  }
})();
const PROBE_BAD = PROBE_HEADERS_CHECKED ? { headers: badHeaders } : {};
/** A fresh pool of the run, inside a generated value. */
const POOL = new Live('env.pool()', (env) => env.pool());
const poolMarker = fc.constant(POOL);

// ---------------------------------------------------------------- exercising

/** Takes and releases a few leases, changes states, lets time pass, explains, closes. */
async function exercisePool(pool: BackendPool, env: Env, keyed = true): Promise<void> {
  const leases: Lease[] = [];
  for (let i = 0; i < 6; i++) {
    const lease = attempt(
      () => pool.acquire(keyed ? { key: `user-${i}`, clientAddress: `10.0.0.${i}` } : undefined),
      NO_BACKEND,
    );
    if (lease !== undefined) leases.push(lease);
  }
  expect(pool.stats().inFlight).toBe(leases.length);
  pool.explain({ key: 'user-1', clientAddress: '10.0.0.1' });
  leases.forEach((l, i) => {
    l.release(
      i % 2 === 0 ? { ok: true, latencyMs: i } : { ok: false, status: 503, failure: 'http' },
    );
  });
  const [first, second] = pool.backends();
  if (first !== undefined) pool.setHealthy(first.id, false);
  if (second !== undefined) pool.eject(second.id, 1000);
  pool.add({ url: 'http://10.9.9.9:80', weight: 2 });
  for (let i = 0; i < 4; i++) {
    attempt(
      () => pool.acquire({ key: `user-${i}`, clientAddress: '10.0.0.7' }),
      NO_BACKEND,
    )?.release();
  }
  env.clock.step(10);
  if (first !== undefined) pool.setHealthy(first.id, true);
  pool.stats();
  pool.explain();
  expect(pool.stats().inFlight).toBe(0);
  await pool.close();
}

/** A balanced fetch call through the stub transport. */
async function oneCall(fetch: (path: string, init?: RequestInit) => Promise<Response>, env: Env) {
  const call = pending(fetch('/users/42'));
  await env.clock.stepAsync(5);
  const res = await attemptAsync(call, [...NO_BACKEND, AllAttemptsFailedError, TimeoutError]);
  if (res !== undefined) await res.text();
}

// ---------------------------------------------------------------- the table

const ALGORITHM_FACTORIES: Record<string, () => Algorithm> = {
  RoundRobin: () => new RoundRobin(),
  WeightedRoundRobin: () => new WeightedRoundRobin(),
  LeastConnections: () => new LeastConnections(),
  PowerOfTwoChoices: () => new PowerOfTwoChoices(),
  PeakEwma: () => new PeakEwma(),
  RandomPick: () => new RandomPick(),
  ConsistentHash: () => new ConsistentHash(),
  IpHash: () => new IpHash(),
  Maglev: () => new Maglev(),
};

const ringOptions = {
  virtualNodes: fc.constantFrom(4, 40, 160, 1000),
  hash: fc.oneof(
    fc.constantFrom('md5', 'murmur3'),
    callback((s: string) => s.length),
  ),
  balanceFactor: fc.constantFrom(1.25, 1.0001, 2, 2 ** 31),
  ringKey: callback((b: BackendView) => b.id),
  missingKey: fc.constantFrom('random', 'throw'),
};

/** A row that builds an algorithm and exercises it inside a pool. */
function algorithmRow(
  name: string,
  label: string | undefined,
  keys: Target['keys'],
  make: (o: Record<string, unknown>) => Algorithm,
): Target<Algorithm> {
  return {
    name: `new ${name}(options)`,
    covers: [name],
    label,
    keys,
    build: (o) => make(o),
    exercise: async (algorithm, env) => exercisePool(env.pool({ algorithm }), env),
  };
}

export const CORE: Target[] = [
  // ------------------------------------------------------------ pool
  {
    name: 'new BackendPool(options)',
    covers: ['BackendPool'],
    label: 'BackendPoolOptions',
    keys: {
      backends: fc.array(backendSpec, { maxLength: 4 }),
      algorithm: fc
        .constantFrom(...Object.keys(ALGORITHM_FACTORIES))
        .map((n) => ALGORITHM_FACTORIES[n]!()),
      minHealthy: count(0),
      panicThreshold: fraction(),
      slowStartMs: durationMs(),
      slowStartMinWeight: fraction(1e-9, 1),
      slowStartAggression: fc.constantFrom(0.5, 1, 2, 2 ** 31),
      latencyDecayMs: durationMs(1),
      latencyDecayCalls: fc.constantFrom(1, 300, 2 ** 31, Number.POSITIVE_INFINITY),
      overprovisioningFactor: fc.constantFrom(1, 1.4, 2, 100),
      zoneAware: fc.constantFrom(
        false,
        { localZone: 'a' },
        { localZone: 'b', minClusterSize: 1, routingEnabled: 0.5, callerZones: { a: 2, b: 1 } },
      ),
      restore: live('the snapshot of an empty pool', () => new BackendPool().snapshot()),
      maxSnapshotAgeMs: durationMs(),
      drainGraceMs: durationMs(),
      skew: fc.oneof(fc.constant(false), fc.constant({}), fc.constant({ windowMs: 100 })),
      name,
      clock: clockOption,
      random: randomSource,
    },
    build: (o, env) => {
      const pool = new BackendPool(any(o));
      env.track(() => pool.close());
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
    useErrors: [LoadBalancerConfigError],
  },
  {
    name: 'new BackendPool({ skew })',
    covers: [],
    label: 'skew',
    keys: {
      factor: fc.constantFrom(1.5, 2, 2 ** 31),
      windowMs: durationMs(1),
      minRequests: count(1),
    },
    build: (o, env) => env.pool({ skew: any(o) }),
    exercise: async (pool, env) => {
      const p = pool as BackendPool;
      for (let i = 0; i < 50; i++) p.acquire().release();
      env.clock.step(5);
      await p.close();
    },
  },
  {
    name: 'pool.add(spec)',
    covers: [],
    label: 'backend',
    keys: {
      url: backendUrl,
      weight,
      id: name,
      zone: name,
      priority: fc.constantFrom(0, 1, 7),
      metadata: fc.constantFrom({}, { a: 1 }),
    },
    required: ['url'],
    build: (o, env) => {
      const pool = env.pool();
      pool.add(any(o));
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
  },
  {
    name: 'pool.acquire(ctx) and pool.explain(ctx)',
    covers: [],
    // Not checked for unknown keys: the pick context is read on every pick.
    label: undefined,
    keys: { ctx: pickContext },
    params: { algorithm: fc.constantFrom(...Object.keys(ALGORITHM_FACTORIES)) },
    build: (o, env, p) => {
      const pool = env.pool({ algorithm: ALGORITHM_FACTORIES[String(p['algorithm'])]!() });
      pool.explain(any(o['ctx']));
      const lease = attempt(() => pool.acquire(any(o['ctx'])), NO_BACKEND);
      lease?.release();
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
  },
  {
    name: 'lease.release(outcome)',
    covers: [],
    label: undefined,
    keys: {
      ok: fc.boolean(),
      latencyMs: fc.constantFrom(0, 1.5, 2 ** 31, 2 ** 53),
      status: fc.integer({ min: 100, max: 599 }),
      failure: fc.constantFrom('connect', 'timeout', 'reset', 'http', 'aborted', 'local', 'other'),
      retryAfterMs: fc.constantFrom(0, 1000, 2 ** 40),
      error: fc.constant(new Error('backend said no')),
    },
    required: ['ok'],
    build: (o, env) => {
      const pool = env.pool();
      new OutlierDetector(pool, { consecutiveFailures: 1 });
      const lease = pool.acquire();
      try {
        lease.release(any(o));
      } finally {
        lease.release();
      }
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
  },
  {
    name: 'pool.drain(id, options), pool.remove(id, options), pool.close(options)',
    covers: [],
    label: undefined,
    keys: {
      id: fc.constantFrom('10.0.0.1:8080', 'no-such-backend'),
      graceMs: durationMs(),
      drain: fc.boolean(),
    },
    required: ['id'],
    params: { method: fc.constantFrom('drain', 'remove', 'close') },
    buildErrors: [UnknownBackendError],
    build: async (o, env, p) => {
      const pool = env.pool();
      const lease = pool.acquire({ affinity: { id: '10.0.0.1:8080' } });
      const { id, ...options } = o;
      const method = p['method'];
      let done: Promise<unknown>;
      if (method === 'drain') done = pool.drain(any(id), any({ graceMs: options['graceMs'] }));
      else if (method === 'remove') done = pool.remove(any(id), any(options));
      else done = pool.close(any({ graceMs: options['graceMs'] }));
      env.clock.step(3);
      lease.release();
      await done;
      return pool;
    },
    exercise: async (pool) => (pool as BackendPool).close(),
  },
  {
    name: 'pool.eject(id, durationMs, reason, options)',
    covers: [],
    label: 'eject options',
    keys: { endsOnProbe: fc.boolean() },
    build: (o, env) => {
      const pool = env.pool();
      pool.eject('10.0.0.1:8080', 5000, 'test', any(o));
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
  },
  {
    name: 'pool.eject(id, durationMs), pool.setWeight(id, weight), pool.setHealthy(id, healthy)',
    covers: [],
    label: undefined,
    keys: {
      durationMs: durationMs(),
      weight,
      healthy: fc.boolean(),
      reason: fc.constantFrom('why', ''),
    },
    build: (o, env) => {
      const pool = env.pool();
      const id = '10.0.0.2:8080';
      if ('durationMs' in o) pool.eject(id, any(o['durationMs']), any(o['reason']));
      if ('weight' in o) pool.setWeight(id, any(o['weight']));
      if ('healthy' in o) pool.setHealthy(id, any(o['healthy']), any(o['reason']));
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
  },
  {
    name: 'pool.reportProbe(id, report)',
    covers: [],
    label: 'probe report',
    keys: {
      ok: fc.boolean(),
      source: name,
      healthyThreshold: count(1),
      unhealthyThreshold: count(1),
      reason: fc.constantFrom('probe said so', ''),
    },
    required: ['ok'],
    build: (o, env) => {
      const pool = env.pool();
      for (let i = 0; i < 3; i++) pool.reportProbe('10.0.0.1:8080', any(o));
      return pool;
    },
    exercise: (pool, env) => exercisePool(pool as BackendPool, env),
  },

  // ------------------------------------------------------------ algorithms
  algorithmRow(
    'RoundRobin',
    'RoundRobinOptions',
    { startIndex: count(0) },
    (o) => new RoundRobin(any(o)),
  ),
  algorithmRow(
    'PeakEwma',
    'PeakEwmaOptions',
    { choices: fc.constantFrom(2, 'all'), cost: fc.constantFrom('relative', 'finagle') },
    (o) => new PeakEwma(any(o)),
  ),
  algorithmRow(
    'ConsistentHash',
    'ConsistentHash options',
    { ...ringOptions, key: callback((ctx: { key?: string }) => ctx.key) },
    (o) => new ConsistentHash(any(o)),
  ),
  algorithmRow('IpHash', 'IpHash options', ringOptions, (o) => new IpHash(any(o))),
  algorithmRow(
    'Maglev',
    'Maglev options',
    {
      key: callback((ctx: { key?: string }) => ctx.key),
      tableSize: fc.constantFrom(2, 3, 251, 65_537),
      hostKey: callback((b: BackendView) => b.id),
      missingKey: fc.constantFrom('random', 'throw'),
    },
    (o) => new Maglev(any(o)),
  ),
  {
    // These take no options at all; what they must survive is the weights they pick by.
    name: 'algorithms without options, over any valid weights',
    covers: ['WeightedRoundRobin', 'LeastConnections', 'PowerOfTwoChoices', 'RandomPick'],
    label: undefined,
    refuses: false,
    keys: {},
    params: {
      algorithm: fc.constantFrom(...Object.keys(ALGORITHM_FACTORIES)),
      weights: fc.array(weight, { minLength: 1, maxLength: 5 }),
      slowStartMs: fc.constantFrom(0, 100),
    },
    build: (_o, env, p) =>
      env.pool({
        algorithm: ALGORITHM_FACTORIES[String(p['algorithm'])]!(),
        backends: any<number[]>(p['weights']).map((w, i) => ({
          url: `http://10.1.0.${i}:80`,
          weight: w,
        })),
        slowStartMs: any(p['slowStartMs']),
      }),
    exercise: async (pool, env) => {
      const p = pool as BackendPool;
      const picked = new Set<string>();
      for (let i = 0; i < 20; i++) {
        const lease = p.acquire({ key: `k${i}`, clientAddress: `10.2.0.${i}` });
        picked.add(lease.backend.id);
        expect(lease.backend.eligible).toBe(true);
        lease.release({ ok: true, latencyMs: i });
      }
      expect(picked.size).toBeGreaterThan(0);
      await exercisePool(p, env);
    },
  },

  // ------------------------------------------------------------ hashing
  {
    name: 'new ConsistentHashRing(backends, options)',
    covers: ['ConsistentHashRing'],
    label: 'ConsistentHashRing options',
    keys: { virtualNodes: fc.constantFrom(4, 160, 1000), hash: ringOptions.hash },
    build: (o) =>
      new ConsistentHashRing(['a', { id: 'b', weight: 2 }, { id: 'c', hashKey: 'cc' }], any(o)),
    exercise: (ring) => exerciseRing(ring as ConsistentHashRing),
  },
  {
    name: 'new ConsistentHashRing([backend])',
    covers: [],
    label: 'backends[0]',
    keys: { id: name, weight, hashKey: name },
    required: ['id'],
    build: (o) => new ConsistentHashRing([any(o), 'other'], { virtualNodes: 40 }),
    exercise: (ring) => exerciseRing(ring as ConsistentHashRing),
  },
  {
    name: 'ring.add(id, weight, hashKey), ring.get(key, accept), ring.getN(key, n), ring.locate(key)',
    covers: [],
    label: undefined,
    keys: {
      id: name,
      weight,
      hashKey: name,
      key,
      n: fc.constantFrom(0, 1, 3, 2 ** 31),
      accept: callback((id: string) => id !== 'a'),
    },
    build: (o) => {
      const ring = new ConsistentHashRing(['a', 'b'], { virtualNodes: 40 });
      if ('id' in o) ring.add(any(o['id']), any(o['weight']), any(o['hashKey']));
      if ('key' in o) {
        ring.get(any(o['key']), any(o['accept']));
        ring.getN(any(o['key']), any(o['n'] ?? 2), any(o['accept']));
        ring.locate(any(o['key']));
        ring.hash(any(o['key']));
      }
      return ring;
    },
    exercise: (ring) => exerciseRing(ring as ConsistentHashRing),
  },
  {
    name: 'new MaglevTable(backends, options)',
    covers: ['MaglevTable'],
    label: 'MaglevTable options',
    keys: { tableSize: fc.constantFrom(2, 3, 7, 251, 65_537) },
    build: (o) => new MaglevTable([{ id: 'a' }, { id: 'b', weight: 3 }, { id: 'c' }], any(o)),
    exercise: (table) => exerciseMaglev(table as MaglevTable),
  },
  {
    name: 'new MaglevTable([backend])',
    covers: [],
    label: 'backends[0]',
    keys: {
      id: name,
      weight,
      key: name,
      offset: fc.constantFrom(0, 1, 250),
      skip: fc.constantFrom(1, 2, 250),
    },
    required: ['id'],
    build: (o) => new MaglevTable([any(o), { id: 'other' }], { tableSize: 251 }),
    exercise: (table) => exerciseMaglev(table as MaglevTable),
  },
  {
    name: 'table.lookup(hash), table.lookupKey(key), table.indexAt(slot)',
    covers: [],
    label: undefined,
    keys: {
      hash: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      key,
      slot: fc.constantFrom(0, 1, 250),
    },
    build: (o) => {
      const table = new MaglevTable([{ id: 'a' }, { id: 'b' }], { tableSize: 251 });
      if ('hash' in o) table.lookup(any(o['hash']));
      if ('key' in o) table.lookupKey(any(o['key']));
      if ('slot' in o) table.indexAt(any(o['slot']));
      return table;
    },
    exercise: (table) => exerciseMaglev(table as MaglevTable),
  },
  {
    name: 'jumpHash(key, buckets), md5(input), murmur3(input, seed), xxhash64(input, seed)',
    covers: ['jumpHash', 'md5', 'murmur3', 'xxhash64'],
    label: undefined,
    keys: {
      key: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      buckets: fc.constantFrom(1, 2, 1000, 2 ** 31 - 1),
      input: fc.oneof(key, fc.uint8Array({ maxLength: 300 })),
      seed: fc.constantFrom(0, 1, 2 ** 32 - 1),
    },
    build: (o) => {
      if ('key' in o || 'buckets' in o) {
        const b = jumpHash(any(o['key'] ?? 1n), any(o['buckets'] ?? 7));
        expect(b).toBeGreaterThanOrEqual(0);
      }
      if ('input' in o || 'seed' in o) {
        const input = any<string>(o['input'] ?? 'x');
        expect(md5(input)).toHaveLength(16);
        expect(murmur3(input, any(o['seed'] ?? 0)) >>> 0).toBeGreaterThanOrEqual(0);
        expect(typeof xxhash64(input, any(o['seed'] ?? 0))).toBe('bigint');
      }
      return undefined;
    },
  },

  // ------------------------------------------------------------ health
  {
    name: 'new HealthChecker(pool, options)',
    covers: ['HealthChecker'],
    label: 'HealthCheckerOptions',
    keys: {
      type: fc.constantFrom('http', 'custom'),
      probe: callback(async () => true),
      role: fc.constantFrom('readiness', 'liveness'),
      name,
      intervalMs: durationMs(1),
      timeoutMs: durationMs(),
      fastIntervalMs: durationMs(1),
      unhealthyIntervalMs: durationMs(1),
      healthyThreshold: count(1),
      unhealthyThreshold: count(1),
      jitter: fraction(0, 0.5),
      initialState: fc.constantFrom('healthy', 'unknown'),
      clock: clockOption,
      random: randomSource,
      path: fc.constantFrom('/health', 'health', '/ready?full=1'),
      method: fc.constantFrom('GET', 'HEAD'),
      expectedStatuses: statusList,
      headers: headerMap,
      fetch: live('env.transport', (env) => env.transport),
      maxBodyBytes: count(0),
    },
    bad: PROBE_BAD,
    build: (o, env) => new HealthChecker(env.pool(), any(o)),
    exercise: async (checker, env) => {
      const c = checker as HealthChecker;
      c.start();
      await env.clock.stepAsync(20);
      await env.otherClock.stepAsync(20);
      c.status();
      await attemptAsync(() => c.checkNow(), []);
      c.stop();
      await c.close();
    },
  },
  {
    name: 'httpProbe(options)',
    covers: ['httpProbe'],
    label: 'HttpProbeOptions',
    keys: {
      path: fc.constantFrom('/health', 'health', '/ready?full=1', '/a/../b'),
      method: fc.constantFrom('GET', 'HEAD'),
      expectedStatuses: statusList,
      headers: headerMap,
      fetch: live('env.transport', (env) => env.transport),
      maxBodyBytes: count(0),
    },
    bad: PROBE_BAD,
    build: (o, env) => {
      const options = { fetch: env.transport, ...o };
      return httpProbe(any(options));
    },
    exercise: async (probe, env) => {
      const pool = env.pool();
      const result = await (probe as ReturnType<typeof httpProbe>)(
        pool.backends()[2]!,
        new AbortController().signal,
      );
      expect(typeof (result as { ok: unknown }).ok).toBe('boolean');
    },
  },
  {
    name: 'new OutlierDetector(pool, options)',
    covers: ['OutlierDetector'],
    label: 'OutlierDetectorOptions',
    keys: {
      consecutiveFailures: fc.oneof(fc.constant(false), count(1)),
      intervalMs: durationMs(1),
      baseEjectionMs: durationMs(1),
      maxEjectionMs: durationMs(1),
      ejectionJitterMs: durationMs(),
      maxEjectionPercent: fraction(0, 100),
      successRate: fc.constantFrom(false, {}, { minimumHosts: 1, requestVolume: 1 }),
      failurePercentage: fc.constantFrom(false, {}, { threshold: 0, minimumHosts: 1 }),
      retryAfter: fc.constantFrom(false, {}, { maxMs: 2 ** 40, statuses: [503] }),
      isFailure: callback((o: { ok: boolean }) => !o.ok),
      clock: clockOption,
      random: randomSource,
    },
    build: (o, env) => watch(env, o),
    exercise: (watched, env) => exerciseDetector(watched as Watched, env),
  },
  ...(
    [
      [
        'successRate',
        { minimumHosts: count(1), requestVolume: count(1), stdevFactor: fraction(0, 10) },
      ],
      [
        'failurePercentage',
        { threshold: fraction(0, 100), minimumHosts: count(1), requestVolume: count(1) },
      ],
      ['retryAfter', { maxMs: durationMs(1), statuses: statusList }],
    ] as const
  ).map(
    ([option, keys]): Target => ({
      name: `new OutlierDetector(pool, { ${option} })`,
      covers: [],
      label: option,
      keys,
      build: (o, env) => watch(env, { [option]: o }),
      exercise: (watched, env) => exerciseDetector(watched as Watched, env),
    }),
  ),
  {
    name: 'parseRetryAfter(value, now)',
    covers: ['parseRetryAfter'],
    label: undefined,
    // A header parser: anything that is not a valid Retry-After gives undefined.
    refuses: false,
    keys: {
      value: fc.constantFrom('120', '0', 'Wed, 21 Oct 2015 07:28:00 GMT', '99999999999999999999'),
      now: fc.constantFrom(0, Date.UTC(2015, 9, 21), 2 ** 53),
    },
    build: (o) => {
      const ms = parseRetryAfter(any(o['value']), any(o['now']));
      expect(ms === undefined || (typeof ms === 'number' && ms >= 0)).toBe(true);
      return undefined;
    },
  },

  // ------------------------------------------------------------ fetch
  {
    name: 'createBalancedFetch(target, options)',
    covers: ['createBalancedFetch'],
    label: 'BalancedFetchOptions',
    keys: {
      fetch: live('env.transport', (env) => env.transport),
      retries: fc.constantFrom(0, 1, 2, 100),
      retryOn: statusList,
      retryMethods: fc.constantFrom(['GET'], ['get', 'POST'], []),
      idempotencyKeyHeader: fc.constantFrom(false, 'idempotency-key', 'x-request-id'),
      backoffBaseMs: durationMs(),
      backoffMaxMs: durationMs(),
      retryBudget: fc.constantFrom(false, {}, { percentCanRetry: 0 }),
      timeoutMs: fc.oneof(fc.constant(false), durationMs(1)),
      deadlineMs: fc.oneof(fc.constant(false), durationMs(1)),
      unreadBodyTimeoutMs: durationMs(),
      bufferBody: fc.constantFrom(true, false, 'auto'),
      maxBufferBytes: count(0),
      serviceOrigins: fc.constantFrom([], ['http://users.internal'], ['https://api.example:8443']),
      ambiguousPaths: fc.constantFrom('refuse', 'allow', 'auto'),
      hedge: fc.constantFrom(
        false,
        true,
        { afterMs: 5 },
        { maxExtraLoad: 0.5, minHedgesPerSec: 0, minAfterMs: 2, windowMs: 1000, minSamples: 1 },
      ),
      key: callback((r: Request) => r.headers.get('x-user') ?? undefined),
      context: callback(() => ({ key: 'k' })),
      afterResponse: callback(() => undefined),
      clock: clockOption,
      random: randomSource,
    },
    build: (o, env) =>
      createBalancedFetch(env.pool(), any<BalancedFetchOptions>({ fetch: env.transport, ...o })),
    exercise: (fetch, env) => oneCall(fetch as ReturnType<typeof createBalancedFetch>, env),
  },
  {
    name: 'createBalancedFetch(target, { retryBudget })',
    covers: [],
    label: 'retryBudget',
    keys: {
      ttlMs: fc.constantFrom(1000, 10_000, 60_000),
      minRetriesPerSec: fc.constantFrom(0, 1, 2 ** 31),
      percentCanRetry: fraction(0, 1000),
      clock: clockOption,
    },
    build: (o, env) =>
      createBalancedFetch(env.pool(), { fetch: env.transport, retryBudget: any(o) }),
    exercise: (fetch, env) => oneCall(fetch as ReturnType<typeof createBalancedFetch>, env),
  },
  {
    name: 'balancedFetch(input, init)',
    covers: [],
    // A RequestInit is the platform's; unknown keys are the platform's business.
    label: undefined,
    keys: {
      input: fc.constantFrom(
        '/users/42',
        'http://10.0.0.1:8080/x',
        '/a/..%2f..%2fb',
        'http://evil.example/x',
        '',
        '?q=1',
      ),
      method: fc.constantFrom('GET', 'POST', 'put', 'PATCH', 'DELETE'),
      headers: fc.constantFrom({}, { 'x-user': 'u1' }, [['x-a', 'b']], new Headers({ a: 'b' })),
      body: fc.constantFrom(null, 'text', new Uint8Array(3)),
      signal: fc.constant(new AbortController().signal),
      redirect: fc.constantFrom('follow', 'manual'),
    },
    bad: { headers: badHeaders },
    // Cheap runs, and six keys of many shapes: more runs to reach the rarer ones.
    runs: 150,
    build: async (o, env) => {
      const fetch = createBalancedFetch(env.pool(), { fetch: env.transport });
      const { input, ...init } = o;
      // A GET or HEAD with a body is a TypeError in the Request constructor itself; fetch would
      // throw it too, so the generator does not make that pair.
      const res = pending(fetch(any(input ?? '/'), any(init)));
      await env.clock.stepAsync(5);
      const r = await res();
      await r.text();
      return undefined;
    },
    // LocalFailureError: the platform's Request refused the init (a `redirect: null`, say);
    // reported as the caller's failure, the backend not blamed.
    buildErrors: [
      RequestRefusedError,
      InvalidRequestError,
      NoBackendAvailableError,
      LocalFailureError,
    ],
  },
  {
    name: 'new RetryBudget(options)',
    covers: ['RetryBudget'],
    label: 'RetryBudgetOptions',
    keys: {
      ttlMs: fc.constantFrom(1000, 10_000, 60_000),
      minRetriesPerSec: fc.constantFrom(0, 1, 2 ** 31),
      percentCanRetry: fraction(0, 1000),
      clock: clockOption,
    },
    build: (o) => new RetryBudget(any(o)),
    exercise: (budget, env) => {
      const b = budget as RetryBudget;
      for (let i = 0; i < 20; i++) {
        b.deposit();
        b.tryWithdraw();
        env.clock.advance(250);
        env.otherClock.advance(250);
      }
      // A whole number of retries, or Infinity when the floor is unbounded.
      const balance = b.balance();
      expect(balance === Number.POSITIVE_INFINITY || Number.isInteger(balance), `${balance}`).toBe(
        true,
      );
      expect(balance).toBeGreaterThanOrEqual(0);
    },
  },

  // ------------------------------------------------------------ routing
  {
    name: 'new Router(options)',
    covers: ['Router'],
    label: 'RouterOptions',
    keys: {
      routes: fc.constantFrom('api', 'two').map((kind) =>
        kind === 'api'
          ? [{ name: 'api', match: { pathPrefix: '/api' }, pool: POOL }]
          : [
              { name: 'a', match: { path: '/a/:id' }, pool: POOL },
              { name: 'b', match: { methods: ['POST'] }, pool: POOL },
            ],
      ),
      default: fc.constantFrom({ pool: POOL }, { pool: POOL, retries: 0 }),
    },
    build: (o, _env) => new Router(any(o)),
    exercise: (router, env) => routedCall(router as Router, env),
  },
  {
    name: 'new Router({ routes: [route] })',
    covers: [],
    label: 'routes[0]',
    keys: {
      name,
      match: fc.constantFrom(undefined, { pathPrefix: '/api' }, { host: 'api.example' }),
      pool: poolMarker,
      rewrite: fc.constantFrom({}, { stripPrefix: '/api' }, { addPrefix: '/v2' }),
      headers: fc.constantFrom({}, { set: { 'x-a': '1' } }, { remove: ['cookie'] }),
      timeoutMs: durationMs(1),
      retries: fc.constantFrom(0, 1, 2 ** 31),
    },
    required: ['name', 'pool'],
    bad: { headers: badHeaders.map((h) => ({ set: h })) },
    build: (o) => new Router({ routes: [any(o)] }),
    exercise: (router, env) => routedCall(router as Router, env),
    useErrors: [NoRouteError],
  },
  {
    name: 'new Router({ routes: [{ match }] })',
    covers: [],
    label: 'route "r" (routes[0]).match',
    keys: {
      pathPrefix: fc.constantFrom('/', '/api', '/api/'),
      path: fc.constantFrom('/a/:id', '/files/*', '/exact'),
      methods: fc.constantFrom(['GET'], ['get', 'POST']),
      host: fc.constantFrom('api.example', '*.example', 'API.EXAMPLE:8080'),
      headers: fc.constantFrom({}, { 'x-env': 'prod' }, { 'x-env': { present: true } }),
    },
    bad: { headers: badHeaders },
    build: (o, env) => new Router({ routes: [{ name: 'r', match: any(o), pool: env.pool() }] }),
    exercise: (router, env) => routedCall(router as Router, env),
    useErrors: [NoRouteError],
  },
  {
    name: 'new Router({ routes: [{ rewrite, headers }] })',
    covers: [],
    label: undefined,
    keys: {
      stripPrefix: fc.constantFrom('/api', '/'),
      addPrefix: fc.constantFrom('/v2', '/'),
      remove: fc.constantFrom([], ['cookie']),
      set: fc.constantFrom({}, { 'x-a': '1' }, { 'x-b': '' }),
      add: fc.constantFrom({}, { 'x-c': 'v' }),
    },
    bad: { set: badHeaders, add: badHeaders },
    build: (o, env) =>
      new Router({
        routes: [
          {
            name: 'r',
            pool: env.pool(),
            rewrite: any({ stripPrefix: o['stripPrefix'], addPrefix: o['addPrefix'] }),
            headers: any({ remove: o['remove'], set: o['set'], add: o['add'] }),
          },
        ],
      }),
    exercise: (router, env) => routedCall(router as Router, env),
  },

  // ------------------------------------------------------------ cookies and sessions
  {
    name: 'getCookie(header, name), parseCookieHeader(header)',
    covers: ['getCookie', 'parseCookieHeader'],
    label: undefined,
    keys: {
      header: fc.oneof(fc.constantFrom('a=1; b="2"', '', ';;=;', 'SERVERID=x'), fc.string()),
      name: fc.constantFrom('a', 'SERVERID', 'b'),
    },
    build: (o) => {
      if ('header' in o) parseCookieHeader(any(o['header']));
      getCookie(any(o['header']), any(o['name'] ?? 'a'));
      return undefined;
    },
  },
  {
    name: 'serializeSetCookie(name, value, attributes)',
    covers: ['serializeSetCookie'],
    label: 'attributes',
    keys: {
      path: fc.constantFrom('/', '/app'),
      domain: fc.constantFrom('example.com', '.example.com'),
      maxAgeSec: fc.constantFrom(0, -1, 3600, 2 ** 31, 2 ** 53 - 1),
      httpOnly: fc.boolean(),
      secure: fc.constant(true),
      sameSite: fc.constantFrom('Strict', 'Lax', 'None'),
    },
    build: (o) => {
      const header = serializeSetCookie('SERVERID', 'abc', any(o));
      expect(header).not.toMatch(/[\r\n\0]/);
      return undefined;
    },
  },
  {
    name: 'serializeSetCookie(name, value)',
    covers: [],
    label: undefined,
    keys: { name: fc.constantFrom('SERVERID', 'a'), value: fc.constantFrom('abc', '', 'x.y-z') },
    build: (o) => serializeSetCookie(any(o['name'] ?? 'n'), any(o['value'] ?? 'v')),
  },
  {
    name: 'createCookieSigner(secret), signer.sign(value), signer.verify(signed)',
    covers: ['createCookieSigner'],
    label: undefined,
    keys: {
      secret: fc.constantFrom(
        STRONG_SECRET,
        [STRONG_SECRET, `${STRONG_SECRET}-previous`],
        new Uint8Array(32).map((_, i) => (i * 97 + 13) % 251),
      ),
      value: fc.constantFrom('abc', '', 'é€'),
      signed: fc.constantFrom('abc.xyz', '', '.', 'a'.repeat(1000)),
    },
    required: ['secret'],
    build: async (o) => {
      const signer = createCookieSigner(any(o['secret']));
      const signed = await signer.sign(any(o['value'] ?? 'v'));
      expect(await signer.verify(signed)).toBe(o['value'] ?? 'v');
      await signer.verify(any(o['signed'] ?? 'x.y'));
      return undefined;
    },
  },
  {
    name: 'new MemorySessionStore(options)',
    covers: ['MemorySessionStore'],
    label: 'MemorySessionStoreOptions',
    keys: { maxEntries: count(1, 1000), cleanupIntervalMs: durationMs(), clock: clockOption },
    build: (o, env) => {
      const store = new MemorySessionStore(any(o));
      env.track(() => store.close());
      return store;
    },
    exercise: (store, env) => {
      const s = store as MemorySessionStore;
      for (let i = 0; i < 5; i++)
        s.set(`k${i}`, { backend: `b${i % 2}`, createdAt: 0 }, 1000 * (i + 1));
      expect(s.get('k4')?.backend).toBe('b0');
      env.clock.step(5);
      env.otherClock.step(5);
      s.purgeBackend('b1');
      s.delete('k0');
      s.prune();
      s.close();
    },
  },
  {
    name: 'store.set(key, record, ttlMs), store.get(key), store.delete(key), store.purgeBackend(id)',
    covers: [],
    label: undefined,
    keys: {
      key,
      record: fc.constantFrom({ backend: 'a', createdAt: 0 }, { backend: '', createdAt: -1 }),
      ttlMs: durationMs(1),
      backend: fc.constantFrom('a', ''),
    },
    build: (o, env) => {
      const store = new MemorySessionStore({
        clock: env.clock,
        cleanupIntervalMs: 0,
        maxEntries: 100,
      });
      env.track(() => store.close());
      if ('key' in o || 'record' in o || 'ttlMs' in o) {
        store.set(
          any(o['key'] ?? 'k'),
          any(o['record'] ?? { backend: 'a', createdAt: 0 }),
          any(o['ttlMs'] ?? 1000),
        );
        store.get(any(o['key'] ?? 'k'));
        store.delete(any(o['key'] ?? 'k'));
      }
      if ('backend' in o) store.purgeBackend(any(o['backend']));
      return store;
    },
  },
  {
    name: 'new SessionPersistenceManager(pool, options)',
    covers: ['SessionPersistenceManager'],
    label: 'SessionPersistenceOptions',
    keys: {
      store: live('a MemorySessionStore', (env) => {
        const store = new MemorySessionStore({
          clock: env.clock,
          cleanupIntervalMs: 0,
          maxEntries: 100,
        });
        env.track(() => store.close());
        return store;
      }),
      maxEntries: count(1, 1000),
      cleanupIntervalMs: durationMs(),
      ttlMs: durationMs(1),
      maxLifeMs: durationMs(1),
      storeTimeoutMs: durationMs(1),
      storeRetryMs: durationMs(),
      cookie: fc.constantFrom(false, true, {}, { name: 'LB', secure: true, sameSite: 'None' }),
      secret: fc.constantFrom(STRONG_SECRET),
      clockSkewMs: durationMs(),
      clock: clockOption,
    },
    build: (o, env) => {
      const manager = new SessionPersistenceManager(env.pool(), any(o));
      env.track(() => manager.close());
      return manager;
    },
    exercise: (manager, env) => exerciseSessions(manager as SessionPersistenceManager, env),
  },
  {
    name: 'new SessionPersistenceManager(pool, { cookie })',
    covers: [],
    label: 'cookie',
    keys: {
      name: fc.constantFrom('SERVERID', 'lb'),
      path: fc.constantFrom('/', '/app'),
      domain: fc.constantFrom('example.com'),
      maxAgeSec: fc.constantFrom(0, 3600, 2 ** 31),
      httpOnly: fc.boolean(),
      secure: fc.constant(true),
      sameSite: fc.constantFrom('Strict', 'Lax', 'None'),
    },
    build: (o, env) => {
      const manager = new SessionPersistenceManager(env.pool(), {
        cookie: any(o),
        maxEntries: 100,
      });
      env.track(() => manager.close());
      return manager;
    },
    exercise: (manager, env) => exerciseSessions(manager as SessionPersistenceManager, env),
  },
  {
    name: 'sessions.acquire(input)',
    covers: [],
    label: 'acquire input',
    keys: {
      key,
      cookie: fc.constantFrom(null, '', 'SERVERID=abc', `SERVERID=${'x'.repeat(1000)}`),
      ctx: fc.constantFrom({}, { key: 'k' }, { exclude: ['10.0.0.1:8080'] }),
    },
    build: async (o, env) => {
      const manager = new SessionPersistenceManager(env.pool(), { cookie: true, maxEntries: 100 });
      env.track(() => manager.close());
      const got = await manager.acquire(any(o));
      got.lease.release();
      return manager;
    },
    exercise: (manager, env) => exerciseSessions(manager as SessionPersistenceManager, env),
  },
  {
    name: 'sessions.forFetch(options)',
    covers: [],
    label: 'forFetch options',
    keys: { key: callback((r: Request) => r.headers.get('x-user') ?? 'anon') },
    required: ['key'],
    build: (o, env) => {
      const pool = env.pool();
      const manager = new SessionPersistenceManager(pool, { maxEntries: 100 });
      env.track(() => manager.close());
      return createBalancedFetch(pool, { fetch: env.transport, ...manager.forFetch(any(o)) });
    },
    exercise: (fetch, env) => oneCall(fetch as ReturnType<typeof createBalancedFetch>, env),
  },

  // ------------------------------------------------------------ discovery
  {
    name: 'new StaticDiscovery(endpoints, options)',
    covers: ['StaticDiscovery'],
    label: 'StaticDiscoveryOptions',
    keys: { name },
    build: (o) => new StaticDiscovery(['http://10.3.0.1:80'], any(o)),
    exercise: (source, env) => exerciseDiscovery(source as StaticDiscovery, env),
  },
  {
    name: 'new StaticDiscovery(endpoints), source.set(endpoints)',
    covers: [],
    label: undefined,
    keys: { endpoints: fc.array(backendSpec, { maxLength: 4 }) },
    build: (o) => {
      const source = new StaticDiscovery(any(o['endpoints'] ?? []));
      source.set(any(o['endpoints'] ?? []));
      return source;
    },
    exercise: (source, env) => exerciseDiscovery(source as StaticDiscovery, env),
  },
  {
    name: 'new PollingDiscovery(options)',
    covers: ['PollingDiscovery'],
    label: 'PollingDiscoveryOptions',
    keys: {
      poll: fc.constantFrom<unknown>(
        () => ['http://10.4.0.1:80', 'http://10.4.0.2:80'],
        async () => ({ endpoints: ['http://10.4.0.1:80'], ttlMs: 2 ** 40 }),
        () => ({ endpoints: ['http://10.4.0.3:80'], ttlMs: Number.NaN }),
        () => ({ endpoints: 'http://10.4.0.4:80' }),
        () => [42, 'not a url', { url: 'http://10.4.0.5:80', weight: -1 }],
        () => new Promise(() => undefined),
        () => {
          throw new UserCallbackError();
        },
      ),
      name,
      intervalMs: durationMs(1),
      minRefreshMs: durationMs(1),
      maxRefreshMs: durationMs(1),
      timeoutMs: durationMs(1),
      clock: clockOption,
    },
    // The clock is always given: the default (systemClock) would make a never-answering poll
    // wait its 10 s timeout in real time.
    required: ['poll', 'clock'],
    build: (o) => new PollingDiscovery(any(o)),
    exercise: (source, env) => exerciseDiscovery(source as PollingDiscovery, env),
  },
  {
    name: 'attachDiscovery(pool, source, options)',
    covers: ['attachDiscovery', 'DiscoveryBinding'],
    label: 'DiscoveryBindingOptions',
    keys: {
      maxRemovalShare: fraction(),
      drainGraceMs: durationMs(),
      awaitHealthCheck: fc.boolean(),
      manageExisting: fc.boolean(),
      closeSource: fc.boolean(),
      addressPolicy: fc.constantFrom(
        {},
        { deny: ['metadata', 'loopback'] },
        { allow: ['10.0.0.0/8'], allowHostnames: true },
      ),
    },
    build: (o, env) => {
      const source = new StaticDiscovery(['http://10.5.0.1:80', 'http://10.5.0.2:80']);
      env.track(() => source.close());
      return core.attachDiscovery(env.pool(), source, any(o));
    },
    exercise: async (binding, env) => {
      const b = binding as DiscoveryBinding;
      (b.source as StaticDiscovery).set(['http://10.5.0.3:80']);
      const refreshed = b.refresh();
      await env.clock.stepAsync(10);
      await refreshed;
      await b.settled();
      await b.close();
    },
  },
  {
    name: 'binding.ready(options)',
    covers: [],
    label: 'ready options',
    keys: { timeoutMs: durationMs() },
    build: (o, env) => {
      const source = new StaticDiscovery([]);
      env.track(() => source.close());
      const binding = core.attachDiscovery(env.pool(), source);
      env.track(() => binding.close());
      const ready = binding.ready(any(o));
      return { binding, ready };
    },
    exercise: async (built, env) => {
      const { binding, ready } = built as { binding: DiscoveryBinding; ready: Promise<boolean> };
      (binding.source as StaticDiscovery).set(['http://10.5.0.1:80']);
      await env.clock.stepAsync(10);
      expect(await ready).toBe(true);
      await binding.close();
    },
  },
  {
    name: 'new (class extends BaseDiscovery)(name)',
    covers: ['BaseDiscovery'],
    label: undefined,
    keys: { name },
    required: ['name'],
    build: (o) => new (class extends core.BaseDiscovery {})(any(o['name'])),
    exercise: async (source) => {
      const s = source as core.BaseDiscovery;
      s.subscribe(() => undefined);
      s.start();
      await s.close();
    },
  },
];

/** A tiny scenario: a few hundred simulated calls, milliseconds to run. */
const SMALL_SCENARIO: core.Scenario = {
  name: 'small',
  backends: [
    { id: 'a', latency: 5 },
    { id: 'b', latency: { kind: 'normal', mean: 10, sd: 2 } },
  ],
  rate: 200,
  requests: 120,
};

/** A report of the small scenario, made once (the renderers take what simulate returns). */
let smallReport: Promise<core.SimulationReport> | undefined;
function report(): Promise<core.SimulationReport> {
  smallReport ??= core.simulate(SMALL_SCENARIO, {
    algorithms: core.simulationCandidates(['round-robin', 'least-connections']),
  });
  return smallReport;
}

/** Keeps a simulation small: skips runs that ask for more calls than a unit test should make. */
function smallWork(o: Record<string, unknown>): void {
  const rate = typeof o['rate'] === 'number' ? o['rate'] : 0;
  const duration = typeof o['durationMs'] === 'number' ? o['durationMs'] : 0;
  const requests = typeof o['requests'] === 'number' ? o['requests'] : Number.POSITIVE_INFINITY;
  fc.pre(Math.min(requests, (rate * duration) / 1000) <= 400);
}

const latencyModel = fc.constantFrom<unknown>(
  5,
  { kind: 'constant', ms: 3 },
  { kind: 'normal', mean: 10, sd: 2, min: 1 },
  { kind: 'lognormal', median: 10, sigma: 0.5, max: 100 },
  { kind: 'pareto', min: 2, alpha: 1.6, max: 500 },
  { kind: 'exponential', mean: 8, max: 200 },
);

/** A meter of a MeterProvider whose reader the exercise collects from. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}
const METER = new Live('a Meter of a MeterProvider', (env) => {
  const reader = new TestReader();
  const provider = new MeterProvider({ readers: [reader] });
  env.track(() => provider.shutdown());
  readers.set(env, reader);
  return provider.getMeter('props');
});
const readers = new WeakMap<Env, TestReader>();

const instrumentOptions = {
  api: fc.constant(otel),
  meter: fc.constant(METER),
  metrics: fc.boolean(),
  spans: fc.boolean(),
  histogram: fc.boolean(),
  durationBuckets: fc.constantFrom([1], [0.5, 1, 2], [-1, 0, 2 ** 40]),
  poolName: name,
};

/** Uses an instrumentation: calls through the pool and fetch, a collection, then close. */
async function exerciseTelemetry(
  telemetry: core.Instrumentation,
  env: Env,
  pool: BackendPool,
  fetch: ReturnType<typeof createBalancedFetch> | undefined,
): Promise<void> {
  await telemetry.ready;
  for (let i = 0; i < 5; i++)
    attempt(() => pool.acquire(), NO_BACKEND)?.release({ ok: i % 2 === 0 });
  if (typeof fetch === 'function') await oneCall(fetch, env);
  await readers.get(env)?.collect();
  telemetry.close();
  telemetry.close();
}

export const MORE: Target[] = [
  // ------------------------------------------------------------ testing
  {
    name: 'new ManualClock(start), clock.setTimeout(fn, ms), clock.advance(ms), clock.runAll(limit)',
    covers: ['ManualClock'],
    label: undefined,
    keys: {
      start: fc.constantFrom(0, -5, 1.5, 2 ** 50, Date.UTC(2026, 0, 1)),
      ms: fc.oneof(durationMs(), fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY)),
      fn: callback(() => undefined),
      advance: durationMs(),
      limit: fc.constantFrom(1, 10, 10_000),
    },
    build: (o) => {
      const clock = new ManualClock(any(o['start'] ?? 0));
      let fired = 0;
      const fn = typeof o['fn'] === 'function' ? o['fn'] : () => undefined;
      const handle = clock.setTimeout(
        any(() => {
          fired++;
          (fn as () => void)();
        }),
        any(o['ms'] ?? 10),
      );
      if ('fn' in o) clock.setTimeout(any(o['fn']), 1);
      clock.advance(any(o['advance'] ?? 0));
      clock.clearTimeout(handle);
      if ('limit' in o) clock.runAll(any(o['limit']));
      return { clock, fired };
    },
    exercise: async (made) => {
      const { clock } = made as { clock: ManualClock };
      await clock.advanceAsync(5);
      clock.runAll();
      expect(clock.pendingTimers() === 0 || clock.nextDue() === Number.POSITIVE_INFINITY).toBe(
        true,
      );
    },
  },
  {
    name: 'seededRandom(seed)',
    covers: ['seededRandom'],
    label: undefined,
    keys: { seed: fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1.5, 2 ** 53, -(2 ** 60))) },
    required: ['seed'],
    build: (o) => seededRandom(any(o['seed'])),
    exercise: (random) => {
      for (let i = 0; i < 100; i++) {
        const x = (random as () => number)();
        expect(x >= 0 && x < 1).toBe(true);
      }
    },
  },

  // ------------------------------------------------------------ observability
  {
    name: 'instrumentPool(pool, options)',
    covers: ['instrumentPool'],
    label: 'instrumentPool options',
    keys: instrumentOptions,
    build: (o, env) => {
      const pool = env.pool();
      return { telemetry: core.instrumentPool(pool, any(o)), pool };
    },
    exercise: (made, env) => {
      const { telemetry, pool } = made as { telemetry: core.Instrumentation; pool: BackendPool };
      return exerciseTelemetry(telemetry, env, pool, undefined);
    },
  },
  {
    name: 'instrumentFetch(fetch, options)',
    covers: ['instrumentFetch'],
    label: 'instrumentFetch options',
    keys: { ...instrumentOptions, pools: fc.constant([POOL]) },
    build: (o, env) => {
      const pool = env.pool();
      const fetch = createBalancedFetch(pool, { fetch: env.transport });
      return { telemetry: core.instrumentFetch(fetch, any(o)), pool, fetch };
    },
    exercise: (made, env) => {
      const { telemetry, pool, fetch } = made as {
        telemetry: core.Instrumentation;
        pool: BackendPool;
        fetch: ReturnType<typeof createBalancedFetch>;
      };
      return exerciseTelemetry(telemetry, env, pool, fetch);
    },
  },
  {
    name: 'instrument(targets)',
    covers: ['instrument'],
    label: 'instrument options',
    keys: {
      ...instrumentOptions,
      pool: fc.constant(POOL),
      fetch: live('a balanced fetch', (env) =>
        createBalancedFetch(env.pool(), { fetch: env.transport }),
      ),
    },
    required: ['pool'],
    build: (o, _env) => ({
      telemetry: core.instrument(any(o)),
      pool: o['pool'],
      fetch: o['fetch'],
    }),
    exercise: (made, env) => {
      const { telemetry, pool, fetch } = made as {
        telemetry: core.Instrumentation;
        pool: BackendPool;
        fetch: ReturnType<typeof createBalancedFetch> | undefined;
      };
      return exerciseTelemetry(telemetry, env, pool, fetch);
    },
  },

  // ------------------------------------------------------------ simulator
  {
    name: 'simulate(scenario, options)',
    covers: ['simulate'],
    label: 'simulate options',
    keys: {
      algorithms: fc
        .constantFrom(['round-robin'], ['least-connections', 'peak-ewma+outlier'])
        .map((names) => core.simulationCandidates(names)),
      seed: fc.constantFrom(1, 0, -7, 2 ** 31),
      timelineBucketMs: durationMs(1),
    },
    bad: { timelineBucketMs: fc.constantFrom(1e-9, Number.MIN_VALUE) },
    build: (o) => core.simulate(SMALL_SCENARIO, any(o)),
    exercise: (r) => {
      const result = r as core.SimulationReport;
      expect(result.results.length).toBeGreaterThan(0);
      expect(core.formatReport(result).length).toBeGreaterThan(0);
      core.reportCharts(result);
    },
    runs: 30,
  },
  {
    name: 'simulate({ ...scenario })',
    covers: [],
    label: 'scenario',
    keys: {
      name,
      description: fc.constantFrom('', 'a scenario'),
      backends: fc.constant(SMALL_SCENARIO.backends),
      rate: fc.constantFrom(1, 50, 200),
      clients: fc.constantFrom(1, 4),
      clientStalls: fc.constantFrom({ everyMs: 50, ms: 5 }, { everyMs: 500, ms: 20 }),
      arrivals: fc.constantFrom('poisson', 'uniform'),
      durationMs: fc.constantFrom(100, 1000),
      requests: fc.constantFrom(1, 50, 200),
      deadlineMs: durationMs(1),
      cancelAtDeadline: fc.boolean(),
      keys: fc.constantFrom({ count: 10 }, { count: 100, zipf: 1.1 }),
      healthCheck: fc.constantFrom({ intervalMs: 100 }, { intervalMs: 50, unhealthyThreshold: 2 }),
      pool: fc.constantFrom({}, { minHealthy: 0 }, { slowStartMs: 100 }),
      focus: fc.constantFrom('a', 'b'),
      seed: fc.constantFrom(1, 2 ** 31),
    },
    required: ['name', 'backends', 'rate', 'requests'],
    bad: {
      healthCheck: fc.constantFrom({ intervalMs: 1e-9 }, { intervalMs: 100, healthyThreshold: 0 }),
      pool: fc.constantFrom({ skew: { windowMs: 1e-9 } }, { minHealthy: -1 }, { clock: {} }),
    },
    build: (o) => {
      smallWork(o);
      // A closed loop (`clients`) has no arrival rate: the two are alternatives.
      const { rate: _rate, ...closed } = o;
      const scenario = o['clients'] === undefined ? o : closed;
      return core.simulate(any(scenario), {
        algorithms: core.simulationCandidates(['round-robin']),
      });
    },
    exercise: (r) => {
      core.formatReport(r as core.SimulationReport);
      core.reportCharts(r as core.SimulationReport);
    },
    runs: 40,
  },
  {
    name: 'simulate({ backends: [backend] })',
    covers: [],
    label: 'scenario.backends[0]',
    keys: {
      id: name,
      weight: weight,
      zone: name,
      latency: latencyModel,
      concurrency: fc.constantFrom(1, 4, Number.POSITIVE_INFINITY),
      slowdownPerInFlight: fc.constantFrom(0, 0.5, 10),
      errorRate: fraction(),
      errorLatency: latencyModel,
      phases: fc.constantFrom(
        [],
        [{ from: 100, to: 200, down: true }],
        [{ from: 0, latency: 50, errorRate: 0.5, label: 'slow' }],
      ),
      joinAt: fc.constantFrom(0, 50),
      leaveAt: fc.constantFrom(300, 2 ** 40),
    },
    required: ['id', 'latency'],
    build: (o) =>
      core.simulate(
        { ...SMALL_SCENARIO, backends: [any(o), { id: 'zz-other', latency: 5 }] },
        { algorithms: core.simulationCandidates(['least-connections']) },
      ),
    exercise: (r) => {
      core.formatReport(r as core.SimulationReport);
    },
    runs: 40,
  },
  {
    name: 'simulationCandidates(names)',
    covers: ['simulationCandidates'],
    label: undefined,
    keys: { names: fc.subarray([...core.SIMULATION_ALGORITHMS], { minLength: 1 }) },
    required: ['names'],
    build: (o) => core.simulationCandidates(any(o['names'])),
  },
  {
    name: 'flapping(options)',
    covers: ['flapping'],
    label: 'flapping options',
    keys: {
      periodMs: fc.constantFrom(1000, 10, 2 ** 31),
      downMs: fc.constantFrom(1, 5, 500),
      from: fc.constantFrom(0, 100, 2 ** 40),
      until: fc.constantFrom(0, 10_000, 60_000),
      label: fc.constantFrom('flap', ''),
    },
    required: ['periodMs', 'downMs', 'until'],
    bad: {
      periodMs: fc.constantFrom(1e-300, Number.MIN_VALUE),
      until: fc.constantFrom(2 ** 53, 1e300),
    },
    build: (o) => core.flapping(any(o)),
    exercise: (phases) => {
      for (const p of phases as core.BackendPhase[]) expect(p.to).toBeGreaterThan(p.from);
    },
  },
  {
    name: 'linkerdScenario(options) and the other built-in scenarios',
    covers: [
      'linkerdScenario',
      'heavyTailScenario',
      'failingBackendScenario',
      'flappingScenario',
      'hotKeysScenario',
      'zoneOutageScenario',
    ],
    label: 'scenario options',
    keys: {
      rate: fc.constantFrom(10, 1000, 2 ** 31),
      clients: fc.constantFrom(1, 16, 2 ** 31),
      durationMs: durationMs(1),
      seed: fc.constantFrom(1, -1, 2 ** 40),
    },
    params: {
      which: fc.constantFrom(
        'linkerdScenario',
        'heavyTailScenario',
        'failingBackendScenario',
        'flappingScenario',
        'hotKeysScenario',
        'zoneOutageScenario',
      ),
    },
    build: (o, _env, p) =>
      (core as unknown as Record<string, (o: unknown) => core.Scenario>)[
        String(p['which'] ?? 'linkerdScenario')
      ]!(o),
    exercise: async (scenario) => {
      const s = scenario as core.Scenario;
      expect(s.backends.length).toBeGreaterThan(0);
      // Run it only when it is small: the size is the caller's to choose.
      const planned =
        s.rate === undefined ? Number.POSITIVE_INFINITY : (s.rate * (s.durationMs ?? 0)) / 1000;
      if (Math.min(s.requests ?? Number.POSITIVE_INFINITY, planned) <= 300) {
        await core.simulate(s, { algorithms: core.simulationCandidates(['round-robin']) });
      }
    },
  },
  {
    name: 'slowBackendScenario(options), lostCapacityScenario(options)',
    covers: ['slowBackendScenario', 'lostCapacityScenario'],
    label: 'scenario options',
    keys: {
      clients: fc.constantFrom(1, 16, 2 ** 31),
      rate: fc.constantFrom(10, 1000, 2 ** 31),
      durationMs: durationMs(1),
      seed: fc.constantFrom(1, -1, 2 ** 40),
    },
    params: { which: fc.constantFrom('slowBackendScenario', 'lostCapacityScenario') },
    build: (o, _env, p) =>
      (core as unknown as Record<string, (o: unknown) => core.Scenario>)[
        String(p['which'] ?? 'slowBackendScenario')
      ]!(o),
    exercise: async (scenario) => {
      const s = scenario as core.Scenario;
      expect(s.backends.length).toBeGreaterThan(0);
      // A closed loop runs for its duration: run it only when that is short.
      if ((s.durationMs ?? Number.POSITIVE_INFINITY) <= 200 && (s.clients ?? 0) <= 64) {
        await core.simulate(s, { algorithms: core.simulationCandidates(['round-robin']) });
      }
    },
  },
  {
    name: 'formatReport(report), reportCharts(report)',
    covers: ['formatReport', 'reportCharts'],
    label: undefined,
    keys: { report: live('a report of simulate()', () => report()) },
    required: ['report'],
    build: async (o) => {
      const r = await o['report'];
      expect(core.formatReport(any(r)).length).toBeGreaterThan(0);
      return core.reportCharts(any(r));
    },
    exercise: (charts) => {
      for (const c of charts as core.Chart[]) expect(c.svg).toMatch(/^<svg/);
    },
  },
  {
    name: 'new DeterministicSubset(options)',
    covers: ['DeterministicSubset'],
    label: 'DeterministicSubsetOptions',
    keys: {
      algorithm: fc
        .constantFrom('RoundRobin', 'PeakEwma', 'LeastConnections', 'ConsistentHash')
        .map((n) => ALGORITHM_FACTORIES[n]!()),
      size: fc.constantFrom(1, 2, 20, 2 ** 31),
      clientIndex: fc.constantFrom(0, 1),
      clientCount: fc.constantFrom(2, 3, 2 ** 20),
      fleet: callback(() => ({ index: 1, count: 4 })),
      offset: fc.constantFrom(0, 0.5, 'checkout-service'),
      placement: fc.constantFrom('even', 'stable'),
      minEligibleShare: fraction(),
    },
    // `fleet` and `clientIndex`/`clientCount` are alternatives: the fleet function wins here.
    build: (o) => {
      const { clientIndex, clientCount, ...rest } = o;
      const options =
        o['fleet'] === undefined
          ? { clientIndex: clientIndex ?? 0, clientCount: clientCount ?? 2, ...rest }
          : rest;
      return new core.DeterministicSubset(any(options));
    },
    exercise: async (algorithm, env) => {
      const subset = algorithm as core.DeterministicSubset;
      await exercisePool(env.pool({ algorithm: subset }), env);
      attempt(() => subset.refresh(), []);
    },
    useErrors: [UserCallbackError],
  },
  {
    name: 'deterministicSubset(ids, position, size, options)',
    covers: [
      'deterministicSubset',
      'subsetRing',
      'subsetSpan',
      'subsetCoverage',
      'vanDerCorput',
      'fleetOffset',
    ],
    label: 'SubsetSpanOptions',
    keys: {
      offset: fc.constantFrom(0, 0.25, 0.999),
      placement: fc.constantFrom('even', 'stable'),
    },
    params: {
      ids: fc.array(fc.constantFrom('a:80', 'b:80', 'c:80', 'd:80', 'e:80'), { maxLength: 5 }),
      index: fc.constantFrom(0, 1, 2),
      size: fc.constantFrom(1, 2, 50),
    },
    build: (o, _env, p) => {
      const ids = [...new Set((p['ids'] as string[] | undefined) ?? ['a:80', 'b:80'])];
      const position = { index: (p['index'] as number | undefined) ?? 0, count: 3 };
      const size = (p['size'] as number | undefined) ?? 2;
      const subset = core.deterministicSubset(ids, position, size, any(o));
      const span = core.subsetSpan(ids.length, position.index, 3, size, any(o));
      expect(subset.length).toBe(span.end - span.start);
      expect(core.subsetRing(ids)).toHaveLength(ids.length);
      expect(core.subsetCoverage(size, 3, ids.length)).toBeGreaterThanOrEqual(0);
      const x = core.vanDerCorput(position.index);
      expect(x >= 0 && x < 1).toBe(true);
      expect(core.fleetOffset('checkout')).toBeLessThan(1);
      return subset;
    },
  },
  {
    name: 'subsetSpan(m, index, count, size), vanDerCorput(i), fleetOffset(name)',
    covers: [],
    label: undefined,
    keys: {
      m: fc.constantFrom(0, 1, 10, 1000),
      index: fc.constantFrom(0, 1),
      count: fc.constantFrom(2, 5, 2 ** 20),
      size: fc.constantFrom(1, 3, 2 ** 31),
      i: fc.constantFrom(0, 1, 2 ** 32 - 1),
      name: fc.constantFrom('a', 'checkout-service'),
    },
    build: (o) => {
      const span = core.subsetSpan(
        any(o['m'] ?? 10),
        any(o['index'] ?? 0),
        any(o['count'] ?? 2),
        any(o['size'] ?? 3),
      );
      expect(span.end).toBeGreaterThanOrEqual(span.start);
      core.vanDerCorput(any(o['i'] ?? 0));
      core.fleetOffset(any(o['name'] ?? 'n'));
      return undefined;
    },
  },
  {
    name: 'new AddressPolicy(options)',
    covers: ['AddressPolicy'],
    label: 'addressPolicy',
    keys: {
      deny: fc.constantFrom(
        [],
        ['metadata', 'link-local', 'multicast'],
        ['loopback', 'private'],
        ['192.0.2.0/24', 'fd00::/8'],
      ),
      allow: fc.constantFrom(['10.0.0.0/8'], ['0.0.0.0/0', '::/0'], ['2001:db8::/32']),
      allowHostnames: fc.boolean(),
    },
    build: (o) => new core.AddressPolicy(any(o)),
    exercise: (policy) => {
      const p = policy as core.AddressPolicy;
      for (const url of [
        'http://10.0.0.1:80',
        'http://169.254.169.254',
        'http://[::ffff:127.0.0.1]:8080',
        'http://api.internal:8080',
        'http://0.0.0.0:80',
      ]) {
        const why = p.check(url);
        expect(why === undefined || typeof why === 'string').toBe(true);
      }
    },
  },
  {
    name: 'simulateFleet(options), formatFleetReport(report), fleetCharts(report)',
    covers: ['simulateFleet', 'formatFleetReport', 'fleetCharts'],
    label: 'FleetScenarioOptions',
    keys: {
      clients: fc.constantFrom(1, 3, 8),
      backends: fc.constantFrom(2, 10, 24),
      size: fc.constantFrom(1, 3, 50),
      callsPerClient: fc.constantFrom(1, 10),
      seed: fc.constantFrom(1, -7, 2 ** 31),
      deployShare: fraction(),
    },
    build: (o) =>
      // Small by default: a fleet of 500 pools takes seconds.
      core.simulateFleet(any({ clients: 3, backends: 10, callsPerClient: 2, ...o })),
    exercise: (report) => {
      const r = report as core.FleetReport;
      expect(core.formatFleetReport(r).length).toBeGreaterThan(0);
      expect(core.fleetCharts(r).length).toBeGreaterThan(0);
    },
    runs: 20,
  },
  {
    name: 'barChart(spec)',
    covers: ['barChart'],
    label: 'BarChartSpec',
    keys: {
      title: name,
      subtitle: name,
      categories: fc.constantFrom([], ['a'], ['round-robin', 'peak-ewma']),
      series: fc.constantFrom(
        [],
        [{ name: 'p99', values: [1, 2] }],
        [{ name: 's', values: [Number.NaN, 2 ** 53] }],
      ),
      yLabel: name,
      format: callback((x: number) => x.toFixed(1)),
      tickFormat: callback((x: number) => `${x}`),
      yMin: fc.constantFrom(0, -5, 0.5),
      yMax: fc.constantFrom(1, 100, 2 ** 40),
      refLines: fc.constantFrom([], [{ value: 1, label: 'one' }]),
      valueLabels: fc.boolean(),
      width: fc.constantFrom(720, 200, 4000),
      height: fc.constantFrom(380, 100, 2000),
    },
    required: ['title', 'categories', 'series', 'yLabel'],
    build: (o) => core.barChart(any(o)),
    exercise: (svg) => expect(svg).toMatch(/^<svg[\s\S]*<\/svg>\n$/),
  },
  {
    name: 'lineChart(spec)',
    covers: ['lineChart'],
    label: 'LineChartSpec',
    keys: {
      title: name,
      subtitle: name,
      series: fc.constantFrom(
        [],
        [
          {
            name: 'a',
            points: [
              [0, 1],
              [1, 2],
            ],
          },
        ],
        [{ name: 'b', points: [] }],
      ),
      xLabel: name,
      yLabel: name,
      formatX: callback((x: number) => `${x}`),
      formatY: callback((x: number) => `${x}`),
      bands: fc.constantFrom([], [{ from: 0, to: 1, label: 'incident' }]),
      refLines: fc.constantFrom([], [{ value: 0.5, label: 'half' }]),
      yMin: fc.constantFrom(0, -1),
      yMax: fc.constantFrom(1, 10),
      width: fc.constantFrom(720, 300),
      height: fc.constantFrom(380, 120),
    },
    required: ['title', 'series', 'xLabel', 'yLabel'],
    build: (o) => core.lineChart(any(o)),
    exercise: (svg) => expect(svg).toMatch(/^<svg[\s\S]*<\/svg>\n$/),
  },
];

// ---------------------------------------------------------------- exercisers

function exerciseRing(ring: ConsistentHashRing): void {
  for (let i = 0; i < 20; i++) {
    const id = ring.get(`key-${i}`);
    if (ring.size > 0) expect(ring.ids()).toContain(id);
    ring.getN(`key-${i}`, 2);
    ring.locate(`key-${i}`);
  }
  const [first] = ring.ids();
  if (first !== undefined) ring.remove(first);
  ring.add('late', 2);
  expect(ring.get('key-0')).toBeDefined();
}

function exerciseMaglev(table: MaglevTable): void {
  for (let i = 0; i < 20; i++) expect(table.ids).toContain(table.lookupKey(`key-${i}`));
  expect(table.toArray()).toHaveLength(table.tableSize);
}

/** A detector and the pool it watches. */
interface Watched {
  detector: OutlierDetector;
  pool: BackendPool;
}

function watch(env: Env, options: unknown): Watched {
  const pool = env.pool();
  return { detector: new OutlierDetector(pool, any(options)), pool };
}

async function exerciseDetector({ detector, pool }: Watched, env: Env): Promise<void> {
  // Failures, 503s with Retry-After and successes, as a fetch would release them.
  for (let i = 0; i < 30; i++) {
    const lease = attempt(() => pool.acquire(), NO_BACKEND);
    lease?.release(
      i % 3 === 0
        ? { ok: false, status: 503, failure: 'http', retryAfterMs: 2000 }
        : i % 3 === 1
          ? { ok: false, failure: 'connect' }
          : { ok: true, latencyMs: 3 },
    );
  }
  detector.status();
  await env.clock.stepAsync(10);
  await env.otherClock.stepAsync(10);
  attempt(() => detector.analyze(), [PoolClosedError]);
  detector.close();
}

async function exerciseSessions(manager: SessionPersistenceManager, env: Env): Promise<void> {
  for (const input of ['user-1', 'user-2', 'user-1'] as const) {
    const got = await attemptAsync(() => manager.acquire(input), NO_BACKEND);
    got?.lease.release({ ok: true });
  }
  const first = await attemptAsync(() => manager.acquire({ cookie: null }), NO_BACKEND);
  first?.lease.release();
  if (first?.setCookie !== undefined) {
    const value = first.setCookie.split(';')[0]!;
    const again = await attemptAsync(() => manager.acquire({ cookie: value }), NO_BACKEND);
    again?.lease.release();
  }
  await manager.forget('user-1');
  await env.clock.stepAsync(5);
  await env.otherClock.stepAsync(5);
  await manager.close();
}

async function exerciseDiscovery(
  source: StaticDiscovery | PollingDiscovery,
  env: Env,
): Promise<void> {
  const pool = env.pool({ backends: [] });
  const binding = core.attachDiscovery(pool, source);
  await env.clock.stepAsync(5);
  await env.otherClock.stepAsync(5);
  // A poll that never answers ends at its timeout: time must pass while the refresh waits.
  let done = false;
  const refreshed = binding.refresh().finally(() => {
    done = true;
  });
  for (let i = 0; i < 50 && !done; i++) {
    await env.clock.stepAsync(1);
    await env.otherClock.stepAsync(1);
  }
  expect(done, 'a refresh ends by its timeout at the latest').toBe(true);
  await refreshed;
  pool.stats();
  await binding.close();
  await source.close();
}

async function routedCall(router: Router, env: Env): Promise<void> {
  const fetch = createBalancedFetch(router, { fetch: env.transport });
  for (const path of ['/api/x', '/a/1', '/other']) {
    const call = pending(fetch(path, { method: 'POST', body: 'x' }));
    await env.clock.stepAsync(3);
    const res = await attemptAsync(call, [NoRouteError, ...NO_BACKEND]);
    await res?.text();
  }
  router.routeNames();
  router.backends();
}

// ---------------------------------------------------------------- entry points

/** Exports that take no options, with the reason (everything else needs a row). */
export const NO_ROW: Readonly<Record<string, string>> = {
  defaultRandom: 'takes no argument (a random source itself)',
};
