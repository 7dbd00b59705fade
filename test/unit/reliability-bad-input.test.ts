/**
 * Bad input across the public API: malformed URLs, weights, thresholds, timeouts, keys, cookies,
 * DNS answers, options of the wrong type, unknown option keys, NaN, Infinity, negative numbers,
 * empty strings, functions where objects belong. Each must throw (or reject with) a typed error
 * whose message names the field (or the offending URL or id), and none may disturb the pools it
 * touched: after every case the same backends are there in the same states, no listener or timer
 * was left behind, and a lease can still be taken and released.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ConsistentHash } from '../../src/algorithms/consistent-hash.js';
import { Maglev } from '../../src/algorithms/maglev.js';
import { PeakEwma } from '../../src/algorithms/peak-ewma.js';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { RetryBudget } from '../../src/call/retry-budget.js';
import { attachDiscovery } from '../../src/discovery/binding.js';
import { PollingDiscovery } from '../../src/discovery/polling-discovery.js';
import { StaticDiscovery } from '../../src/discovery/static-discovery.js';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { InvalidRequestError } from '../../src/errors/invalid-request-error.js';
import { LoadBalancerError } from '../../src/errors/load-balancer-error.js';
import { RequestRefusedError } from '../../src/errors/request-refused-error.js';
import { UnknownBackendError } from '../../src/errors/unknown-backend-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import { OutlierDetector } from '../../src/health/outlier-detector.js';
import { connect } from '../../src/node/connect.js';
import { DnsDiscovery, type DnsResolverLike } from '../../src/node/dns-discovery.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { Router } from '../../src/routing/router.js';
import { getCookie, serializeSetCookie } from '../../src/session/cookie.js';
import { MemorySessionStore } from '../../src/session/memory-store.js';
import { SessionPersistenceManager } from '../../src/session/session-persistence-manager.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { PickContext } from '../../src/types.js';

/** Lets a test pass a value the types forbid, as plain JavaScript callers can. */
const bad = <T>(value: unknown): T => value as T;

const URLS = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080'];

interface World {
  clock: ManualClock;
  /** A round-robin pool most cases poke at. */
  pool: BackendPool;
  /** A consistent-hash pool, for keys. */
  hashed: BackendPool;
  /** A sticky-session manager on `pool`. */
  sessions: SessionPersistenceManager;
  /** A balanced fetch over `pool` with a stub transport. */
  fetch: ReturnType<typeof createBalancedFetch>;
  id: string;
}

interface Case {
  /** What is malformed. */
  name: string;
  /** The error class (default LoadBalancerConfigError). */
  error?: abstract new (
    ...args: never[]
  ) => Error;
  /**
   * What the message must name: the field for a config error (also checked against
   * `error.field`), the offending URL or id otherwise.
   */
  names: string;
  /** Throws, or returns a promise that rejects. */
  run: (w: World) => unknown;
}

const CASES: Case[] = [
  // ---------------------------------------------------------------- URLs
  {
    name: 'a backend URL that is not a URL',
    names: 'backends[0].url',
    run: () => new BackendPool({ backends: ['not a url'] }),
  },
  {
    name: 'a relative backend URL',
    names: 'backends[0].url',
    run: () => new BackendPool({ backends: ['/api/v1'] }),
  },
  {
    name: 'a backend URL with credentials',
    names: 'backends[0].url',
    run: () => new BackendPool({ backends: ['http://user:pw@10.0.0.9:80'] }),
  },
  {
    name: 'a backend URL with a query',
    names: 'backends[0].url',
    run: () => new BackendPool({ backends: ['http://10.0.0.9:80/?debug=1'] }),
  },
  { name: 'pool.add of an empty URL', names: 'backend.url', run: (w) => w.pool.add('') },
  {
    name: 'a fetch to a foreign origin',
    error: RequestRefusedError,
    names: 'http://evil.example/steal',
    run: (w) => w.fetch('http://evil.example/steal'),
  },
  {
    name: 'a protocol-relative fetch',
    error: RequestRefusedError,
    names: '//evil.example/x',
    run: (w) => w.fetch('//evil.example/x'),
  },
  {
    name: 'a javascript: URL',
    error: RequestRefusedError,
    names: 'javascript:alert(1)',
    run: (w) => w.fetch('javascript:alert(1)'),
  },
  {
    name: 'a path climbing above the root',
    error: RequestRefusedError,
    names: '/a/../../etc/passwd',
    run: (w) => w.fetch('/a/../../etc/passwd'),
  },
  {
    name: 'a service origin that is not a URL',
    names: 'serviceOrigins[0]',
    run: (w) => createBalancedFetch(w.pool, { serviceOrigins: ['users service'] }),
  },

  // ---------------------------------------------------------------- weights
  {
    name: 'weight 0',
    names: 'backends[0].weight',
    run: () => new BackendPool({ backends: [{ url: URLS[0]!, weight: 0 }] }),
  },
  {
    name: 'a negative weight',
    names: 'backends[0].weight',
    run: () => new BackendPool({ backends: [{ url: URLS[0]!, weight: -1 }] }),
  },
  {
    name: 'weight NaN',
    names: 'backends[0].weight',
    run: () => new BackendPool({ backends: [{ url: URLS[0]!, weight: Number.NaN }] }),
  },
  {
    name: 'weight Infinity',
    names: 'backend.weight',
    run: (w) => w.pool.add({ url: 'http://10.0.0.9:80', weight: Number.POSITIVE_INFINITY }),
  },
  {
    name: 'a weight given as a string',
    names: 'backends[0].weight',
    run: () => new BackendPool({ backends: [{ url: URLS[0]!, weight: bad<number>('3') }] }),
  },
  { name: 'setWeight(0)', names: 'weight', run: (w) => w.pool.setWeight(w.id, 0) },
  {
    name: 'setWeight on an unknown backend',
    error: UnknownBackendError,
    names: 'no-such-backend',
    run: (w) => w.pool.setWeight('no-such-backend', 2),
  },

  // ---------------------------------------------------------------- thresholds
  { name: 'minHealthy -1', names: 'minHealthy', run: () => new BackendPool({ minHealthy: -1 }) },
  {
    name: 'panicThreshold above 1',
    names: 'panicThreshold',
    run: () => new BackendPool({ panicThreshold: 1.5 }),
  },
  {
    name: 'panicThreshold NaN',
    names: 'panicThreshold',
    run: () => new BackendPool({ panicThreshold: Number.NaN }),
  },
  {
    name: 'unhealthyThreshold 0',
    names: 'unhealthyThreshold',
    run: (w) => new HealthChecker(w.pool, { probe: async () => true, unhealthyThreshold: 0 }),
  },
  {
    name: 'a fractional healthyThreshold',
    names: 'healthyThreshold',
    run: (w) => new HealthChecker(w.pool, { probe: async () => true, healthyThreshold: 1.5 }),
  },
  {
    name: 'maxEjectionPercent 150',
    names: 'maxEjectionPercent',
    run: (w) => new OutlierDetector(w.pool, { maxEjectionPercent: 150 }),
  },
  {
    name: 'consecutiveFailures 0',
    names: 'consecutiveFailures',
    run: (w) => new OutlierDetector(w.pool, { consecutiveFailures: 0 }),
  },
  {
    name: 'a failure-percentage threshold above 100',
    names: 'failurePercentage.threshold',
    run: (w) => new OutlierDetector(w.pool, { failurePercentage: { threshold: 120 } }),
  },
  {
    name: 'a probe report with healthyThreshold 0',
    names: 'healthyThreshold',
    run: (w) => w.pool.reportProbe(w.id, { ok: true, healthyThreshold: 0 }),
  },
  {
    name: 'a probe report whose ok is a string',
    names: 'ok',
    run: (w) => w.pool.reportProbe(w.id, { ok: bad<boolean>('yes') }),
  },
  {
    name: 'a retry budget with a negative percentage',
    names: 'percentCanRetry',
    run: () => new RetryBudget({ percentCanRetry: -0.1 }),
  },

  // ---------------------------------------------------------------- timeouts
  {
    name: 'a negative attempt timeout',
    names: 'timeoutMs',
    run: (w) => createBalancedFetch(w.pool, { timeoutMs: -1 }),
  },
  {
    name: 'deadline NaN',
    names: 'deadlineMs',
    run: (w) => createBalancedFetch(w.pool, { deadlineMs: Number.NaN }),
  },
  {
    name: 'a probe timeout not below the interval',
    names: 'timeoutMs',
    run: (w) =>
      new HealthChecker(w.pool, { probe: async () => true, intervalMs: 100, timeoutMs: 100 }),
  },
  {
    name: 'a negative drain grace period',
    names: 'graceMs',
    run: (w) => w.pool.drain(w.id, { graceMs: -1 }),
  },
  {
    name: 'an infinite ejection',
    names: 'durationMs',
    run: (w) => w.pool.eject(w.id, Number.POSITIVE_INFINITY),
  },
  {
    name: 'close() with a negative grace period (the pool must stay open)',
    names: 'graceMs',
    run: (w) => w.pool.close({ graceMs: -1 }),
  },
  {
    name: 'storeTimeoutMs 0',
    names: 'storeTimeoutMs',
    run: (w) => new SessionPersistenceManager(w.pool, { storeTimeoutMs: 0 }),
  },
  {
    name: 'a negative poll timeout',
    names: 'timeoutMs',
    run: () => new PollingDiscovery({ poll: () => [], timeoutMs: -5 }),
  },
  {
    name: 'connectTimeoutMs 0',
    names: 'connectTimeoutMs',
    run: (w) => connect(w.pool, { connectTimeoutMs: 0 }),
  },

  // ---------------------------------------------------------------- keys
  {
    name: 'a numeric hash key',
    names: 'ctx.key',
    run: (w) => w.hashed.acquire({ key: bad<string>(42) }),
  },
  {
    name: 'an object as hash key',
    names: 'ctx.key',
    run: (w) => w.hashed.acquire({ key: bad<string>({ user: 1 }) }),
  },
  {
    name: 'a pick context that is a number',
    names: 'ctx',
    run: (w) => w.pool.acquire(bad<PickContext>(42)),
  },
  {
    name: 'a sticky pin given as a bare id',
    names: 'ctx.affinity',
    run: (w) => w.pool.acquire({ affinity: bad<{ id: string }>(w.id) }),
  },
  {
    name: 'exclude given as one id string (not a list)',
    names: 'ctx.exclude',
    run: (w) => w.pool.acquire({ exclude: bad<string[]>(w.id) }),
  },
  {
    name: 'a session key that is a number',
    names: 'key',
    run: (w) => w.sessions.acquire({ key: bad<string>(7) }),
  },
  {
    name: 'a session input that is a number',
    names: 'input',
    run: (w) => w.sessions.acquire(bad<string>(42)),
  },
  {
    name: 'a fetch key function returning a number',
    names: 'key(request)',
    run: (w) =>
      createBalancedFetch(w.pool, {
        fetch: async () => new Response('ok'),
        key: () => bad<string>(12),
      })('/x'),
  },
  {
    name: 'a session store key that is not a string',
    names: 'key',
    run: (w) =>
      new MemorySessionStore({ clock: w.clock, cleanupIntervalMs: 0 }).set(
        bad<string>(1),
        { backend: 'a', createdAt: 0 },
        1000,
      ),
  },
  {
    name: 'a Maglev table size that is not prime',
    names: 'tableSize',
    run: () => new Maglev({ tableSize: 1000 }),
  },

  // ---------------------------------------------------------------- cookies
  {
    name: 'a cookie name with a space',
    names: 'cookie.name',
    run: (w) => new SessionPersistenceManager(w.pool, { cookie: { name: 'bad name' } }),
  },
  {
    name: 'an unknown SameSite value',
    names: 'cookie.sameSite',
    run: (w) =>
      new SessionPersistenceManager(w.pool, {
        cookie: { sameSite: bad<'Lax'>('Sometimes') },
      }),
  },
  {
    name: 'a cookie Max-Age of NaN',
    names: 'cookie.maxAgeSec',
    run: (w) => new SessionPersistenceManager(w.pool, { cookie: { maxAgeSec: Number.NaN } }),
  },
  {
    name: 'a cookie secret shorter than 32 bytes',
    names: 'secret',
    run: (w) => new SessionPersistenceManager(w.pool, { cookie: true, secret: 'short' }),
  },
  {
    name: 'a secret without cookie mode',
    names: 'secret',
    run: (w) =>
      new SessionPersistenceManager(w.pool, {
        secret: 'bad-input-test-secret-without-cookie-mode',
      }),
  },
  {
    name: 'a cookie value with a semicolon',
    names: 'value',
    run: () => serializeSetCookie('SERVERID', 'a;b'),
  },
  { name: 'reading a cookie with an empty name', names: 'name', run: () => getCookie('a=b', '') },

  // ---------------------------------------------------------------- DNS answers and discovery
  {
    name: 'endpoints given as one string',
    names: 'endpoints',
    run: () => new StaticDiscovery(bad<string[]>('http://10.0.0.1:80')),
  },
  {
    name: 'an endpoint that is not a URL',
    names: 'endpoints[0].url',
    run: () => new StaticDiscovery(['10.0.0.1 port 80']),
  },
  {
    name: 'an endpoint with a negative weight',
    names: 'endpoints[0].weight',
    run: () => new StaticDiscovery([{ url: 'http://10.0.0.1:80', weight: -2 }]),
  },
  {
    name: 'an endpoint with an unknown key',
    names: 'endpoints[1].port',
    run: () =>
      new StaticDiscovery().set([
        'http://10.0.0.1:80',
        bad<string>({ url: 'http://10.0.0.2', port: 80 }),
      ]),
  },
  {
    name: 'a DNS answer with an invalid IPv4 address',
    names: 'A record of api.internal',
    run: (w) => dnsAnswer(w, ['999.0.0.1']),
  },
  {
    name: 'a DNS answer that is not an address',
    names: 'A record of api.internal',
    run: (w) => dnsAnswer(w, ['not an address']),
  },
  {
    name: 'a DNS answer with an empty address',
    names: 'A record of api.internal',
    run: (w) => dnsAnswer(w, ['']),
  },
  {
    name: 'a DNS answer smuggling a path into the address',
    names: 'A record of api.internal',
    run: (w) => dnsAnswer(w, ['10.1.0.1/admin']),
  },
  {
    name: 'a DNS answer naming a host instead of an address',
    names: 'A record of api.internal',
    run: (w) => dnsAnswer(w, ['10.1.0.1', 'evil.example']),
  },
  {
    name: 'maxRemovalShare 2',
    names: 'maxRemovalShare',
    run: (w) => attachDiscovery(w.pool, new StaticDiscovery(URLS), { maxRemovalShare: 2 }),
  },
  {
    name: 'a discovery source that is a plain object',
    names: 'source',
    run: (w) => attachDiscovery(w.pool, bad<StaticDiscovery>({})),
  },
  {
    name: 'a DNS hostname that is empty',
    names: 'hostname',
    run: () => new DnsDiscovery({ hostname: '', port: 80 }),
  },
  {
    name: 'a DNS port out of range',
    names: 'port',
    run: () => new DnsDiscovery({ hostname: 'api.internal', port: 70_000 }),
  },

  // ---------------------------------------------------------------- options of the wrong type
  {
    name: 'pool options as a string',
    names: 'BackendPoolOptions',
    run: () => new BackendPool(bad<object>('round-robin')),
  },
  {
    name: 'backends as a string',
    names: 'backends',
    run: () => new BackendPool({ backends: bad<string[]>('http://10.0.0.1:80') }),
  },
  {
    name: 'a backend given as a number',
    names: 'backends[0]',
    run: () => new BackendPool({ backends: [bad<string>(42)] }),
  },
  {
    name: 'a clock without methods',
    names: 'clock',
    run: () => new BackendPool({ clock: bad<ManualClock>({}) }),
  },
  {
    name: 'a random source that is a number',
    names: 'random',
    run: () => new BackendPool({ random: bad<() => number>(0.5) }),
  },
  {
    name: 'an algorithm given by name',
    names: 'algorithm',
    run: () => new BackendPool({ algorithm: bad<RoundRobin>('round-robin') }),
  },
  { name: 'skew: true', names: 'skew', run: () => new BackendPool({ skew: bad<false>(true) }) },
  {
    name: 'retries as a string',
    names: 'retries',
    run: (w) => createBalancedFetch(w.pool, { retries: bad<number>('2') }),
  },
  {
    name: 'retryOn as a number',
    names: 'retryOn',
    run: (w) => createBalancedFetch(w.pool, { retryOn: bad<number[]>(503) }),
  },
  {
    name: 'an HTTP probe method that is not GET or HEAD',
    names: 'method',
    run: (w) => new HealthChecker(w.pool, { method: bad<'GET'>('POST') }),
  },
  {
    name: 'routes as a string',
    names: 'routes',
    run: () => new Router({ routes: bad<[]>('api') }),
  },
  {
    name: 'an algorithm instance already used by another pool',
    names: 'algorithm',
    run: (w) => new BackendPool({ algorithm: w.pool.algorithm }),
  },
  {
    name: 'lease.release with a string outcome',
    names: 'lease.release(outcome)',
    run: (w) => withLease(w, (lease) => lease.release(bad<{ ok: boolean }>('ok'))),
  },
  {
    name: 'lease.release with latency NaN',
    names: 'lease.release(outcome).latencyMs',
    run: (w) => withLease(w, (lease) => lease.release({ ok: true, latencyMs: Number.NaN })),
  },

  // ---------------------------------------------------------------- unknown option keys
  {
    name: 'a misspelt pool option',
    names: 'BackendPoolOptions.backend',
    run: () => new BackendPool(bad<object>({ backend: URLS })),
  },
  {
    name: 'an unknown key on a backend',
    names: 'backends[0].colour',
    run: () => new BackendPool({ backends: [bad<string>({ url: URLS[0], colour: 'red' })] }),
  },
  {
    name: 'timeout instead of timeoutMs',
    names: 'BalancedFetchOptions.timeout',
    run: (w) => createBalancedFetch(w.pool, bad<object>({ timeout: 100 })),
  },
  {
    name: 'an unknown health checker option',
    names: 'HealthCheckerOptions.interval',
    run: (w) => new HealthChecker(w.pool, bad<object>({ interval: 100 })),
  },
  {
    name: 'an Envoy name instead of the option',
    names: 'OutlierDetectorOptions.consecutive5xx',
    run: (w) => new OutlierDetector(w.pool, bad<object>({ consecutive5xx: 3 })),
  },
  {
    name: 'an unknown drain option',
    names: 'drain options.grace',
    run: (w) => w.pool.drain(w.id, bad<object>({ grace: 5 })),
  },
  {
    name: 'an unknown session option',
    names: 'SessionPersistenceOptions.ttl',
    run: (w) => new SessionPersistenceManager(w.pool, bad<object>({ ttl: 5 })),
  },
  {
    name: 'an unknown connect option',
    names: 'ConnectOptions.timeout',
    run: (w) => connect(w.pool, bad<object>({ timeout: 5 })),
  },

  // ---------------------------------------------------------------- NaN, Infinity, negatives
  {
    name: 'a negative round-robin start index',
    names: 'startIndex',
    run: () => new RoundRobin({ startIndex: -1 }),
  },
  {
    name: 'a peak EWMA choice count of 3',
    names: 'choices',
    run: () => new PeakEwma({ choices: bad<2>(3) }),
  },
  {
    name: 'virtualNodes 0',
    names: 'virtualNodes',
    run: () => new ConsistentHash({ virtualNodes: 0 }),
  },
  { name: 'slowStartMs -5', names: 'slowStartMs', run: () => new BackendPool({ slowStartMs: -5 }) },
  {
    name: 'drainGraceMs Infinity',
    names: 'drainGraceMs',
    run: () => new BackendPool({ drainGraceMs: Number.POSITIVE_INFINITY }),
  },
  {
    name: 'an ejection of NaN ms',
    names: 'durationMs',
    run: (w) => w.pool.eject(w.id, Number.NaN),
  },
  {
    name: 'a negative priority',
    names: 'backends[0].priority',
    run: () => new BackendPool({ backends: [{ url: URLS[0]!, priority: -1 }] }),
  },

  // ---------------------------------------------------------------- empty strings
  { name: 'an empty pool name', names: 'name', run: () => new BackendPool({ name: '' }) },
  {
    name: 'an empty backend id',
    names: 'backends[0].id',
    run: () => new BackendPool({ backends: [{ url: URLS[0]!, id: '' }] }),
  },
  {
    name: 'an empty checker name',
    names: 'name',
    run: (w) => new HealthChecker(w.pool, { probe: async () => true, name: '' }),
  },
  {
    name: 'an empty discovery name',
    names: 'name',
    run: () => new StaticDiscovery([], { name: '' }),
  },
  {
    name: 'an empty health path',
    names: 'path',
    run: (w) => new HealthChecker(w.pool, { path: '' }),
  },

  // ---------------------------------------------------------------- functions where objects belong
  {
    name: 'pool options as a function',
    names: 'BackendPoolOptions',
    run: () => new BackendPool(bad<object>(() => ({ backends: URLS }))),
  },
  {
    name: 'fetch options as a function',
    names: 'BalancedFetchOptions',
    run: (w) =>
      createBalancedFetch(
        w.pool,
        bad<object>(() => ({})),
      ),
  },
  {
    name: 'a backend given as a function',
    names: 'backends[0]',
    run: () => new BackendPool({ backends: [bad<string>(() => URLS[0])] }),
  },
  {
    name: 'cookie options as a function',
    names: 'cookie',
    run: (w) => new SessionPersistenceManager(w.pool, { cookie: bad<true>(() => true) }),
  },
  {
    name: 'a fetch target that is a function',
    names: 'target',
    run: () => createBalancedFetch(bad<BackendPool>(() => undefined)),
  },
  {
    name: 'a checker on something that is not a pool',
    names: 'pool',
    run: () => new HealthChecker(bad<BackendPool>({ acquire() {} })),
  },

  // ------------------------------------------------ found by the property suite (reliability-options)
  {
    name: 'a random source returning 1 (a TypeError inside the pick before)',
    names: 'random()',
    run: () =>
      new BackendPool({ backends: URLS, random: () => 1, skew: false, clock: new ManualClock() })
        .acquire()
        .release(),
  },
  {
    name: 'a random source returning undefined',
    names: 'random()',
    run: () =>
      new BackendPool({
        backends: URLS,
        random: bad<() => number>(() => undefined),
        skew: false,
        clock: new ManualClock(),
      })
        .acquire()
        .release(),
  },
  {
    name: 'lease.release with ok: null (the message named no option before)',
    names: 'lease.release(outcome).ok',
    run: (w) => withLease(w, (lease) => lease.release(bad<{ ok: boolean }>({ ok: null }))),
  },
  {
    name: 'lease.release with a status that is an object (a TypeError in outlier detection before)',
    names: 'lease.release(outcome).status',
    run: (w) =>
      withLease(w, (lease) =>
        lease.release({ ok: false, status: bad<number>(Object.create(null)) }),
      ),
  },
  {
    name: 'lease.release with an unknown failure kind',
    names: 'lease.release(outcome).failure',
    run: (w) =>
      withLease(w, (lease) => lease.release({ ok: false, failure: bad<'http'>('flaky') })),
  },
  {
    name: 'lease.release with retryAfterMs NaN',
    names: 'lease.release(outcome).retryAfterMs',
    run: (w) => withLease(w, (lease) => lease.release({ ok: false, retryAfterMs: Number.NaN })),
  },
  {
    name: 'an ejection reason that is an object (explain() threw a TypeError later)',
    names: 'reason',
    run: (w) => w.pool.eject(w.id, 1000, bad<string>(Object.create(null))),
  },
  {
    name: 'a health reason that is an object',
    names: 'reason',
    run: (w) => w.pool.setHealthy(w.id, false, bad<string>({})),
  },
  {
    name: 'a ringKey returning an object (named the internal hashKey before)',
    names: 'ringKey(backend)',
    run: () =>
      new BackendPool({
        backends: URLS,
        algorithm: new ConsistentHash({ ringKey: bad<() => string>(() => ({})) }),
        skew: false,
      }),
  },
  {
    name: 'a Maglev hostKey returning a number (named backends[0].key before)',
    names: 'hostKey(backend)',
    run: () =>
      new BackendPool({
        backends: URLS,
        algorithm: new Maglev({ hostKey: bad<() => string>(() => 42) }),
        skew: false,
      }),
  },
  {
    name: 'a fetch signal that is not an AbortSignal (a TypeError before)',
    names: 'init.signal',
    run: (w) => w.fetch('/x', { signal: bad<AbortSignal>([null]) }),
  },
  {
    name: 'a fetch method that is an object (a TypeError before)',
    names: 'init.method',
    run: (w) => w.fetch('/x', { method: bad<string>(Object.create(null)) }),
  },
  {
    name: 'a header value without a string form (a TypeError before)',
    error: InvalidRequestError,
    names: 'x-a',
    run: (w) => w.fetch('/x', { headers: bad<HeadersInit>({ 'x-a': Object.create(null) }) }),
  },
  {
    name: 'a header value above U+00FF (a LocalFailureError after the pick before)',
    error: InvalidRequestError,
    names: 'x-a',
    run: (w) => w.fetch('/x', { headers: { 'x-a': 'price in €' } }),
  },
  {
    name: 'a route header value above U+00FF (every routed call threw a TypeError before)',
    names: 'headers.set.x-price',
    run: (w) =>
      new Router({ routes: [{ name: 'r', pool: w.pool, headers: { set: { 'x-price': '5 €' } } }] }),
  },
  {
    name: 'route retries above what the fetch takes (every routed call failed before)',
    names: 'retries',
    run: (w) => new Router({ routes: [{ name: 'r', pool: w.pool, retries: 2 ** 31 }] }),
  },
  {
    name: 'TLS options node:tls refuses (the backend was blamed for them before)',
    names: 'tls',
    run: (w) => connect(w.pool, { tls: { minVersion: bad<'TLSv1.3'>('TLSv9') } }),
  },
  {
    name: 'resolver options node:dns refuses (a TypeError before)',
    names: 'resolverOptions',
    run: () =>
      new DnsDiscovery({
        hostname: 'api.internal',
        port: 80,
        resolverOptions: { timeout: bad<number>('x') },
      }),
  },
  {
    name: 'a skew window of 1e-9 ms (a simulated run never ended before)',
    names: 'skew.windowMs',
    run: () => new BackendPool({ skew: { windowMs: 1e-9 } }),
  },
  {
    name: 'a health-check interval below 1 ms',
    names: 'intervalMs',
    run: (w) => new HealthChecker(w.pool, { probe: async () => true, intervalMs: 1e-9 }),
  },
  {
    name: 'a fast health-check interval below 1 ms',
    names: 'fastIntervalMs',
    run: (w) => new HealthChecker(w.pool, { probe: async () => true, fastIntervalMs: 0.5 }),
  },
  {
    name: 'an outlier analysis interval below 1 ms',
    names: 'intervalMs',
    run: (w) => new OutlierDetector(w.pool, { intervalMs: 0.001 }),
  },
  {
    name: 'a session sweep every 0.5 ms',
    names: 'cleanupIntervalMs',
    run: () => new MemorySessionStore({ cleanupIntervalMs: 0.5 }),
  },
  {
    name: 'a discovery refresh floor below 1 ms',
    names: 'minRefreshMs',
    run: () => new PollingDiscovery({ poll: () => [], minRefreshMs: 1e-9 }),
  },
  {
    name: 'maxEntries 2^32 (a RangeError from lru-cache before)',
    names: 'maxEntries',
    run: () => new MemorySessionStore({ maxEntries: 2 ** 32, cleanupIntervalMs: 0 }),
  },
  {
    name: 'maxEntries 2^31 through the session manager (8 GB of index arrays before)',
    names: 'maxEntries',
    run: (w) => new SessionPersistenceManager(w.pool, { maxEntries: 2 ** 31 }),
  },
];

/** Takes a lease, lets `misuse` misuse it, and releases it properly whatever happens. */
function withLease(
  w: World,
  misuse: (lease: ReturnType<BackendPool['acquire']>) => unknown,
): unknown {
  const lease = w.pool.acquire();
  try {
    return misuse(lease);
  } finally {
    // The bad release must have changed nothing: the lease is still ours to release once.
    expect(lease.released).toBe(false);
    expect(lease.release({ ok: true, latencyMs: 1 })).toBe(true);
  }
}

/**
 * A pool fed by DNS answers (a stub resolver): a good answer first, then `addresses`. The bad
 * answer must not reach the pool: the binding reports it, with the typed error (which this
 * rethrows), as an `invalid-endpoint` (one malformed entry) or a `refresh-failed` (a malformed
 * answer), and the pool keeps its last good set.
 */
async function dnsAnswer(w: World, addresses: readonly string[]): Promise<void> {
  let answer = ['10.1.0.1', '10.1.0.2'];
  const resolver: DnsResolverLike = {
    resolve4: async () => answer.map((address) => ({ address, ttl: 30 })),
    resolve6: async () => [],
    resolveSrv: async () => [],
  };
  const pool = new BackendPool({ clock: w.clock, random: seededRandom(3), skew: false });
  const source = new DnsDiscovery({
    hostname: 'api.internal',
    port: 80,
    family: 4,
    resolver,
    clock: w.clock,
  });
  const binding = attachDiscovery(pool, source);
  const reported: unknown[] = [];
  binding.on('invalid-endpoint', (e) => reported.push(e.error));
  binding.on('refresh-failed', (e) => reported.push(e.error));
  const good = ['10.1.0.1:80', '10.1.0.2:80'];
  try {
    await binding.ready();
    await source.settled();
    expect(pool.backends().map((b) => b.id)).toEqual(good);
    answer = [...addresses];
    // Twice: an answer seen twice in a row passes the removal guard, so only validation stops it.
    await binding.refresh();
    await binding.refresh();
    expect(pool.backends().map((b) => b.id)).toEqual(good);
    expect(binding.holding).toBe(false);
    pool.acquire().release();
  } finally {
    await pool.close();
  }
  expect(reported).toHaveLength(2);
  throw reported[0];
}

/** What must not change when a call is refused. */
function snapshot(w: World) {
  const of = (p: BackendPool) => ({
    backends: p
      .stats()
      .backends.map((b) => `${b.id} ${b.state} w=${b.weight} inFlight=${b.inFlight}`),
    panic: p.panic,
    closed: p.closed,
    listeners: p.eventNames().map((e) => `${String(e)}:${p.listenerCount(e)}`),
  });
  return { pool: of(w.pool), hashed: of(w.hashed), timers: w.clock.pendingTimers() };
}

const requests = (p: BackendPool) => p.stats().backends.reduce((s, b) => s + b.requests, 0);

describe('bad input is refused with a typed error and disturbs nothing', () => {
  let w: World;

  beforeAll(() => {
    const clock = new ManualClock();
    const pool = new BackendPool({
      backends: URLS,
      algorithm: new RoundRobin(),
      clock,
      random: seededRandom(1),
    });
    const hashed = new BackendPool({
      backends: URLS,
      algorithm: new ConsistentHash(),
      clock,
      random: seededRandom(2),
    });
    const sessions = new SessionPersistenceManager(pool, { cleanupIntervalMs: 0 });
    const fetch = createBalancedFetch(pool, { fetch: async () => new Response('ok') });
    w = { clock, pool, hashed, sessions, fetch, id: pool.backends()[0]!.id };
  });

  it('covers at least 40 malformed inputs', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES)('$name', async ({ error = LoadBalancerConfigError, names, run }) => {
    const before = snapshot(w);
    const taken = requests(w.pool);
    let thrown: unknown;
    try {
      await run(w);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(error);
    expect(thrown).toBeInstanceOf(LoadBalancerError);
    const e = thrown as LoadBalancerError;
    expect(e.message).toContain(names);
    if (e instanceof LoadBalancerConfigError) {
      expect(e.code).toBe('LB_CONFIG');
      expect(e.field.endsWith(names) || e.field === names).toBe(true);
    }

    // Nothing moved: same backends in the same states, no listener or timer left behind...
    expect(snapshot(w)).toEqual(before);
    // ...and the pools still work. (A case may have taken and returned one lease itself.)
    const lease = w.pool.acquire();
    expect(lease.release({ ok: true, latencyMs: 1 })).toBe(true);
    expect(requests(w.pool) - taken).toBeGreaterThanOrEqual(1);
    expect(requests(w.pool) - taken).toBeLessThanOrEqual(2);
    w.hashed.acquire({ key: 'user-1' }).release();
    expect(w.pool.stats().inFlight).toBe(0);
    expect(w.hashed.stats().inFlight).toBe(0);
  });
});
