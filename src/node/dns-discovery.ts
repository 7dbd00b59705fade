/**
 * DNS discovery sources on `node:dns` (c-ares, through `dns.promises.Resolver`): A/AAAA records
 * of a host name, and SRV records of a service name.
 */
import type { ResolverOptions } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  PollingDiscovery,
  type PollingDiscoveryOptions,
  SCHEDULE_KEYS,
} from '../discovery/polling-discovery.js';
import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { BackendInit } from '../types.js';
import {
  checkNumber,
  checkOptions,
  checkString,
  hasMethods,
  isPlainObject,
  optNumber,
} from '../validate.js';

/** The resolver calls the DNS sources make; `dns.promises.Resolver` fits. */
export interface DnsResolverLike {
  resolve4(hostname: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(hostname: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolveSrv(
    hostname: string,
  ): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
  /** Cancels every outstanding query (called on timeout and close when present). */
  cancel?(): void;
}

/** Which address records to ask for: `4` (A), `6` (AAAA) or `0` (both). */
export type DnsFamily = 0 | 4 | 6;

/** Options shared by {@link DnsDiscovery} and {@link DnsSrvDiscovery}. */
export interface DnsCommonOptions extends Omit<PollingDiscoveryOptions, 'poll'> {
  /**
   * Which address records to use: 4 (A), 6 (AAAA) or 0 (both, queried in parallel).
   * @default 0
   */
  family?: DnsFamily;
  /**
   * URL scheme of the backends.
   * @default 'http'
   */
  scheme?: string;
  /**
   * Base path appended to every backend URL, e.g. `/v1`.
   * @default ''
   */
  basePath?: string;
  /**
   * Locality label given to every discovered backend.
   * @default undefined
   */
  zone?: string;
  /**
   * DNS servers to ask (`Resolver#setServers` format, e.g. `['10.0.0.2', '127.0.0.1:5353']`).
   * @default the system's servers
   */
  servers?: readonly string[];
  /**
   * Options of the `dns.promises.Resolver` created for this source (`timeout` per try in ms,
   * `tries`). Ignored when `resolver` is given.
   * @default {}
   */
  resolverOptions?: ResolverOptions;
  /**
   * A resolver to use instead of creating one (shared resolvers are not cancelled on close).
   * @default a new dns.promises.Resolver
   */
  resolver?: DnsResolverLike;
}

/** Options of {@link DnsDiscovery}. */
export interface DnsDiscoveryOptions extends DnsCommonOptions {
  /** The host name whose addresses are the backends, e.g. `api.internal`. */
  hostname: string;
  /** The port every backend listens on. */
  port: number;
  /**
   * Weight of every discovered backend.
   * @default 1
   */
  weight?: number;
}

/** Options of {@link DnsSrvDiscovery}. */
export interface DnsSrvDiscoveryOptions extends DnsCommonOptions {
  /** The SRV name, e.g. `_http._tcp.api.internal` (RFC 2782 `_service._proto.name`). */
  service: string;
  /**
   * The weight given to SRV records of weight 0. The pool needs weights > 0; RFC 2782 asks
   * that weight-0 records get "a very small chance" when others have weight, and an equal
   * chance among themselves, which a small equal weight gives.
   * @default 0.01
   */
  zeroWeight?: number;
}

const COMMON_KEYS = [
  ...SCHEDULE_KEYS,
  'family',
  'scheme',
  'basePath',
  'zone',
  'servers',
  'resolverOptions',
  'resolver',
] as const;

/** Answers that mean "no such records" rather than "could not ask" (c-ares codes). */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND']);

interface AddressAnswer {
  addresses: { address: string; family: 4 | 6; ttl: number }[];
}

interface Shared {
  resolver: DnsResolverLike;
  ownsResolver: boolean;
  family: DnsFamily;
  scheme: string;
  basePath: string;
  zone: string | undefined;
}

/**
 * The backends behind one host name: every A/AAAA address becomes a backend
 * `scheme://address:port/basePath` with id `address:port` (`[v6]:port` for IPv6). Refreshes when
 * the shortest record TTL runs out, clamped to `[minRefreshMs, maxRefreshMs]`.
 *
 * A failed lookup (SERVFAIL, timeout, refused) is a failed answer; NODATA and NXDOMAIN are an
 * empty answer. Neither changes the pool (see `DiscoveryBinding` in `loadwise`). With
 * `family: 0`, a failure of either lookup fails the whole answer, so a flaky AAAA server cannot
 * remove every IPv6 backend. The binding's `addressPolicy` decides which addresses may become
 * backends (by default not 0.0.0.0, `::`, cloud metadata, link-local or multicast ones).
 *
 * @example
 * ```ts
 * import { BackendPool, attachDiscovery } from 'loadwise';
 * import { DnsDiscovery } from 'loadwise/node';
 *
 * const pool = new BackendPool({ slowStartMs: 30_000 });
 * attachDiscovery(pool, new DnsDiscovery({ hostname: 'api.internal', port: 8080 }));
 * ```
 */
export class DnsDiscovery extends PollingDiscovery {
  /** The host name resolved. */
  readonly hostname: string;
  /** The port of every backend. */
  readonly port: number;
  readonly #weight: number;
  readonly #shared: Shared;

  constructor(options: DnsDiscoveryOptions) {
    const o = checkOptions('DnsDiscoveryOptions', options, [
      ...COMMON_KEYS,
      'hostname',
      'port',
      'weight',
    ]);
    const hostname = checkString('hostname', o.hostname);
    super(pollingOptions(o, `dns:${hostname}`));
    this.hostname = hostname;
    this.port = checkNumber('port', o.port, { min: 1, max: 65_535, integer: true });
    this.#weight = optNumber('weight', o.weight, 1, { min: 0, minExclusive: true });
    this.#shared = sharedOptions(o);
  }

  protected override async poll(signal: AbortSignal): Promise<{
    endpoints: BackendInit[];
    ttlMs?: number;
  }> {
    const s = this.#shared;
    const { addresses } = await withAbort(s, signal, () =>
      resolveAddresses(s.resolver, this.hostname, s.family),
    );
    const endpoints = addresses
      .map((a) =>
        endpoint(s, a.address, a.family, this.port, this.#weight, {
          discovery: 'dns',
          hostname: this.hostname,
        }),
      )
      .sort(byId);
    if (addresses.length === 0) return { endpoints };
    return { endpoints, ttlMs: Math.min(...addresses.map((a) => a.ttl)) * 1000 };
  }

  protected override onClose(): void {
    super.onClose();
    if (this.#shared.ownsResolver) this.#shared.resolver.cancel?.();
  }
}

/**
 * The backends of an SRV service (RFC 2782): each record's target is resolved to its addresses,
 * each address with the record's port becomes a backend (id `address:port`). SRV priorities
 * map to the pool's priority tiers, densely ranked in ascending order (the best priority is
 * tier 0, the next tier 1, ...), so a worse tier takes traffic only while every better one has
 * no healthy backend. SRV weights become pool weights, shared equally by a target's addresses;
 * weight 0 becomes `zeroWeight`. A target of `.` ("service not available here") is skipped.
 *
 * Refresh: `node:dns` does not report SRV TTLs, so the SRV set is read again at least every
 * `intervalMs`, sooner when a target's address TTL runs out, always within
 * `[minRefreshMs, maxRefreshMs]`. A failed lookup of the SRV name or of any target fails the
 * whole answer (the pool keeps its last good set).
 *
 * @example
 * ```ts
 * import { BackendPool, attachDiscovery } from 'loadwise';
 * import { DnsSrvDiscovery } from 'loadwise/node';
 *
 * const pool = new BackendPool({ slowStartMs: 30_000 });
 * attachDiscovery(pool, new DnsSrvDiscovery({ service: '_grpc._tcp.api.internal', scheme: 'http' }));
 * ```
 */
export class DnsSrvDiscovery extends PollingDiscovery {
  /** The SRV name resolved. */
  readonly service: string;
  readonly #zeroWeight: number;
  readonly #intervalMs: number;
  readonly #shared: Shared;

  constructor(options: DnsSrvDiscoveryOptions) {
    const o = checkOptions('DnsSrvDiscoveryOptions', options, [
      ...COMMON_KEYS,
      'service',
      'zeroWeight',
    ]);
    const service = checkString('service', o.service);
    super(pollingOptions(o, `dns-srv:${service}`));
    this.service = service;
    this.#zeroWeight = optNumber('zeroWeight', o.zeroWeight, 0.01, { min: 0, minExclusive: true });
    this.#intervalMs = o.intervalMs ?? 30_000;
    this.#shared = sharedOptions(o);
  }

  protected override async poll(signal: AbortSignal): Promise<{
    endpoints: BackendInit[];
    ttlMs?: number;
  }> {
    const s = this.#shared;
    return withAbort(s, signal, async () => {
      let records: Awaited<ReturnType<DnsResolverLike['resolveSrv']>>;
      try {
        records = await s.resolver.resolveSrv(this.service);
      } catch (error) {
        if (isEmptyError(error)) return { endpoints: [] };
        throw error;
      }
      // RFC 2782: a lone target of "." means the service is decidedly not available.
      const usable = records.filter((r) => r.name !== '' && r.name !== '.');
      const ranks = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
      const targets = [...new Set(usable.map((r) => r.name))];
      const resolved = new Map<string, AddressAnswer['addresses']>();
      await Promise.all(
        targets.map(async (target) => {
          resolved.set(target, (await resolveTarget(s, target)).addresses);
        }),
      );
      // One id may come from several records (same target and port): keep the best tier and,
      // within it, add the weights up.
      const merged = new Map<string, { init: BackendInit; priority: number }>();
      let ttl = this.#intervalMs / 1000;
      for (const r of usable) {
        const addresses = resolved.get(r.name) ?? [];
        const priority = ranks.indexOf(r.priority);
        const weight = (r.weight === 0 ? this.#zeroWeight : r.weight) / (addresses.length || 1);
        for (const a of addresses) {
          ttl = Math.min(ttl, a.ttl);
          const init = endpoint(s, a.address, a.family, r.port, weight, {
            discovery: 'dns-srv',
            service: this.service,
            target: r.name,
          });
          init.priority = priority;
          const id = init.id!;
          const seen = merged.get(id);
          if (seen === undefined || priority < seen.priority) merged.set(id, { init, priority });
          else if (priority === seen.priority) seen.init.weight = (seen.init.weight ?? 0) + weight;
        }
      }
      // Servers rotate record order; a sorted answer keeps the pool's order stable.
      const endpoints = [...merged.values()]
        .map((v) => v.init)
        .sort((x, y) => (x.priority ?? 0) - (y.priority ?? 0) || byId(x, y));
      if (endpoints.length === 0) return { endpoints };
      return { endpoints, ttlMs: ttl * 1000 };
    });
  }

  protected override onClose(): void {
    super.onClose();
    if (this.#shared.ownsResolver) this.#shared.resolver.cancel?.();
  }
}

function pollingOptions(o: DnsCommonOptions, name: string): PollingDiscoveryOptions {
  const p: PollingDiscoveryOptions = { name: o.name ?? name };
  if (o.intervalMs !== undefined) p.intervalMs = o.intervalMs;
  if (o.minRefreshMs !== undefined) p.minRefreshMs = o.minRefreshMs;
  if (o.maxRefreshMs !== undefined) p.maxRefreshMs = o.maxRefreshMs;
  if (o.timeoutMs !== undefined) p.timeoutMs = o.timeoutMs;
  if (o.clock !== undefined) p.clock = o.clock;
  return p;
}

function sharedOptions(o: DnsCommonOptions): Shared {
  const family = o.family ?? 0;
  if (family !== 0 && family !== 4 && family !== 6) {
    throw new LoadBalancerConfigError('family', o.family, '4 (A), 6 (AAAA) or 0 (both)');
  }
  const scheme = o.scheme === undefined ? 'http' : checkString('scheme', o.scheme);
  if (!/^[a-z][a-z0-9+.-]*$/i.test(scheme)) {
    throw new LoadBalancerConfigError('scheme', scheme, 'a URL scheme such as "http" or "https"');
  }
  const basePath =
    o.basePath === undefined ? '' : checkString('basePath', o.basePath, { nonEmpty: false });
  // Control characters would be dropped by the URL parser (and are refused in backend URLs).
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
  if (basePath !== '' && (!basePath.startsWith('/') || /[?#\x00-\x20\x7f]/.test(basePath))) {
    throw new LoadBalancerConfigError(
      'basePath',
      basePath,
      'a path starting with "/", without ?, #, spaces or control characters',
    );
  }
  const zone = o.zone === undefined ? undefined : checkString('zone', o.zone);
  if (o.resolver !== undefined) {
    if (!hasMethods(o.resolver, ['resolve4', 'resolve6', 'resolveSrv'])) {
      throw new LoadBalancerConfigError(
        'resolver',
        o.resolver,
        'a dns.promises.Resolver (or an object with resolve4, resolve6 and resolveSrv)',
      );
    }
    return { resolver: o.resolver, ownsResolver: false, family, scheme, basePath, zone };
  }
  if (o.resolverOptions !== undefined && !isPlainObject(o.resolverOptions)) {
    throw new LoadBalancerConfigError('resolverOptions', o.resolverOptions, 'an options object');
  }
  let resolver: Resolver;
  try {
    resolver = new Resolver(o.resolverOptions);
  } catch (cause) {
    // node:dns checks its options itself (a timeout of 'x', tries -1) with plain TypeErrors and
    // RangeErrors.
    throw new LoadBalancerConfigError(
      'resolverOptions',
      o.resolverOptions,
      'options dns.promises.Resolver accepts ({ timeout, tries, maxTimeout })',
      { cause },
    );
  }
  if (o.servers !== undefined) {
    if (!Array.isArray(o.servers) || o.servers.some((x) => typeof x !== 'string')) {
      throw new LoadBalancerConfigError(
        'servers',
        o.servers,
        'an array of "ip" or "ip:port" strings',
      );
    }
    try {
      resolver.setServers([...o.servers]);
    } catch (cause) {
      throw new LoadBalancerConfigError(
        'servers',
        o.servers,
        'addresses as dns.setServers accepts them (e.g. "10.0.0.2", "127.0.0.1:5353")',
        { cause },
      );
    }
  }
  return { resolver, ownsResolver: true, family, scheme, basePath, zone };
}

function endpoint(
  s: Shared,
  address: string,
  family: 4 | 6,
  port: number,
  weight: number,
  metadata: Record<string, unknown>,
): BackendInit {
  const host = family === 6 ? `[${address}]` : address;
  const init: BackendInit = {
    id: `${host}:${port}`,
    url: `${s.scheme}://${host}:${port}${s.basePath}`,
    weight,
    metadata,
  };
  if (s.zone !== undefined) init.zone = s.zone;
  return init;
}

function byId(x: BackendInit, y: BackendInit): number {
  const a = x.id ?? '';
  const b = y.id ?? '';
  return a < b ? -1 : a > b ? 1 : 0;
}

function isEmptyError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && EMPTY_CODES.has(code);
}

async function resolveAddresses(
  resolver: DnsResolverLike,
  hostname: string,
  family: DnsFamily,
): Promise<AddressAnswer> {
  const lookup = async (f: 4 | 6): Promise<AddressAnswer['addresses']> => {
    try {
      const records =
        f === 4
          ? await resolver.resolve4(hostname, { ttl: true })
          : await resolver.resolve6(hostname, { ttl: true });
      // A resolver other than node:dns may answer anything; an answer that is not an address of
      // the family asked for (a host name, a path smuggled into the URL) fails the whole answer,
      // so the pool keeps its last good set.
      for (const r of records) {
        if (typeof r.address !== 'string' || isIP(r.address) !== f) {
          throw new LoadBalancerConfigError(
            `${f === 4 ? 'A' : 'AAAA'} record of ${hostname}`,
            r.address,
            `an IPv${f} address`,
          );
        }
      }
      return records.map((r) => ({ address: r.address, family: f, ttl: r.ttl }));
    } catch (error) {
      if (isEmptyError(error)) return [];
      throw error;
    }
  };
  const families: (4 | 6)[] = family === 0 ? [4, 6] : [family];
  const lists = await Promise.all(families.map(lookup));
  return { addresses: lists.flat() };
}

/** An SRV target is normally a host name; an address literal is taken as it is. */
async function resolveTarget(s: Shared, target: string): Promise<AddressAnswer> {
  const literal = isIP(target);
  if (literal === 4 || literal === 6) {
    if (s.family !== 0 && s.family !== literal) return { addresses: [] };
    return { addresses: [{ address: target, family: literal, ttl: Number.POSITIVE_INFINITY }] };
  }
  return resolveAddresses(s.resolver, target, s.family);
}

/**
 * Runs one lookup; when the poll's signal aborts (timeout or close), cancels the source's own
 * resolver so no query outlives the poll.
 */
async function withAbort<T>(s: Shared, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  if (!s.ownsResolver) return fn();
  const onAbort = (): void => s.resolver.cancel?.();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
