import { LoadBalancerConfigError } from '../errors/config-error.js';
import type { Random } from '../random.js';
import type { TierZoneLoad, ZoneLoad, ZoneRoutingMode } from '../types.js';
import { checkNumber, checkOptions, checkString, isPlainObject, optNumber } from '../validate.js';
import type { BackendRecord } from './backend-record.js';
import { PointDraws } from './draws.js';
import type { PriorityLoad } from './priority-load.js';

/**
 * Zone-aware routing as Envoy does it within a priority level (source/extensions/
 * load_balancing_policies/common/load_balancer_impl.cc: `ZoneAwareLoadBalancerBase`,
 * `earlyExitNonLocalityRouting`, `regenerateLocalityRoutingStructures`,
 * `calculateLocalityPercentages`, `tryChooseLocalLocalityHosts`; docs intro/arch_overview/
 * upstream/load_balancing/zone_aware.rst). In basis points (1/100 of a percent), as Envoy:
 *
 * - a zone's upstream share is its healthy backends over the tier's, its caller share is the
 *   calling fleet's share in it;
 * - when the local zone's upstream share is at least its caller share, every call stays local
 *   (LocalityDirect);
 * - otherwise the local zone takes upstream / caller of the calls, and the rest goes to the
 *   other zones in proportion to their residual capacity, upstream − caller where positive
 *   (LocalityResidual);
 * - it applies only with at least two zones on both sides, callers in the local zone, a
 *   healthy backend in the local zone and `minClusterSize` healthy backends in the tier (Envoy's
 *   `min_cluster_size`, 6), never to a tier in panic, and to `routingEnabled` percent of picks.
 *
 * The pool calls {@link ZoneRouting.compute} when health or membership changes, never per pick;
 * a pick draws its tier and then its zone from batches of draws of the pool's random source.
 */

/**
 * Zone-aware routing: the pool's `zoneAware` option. Calls stay in this process's zone while it
 * has enough healthy capacity, and spill to the other zones in proportion as Envoy's zone aware
 * routing does.
 *
 * @example
 * ```ts
 * new BackendPool({
 *   backends: [
 *     { url: 'http://10.0.1.10:8080', zone: 'us-east-1a' },
 *     { url: 'http://10.0.2.10:8080', zone: 'us-east-1b' },
 *     // ...
 *   ],
 *   zoneAware: { localZone: process.env.ZONE ?? 'us-east-1a' },
 * });
 * ```
 */
export interface ZoneAwareOptions {
  /**
   * The zone this process runs in, as the backends' `zone` labels name it (an availability zone
   * such as `us-east-1a`, a rack, a data centre). Required.
   */
  localZone: string;
  /**
   * Zone-aware routing applies in a priority tier only while the tier has at least this many
   * healthy backends (Envoy's `min_cluster_size`): in a small pool a zone's one or two backends
   * would take a large share of the calls. An integer >= 0.
   * @default 6
   */
  minClusterSize?: number;
  /**
   * The share of picks zone-aware routing applies to, from 0 to 1, in whole percent (Envoy's
   * `routing_enabled`, 100% by default, rounded to a whole percent as Envoy rounds it); the
   * other picks go to any zone. Lower it to roll the routing out gradually.
   * @default 1
   */
  routingEnabled?: number;
  /**
   * How many instances of the calling service run in each zone, or their capacity in any unit
   * (Envoy reads this from the membership of its local cluster). With it, the split keeps every
   * backend's load even across the calling fleet: a zone with a larger share of the callers
   * than of the healthy backends keeps only what its backends can take and spills the rest.
   * Without it, the callers are assumed to be spread over the zones like the backends (every
   * member of the tier, in any state), so calls stay local until the local zone loses capacity.
   * Must count callers in `localZone`.
   * @default the backends' own spread over the zones
   * @example
   * ```ts
   * callerZones: { 'us-east-1a': 12, 'us-east-1b': 12, 'us-east-1c': 6 }
   * ```
   */
  callerZones?: Readonly<Record<string, number>>;
}

/**
 * The `zoneAware` option, checked; undefined when it is off.
 * @internal
 */
export function parseZoneAware(value: unknown): ZoneRules | undefined {
  if (value === undefined || value === false) return undefined;
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      'zoneAware',
      value,
      'false or { localZone, minClusterSize?, routingEnabled?, callerZones? }',
    );
  }
  const o = checkOptions<ZoneAwareOptions>('zoneAware', value as unknown as ZoneAwareOptions, [
    'localZone',
    'minClusterSize',
    'routingEnabled',
    'callerZones',
  ]);
  const localZone = checkString('zoneAware.localZone', o.localZone);
  const minClusterSize = optNumber('zoneAware.minClusterSize', o.minClusterSize, 6, {
    min: 0,
    integer: true,
  });
  const routingEnabled = Math.round(
    optNumber('zoneAware.routingEnabled', o.routingEnabled, 1, { min: 0, max: 1 }) * 100,
  );
  let callerZones: Map<string, number> | undefined;
  if (o.callerZones !== undefined) {
    if (!isPlainObject(o.callerZones)) {
      throw new LoadBalancerConfigError(
        'zoneAware.callerZones',
        o.callerZones,
        "an object of zone → caller count, such as { 'us-east-1a': 12, 'us-east-1b': 12 }",
      );
    }
    callerZones = new Map();
    for (const [zone, n] of Object.entries(o.callerZones)) {
      callerZones.set(zone, checkNumber(`zoneAware.callerZones.${zone}`, n, { min: 0 }));
    }
    if (!((callerZones.get(localZone) ?? 0) > 0)) {
      throw new LoadBalancerConfigError(
        `zoneAware.callerZones.${localZone}`,
        callerZones.get(localZone),
        'a count > 0 for the local zone (this process is one of the callers there)',
      );
    }
  }
  return { localZone, minClusterSize, routingEnabled, callerZones };
}

/** The pool's zone-aware routing rules, checked. @internal */
export interface ZoneRules {
  /** This process's zone. */
  readonly localZone: string;
  /** Fewer healthy backends than this in a tier turn zone routing off there. */
  readonly minClusterSize: number;
  /** Percent (0 to 100) of picks zone routing applies to. */
  readonly routingEnabled: number;
  /** Callers per zone, or undefined to assume callers spread over zones like the backends. */
  readonly callerZones: ReadonlyMap<string, number> | undefined;
}

/** One zone of one tier: the input of {@link splitZones}. @internal */
export interface ZoneCounts {
  readonly zone: string | undefined;
  /** Every member of the tier in the zone, whatever its state: the default caller weight. */
  readonly members: number;
  /** Members that are not draining. */
  readonly backends: number;
  readonly healthy: number;
}

/** The split of one tier's calls across zones. @internal */
export interface ZoneSplit {
  readonly figures: TierZoneLoad;
  /**
   * The zones picks are drawn over, in the order of `figures.zones` (those with a load > 0),
   * as indices into the counts given, with each one's load in basis points (summing to 10000).
   */
  readonly routed: readonly { readonly index: number; readonly points: number }[];
}

/** Basis points in a whole: Envoy samples `random() % 10000` against them. */
const WHOLE = 10_000;

/**
 * Envoy's routing state for one tier, from its zones' counts (the local zone may be among them
 * or not). Pure, in integer basis points as Envoy computes them, so Envoy's test cases come out
 * the same.
 * @internal
 */
export function splitZones(
  priority: number,
  counts: readonly ZoneCounts[],
  rules: ZoneRules,
  panic: boolean,
): ZoneSplit {
  const local = rules.localZone;
  let healthyTotal = 0;
  let memberTotal = 0;
  for (const c of counts) {
    healthyTotal += c.healthy;
    memberTotal += c.members;
  }
  const callers = rules.callerZones;
  let callerTotal = 0;
  let callerZoneCount = 0;
  if (callers === undefined) {
    callerTotal = memberTotal;
    for (const c of counts) if (c.members > 0) callerZoneCount++;
  } else {
    for (const n of callers.values()) {
      callerTotal += n;
      if (n > 0) callerZoneCount++;
    }
  }
  const callerCount = (zone: string | undefined, members: number): number =>
    callers === undefined ? members : zone === undefined ? 0 : (callers.get(zone) ?? 0);
  // calculateLocalityPercentages: shares of 10000, rounded down.
  const upstream = counts.map((c) =>
    healthyTotal > 0 ? Math.floor((WHOLE * c.healthy) / healthyTotal) : 0,
  );
  const caller = counts.map((c) =>
    callerTotal > 0 ? Math.floor((WHOLE * callerCount(c.zone, c.members)) / callerTotal) : 0,
  );
  const li = counts.findIndex((c) => c.zone === local);
  const localCallers =
    callers === undefined ? (li < 0 ? 0 : counts[li]!.members) : (callers.get(local) ?? 0);

  const result = (
    mode: ZoneRoutingMode,
    why: string,
    routed: { index: number; points: number }[],
  ): ZoneSplit => {
    const load = new Map<number, number>();
    for (const r of routed) load.set(r.index, r.points);
    // The local zone first, then the others in the order given.
    const order = counts.map((_, i) => i);
    if (li > 0) order.sort((a, b) => (a === li ? -1 : b === li ? 1 : a - b));
    const zones: ZoneLoad[] = order.map((i) => {
      const c = counts[i]!;
      return {
        zone: c.zone,
        local: i === li,
        backends: c.backends,
        healthy: c.healthy,
        healthyShare: upstream[i]! / 100,
        callerShare: caller[i]! / 100,
        load: mode === 'off' ? undefined : (load.get(i) ?? 0) / 100,
      };
    });
    const rank = new Map(order.map((i, k) => [i, k]));
    routed.sort((a, b) => rank.get(a.index)! - rank.get(b.index)!);
    return {
      figures: {
        priority,
        localZone: local,
        mode,
        why,
        routingEnabled: rules.routingEnabled,
        zones,
      },
      routed,
    };
  };
  const off = (why: string): ZoneSplit => result('off', why, []);

  // hostSourceToUse: a tier in panic routes over all its hosts.
  if (panic) {
    return off(
      `tier ${priority} is in panic, so every backend of it that is not draining takes calls, in every zone`,
    );
  }
  // earlyExitNonLocalityRouting, in Envoy's order.
  if (counts.length < 2) {
    return off(
      `the backends of tier ${priority} are in ${counts.length === 0 ? 'no zone' : 'one zone'}`,
    );
  }
  if (callerZoneCount < 2) {
    return off('callerZones counts callers in fewer than two zones');
  }
  if (localCallers <= 0 || li < 0) {
    return off(
      li < 0
        ? `no backend of tier ${priority} is in the local zone ${local}`
        : `callerZones counts no caller in the local zone ${local}`,
    );
  }
  if (counts[li]!.healthy === 0) {
    // Older Envoy (earlyExitNonLocalityRouting, lb_local_cluster_not_ok): no healthy local
    // host, no locality routing. Current Envoy routes by residual capacity instead.
    return off(`no backend in the local zone ${local} is healthy, so calls go to every zone`);
  }
  if (healthyTotal < rules.minClusterSize) {
    return off(
      `tier ${priority} has ${healthyTotal} healthy backends, fewer than minClusterSize (${rules.minClusterSize})`,
    );
  }

  const lu = upstream[li]!;
  const lc = caller[li]!;
  const shares = `${local} holds ${lu / 100}% of the healthy backends and ${lc / 100}% of the callers`;
  if (lu > 0 && lu >= lc) {
    return result('direct', `${shares}, so every call stays in ${local}`, [
      { index: li, points: WHOLE },
    ]);
  }
  // LocalityResidual: what the local zone can take, then residual capacity elsewhere.
  const localPoints = lc > 0 ? Math.floor((lu * WHOLE) / lc) : 0;
  const residual = counts.map((_, i) => (i === li ? 0 : Math.max(0, upstream[i]! - caller[i]!)));
  let residualTotal = 0;
  for (const r of residual) residualTotal += r;
  let weights = residual;
  if (residualTotal === 0) {
    // Rounding left no residual anywhere (Envoy: "extremely unlikely", a random locality):
    // the other zones with a healthy backend, alike.
    weights = counts.map((c, i) => (i !== li && c.healthy > 0 ? 1 : 0));
    for (const w of weights) residualTotal += w;
  }
  const routed: { index: number; points: number }[] = [];
  if (localPoints > 0) routed.push({ index: li, points: localPoints });
  const spill = WHOLE - localPoints;
  let cumulative = 0;
  let given = 0;
  for (let i = 0; i < counts.length; i++) {
    if (weights[i]! === 0) continue;
    cumulative += weights[i]!;
    const upTo = residualTotal > 0 ? Math.round((spill * cumulative) / residualTotal) : 0;
    if (upTo > given) routed.push({ index: i, points: upTo - given });
    given = upTo;
  }
  return result(
    'residual',
    `${shares}, so ${local} takes ${lu / 100} / ${lc / 100} = ${localPoints / 100}% of the calls and the rest goes to the other zones in proportion to their spare capacity (healthy share above caller share)`,
    routed,
  );
}

/** How one tier that takes calls routes its picks. */
interface TierRoute {
  readonly priority: number;
  /** The tier's load summed with the better tiers' (1 to 100), where a tier draw lands. */
  readonly upTo: number;
  /** Every candidate of the tier. */
  readonly whole: BackendRecord[];
  /** Candidates per routed zone, or empty when zone routing is off for the tier. */
  readonly zones: BackendRecord[][];
  /** Cumulative basis points of `zones` (exclusive upper bounds, the last 10000). */
  readonly zoneUpTo: Uint16Array;
  /** Percent of picks zone routing applies to; the others take `whole`. */
  readonly routingEnabled: number;
  /** The probability of each array a pick in this tier can receive (for the skew monitor). */
  readonly shares: readonly { readonly candidates: BackendRecord[]; readonly p: number }[];
}

/**
 * The arrays picks are drawn over: the tier first (Envoy's `choosePriority`), then, with
 * zone-aware routing, the zone within it. Built when health or membership changes.
 * @internal
 */
export class ZoneRouting {
  /** The candidates of every pick when one array serves them all; else undefined. */
  readonly only: BackendRecord[] | undefined;
  /** Every array a pick may receive, best tier first: announced to the algorithm. */
  readonly arrays: BackendRecord[][];
  /** Zone routing per tier that takes calls; empty when the pool has no `zoneAware` rules. */
  readonly tiers: readonly TierZoneLoad[];
  readonly #routes: readonly TierRoute[];

  private constructor(routes: TierRoute[], tiers: TierZoneLoad[]) {
    this.#routes = routes;
    this.tiers = tiers;
    const arrays: BackendRecord[][] = [];
    for (const r of routes) {
      if (r.zones.length === 0 || r.routingEnabled < 100) arrays.push(r.whole);
      for (const z of r.zones) arrays.push(z);
    }
    this.arrays = arrays;
    this.only = arrays.length === 1 ? arrays[0] : undefined;
  }

  /** The routing of an empty pool. */
  static readonly EMPTY: ZoneRouting = new ZoneRouting([], []);

  /**
   * The routing over `load`'s tiers that take calls, with each tier split by zone when `rules`
   * are given. `members` in membership order.
   */
  static compute(
    load: PriorityLoad,
    members: readonly BackendRecord[],
    rules: ZoneRules | undefined,
  ): ZoneRouting {
    const routes: TierRoute[] = [];
    const tiers: TierZoneLoad[] = [];
    for (const s of load.snapshots) {
      const whole = s.candidates;
      if (rules === undefined) {
        routes.push({
          priority: s.priority,
          upTo: s.upTo,
          whole,
          zones: [],
          zoneUpTo: new Uint16Array(0),
          routingEnabled: 100,
          shares: [{ candidates: whole, p: 1 }],
        });
        continue;
      }
      // The tier's zones in membership order, with their counts and healthy candidates.
      const byZone = new Map<string | undefined, { counts: ZoneCounts; list: BackendRecord[] }>();
      for (const r of members) {
        if (r.priority !== s.priority) continue;
        let z = byZone.get(r.zone);
        if (z === undefined) {
          z = { counts: { zone: r.zone, members: 0, backends: 0, healthy: 0 }, list: [] };
          byZone.set(r.zone, z);
        }
        const c = z.counts as { members: number; backends: number; healthy: number };
        c.members++;
        if (!r.draining) c.backends++;
        if (r.state === 'healthy') c.healthy++;
      }
      if (!s.figures.panic) {
        for (const r of whole) byZone.get(r.zone)!.list.push(r);
      }
      const entries = [...byZone.values()];
      const split = splitZones(
        s.priority,
        entries.map((e) => e.counts),
        rules,
        s.figures.panic,
      );
      tiers.push(split.figures);
      const zones = split.routed.map((r) => entries[r.index]!.list);
      const zoneUpTo = new Uint16Array(zones.length);
      let upTo = 0;
      split.routed.forEach((r, k) => {
        upTo += r.points;
        zoneUpTo[k] = upTo;
      });
      const routingEnabled = zones.length === 0 ? 100 : rules.routingEnabled;
      const zoned = routingEnabled / 100;
      const shares =
        zones.length === 0
          ? [{ candidates: whole, p: 1 }]
          : [
              ...(routingEnabled < 100 ? [{ candidates: whole, p: 1 - zoned }] : []),
              ...split.routed.map((r, k) => ({
                candidates: zones[k]!,
                p: (zoned * r.points) / WHOLE,
              })),
            ];
      routes.push({
        priority: s.priority,
        upTo: s.upTo,
        whole,
        zones,
        zoneUpTo,
        routingEnabled,
        shares,
      });
    }
    return new ZoneRouting(routes, tiers);
  }

  /**
   * The candidates for the next pick: a tier drawn against the tiers' loads (a draw only when
   * several share the calls), then a zone drawn against the tier's zone split. Allocates
   * nothing.
   */
  choose(tierDraws: PointDraws, zoneDraws: PointDraws): BackendRecord[] {
    const routes = this.#routes;
    const last = routes.length - 1;
    let route = routes[last]!;
    if (last > 0) {
      const point = tierDraws.next();
      for (let i = 0; i < last; i++) {
        const r = routes[i]!;
        if (point <= r.upTo) {
          route = r;
          break;
        }
      }
    }
    const zones = route.zones;
    const n = zones.length;
    if (n === 0) return route.whole;
    // Envoy's featureEnabled(routing_enabled): the other picks use the whole tier.
    if (route.routingEnabled < 100 && tierDraws.next() > route.routingEnabled) return route.whole;
    if (n === 1) return zones[0]!;
    const point = zoneDraws.next();
    const upTo = route.zoneUpTo;
    let i = 0;
    while (i < n - 1 && point >= upTo[i]!) i++;
    return zones[i]!;
  }

  /**
   * Each array a pick can receive with its probability over all picks (the tier's load, 0 to 1,
   * times the zone's share), for the skew monitor's fair shares.
   */
  shares(tierLoad: (priority: number) => number): { candidates: BackendRecord[]; p: number }[] {
    const out: { candidates: BackendRecord[]; p: number }[] = [];
    for (const r of this.#routes) {
      const l = tierLoad(r.priority);
      for (const s of r.shares) out.push({ candidates: s.candidates, p: l * s.p });
    }
    return out;
  }

  /** Whether `other` routes by zone the same way (same tiers, modes and zone loads). */
  sameSplit(other: ZoneRouting): boolean {
    const a = this.tiers;
    const b = other.tiers;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x.priority !== y.priority || x.mode !== y.mode || x.zones.length !== y.zones.length)
        return false;
      for (let k = 0; k < x.zones.length; k++) {
        const p = x.zones[k]!;
        const q = y.zones[k]!;
        if (p.zone !== q.zone || p.load !== q.load) return false;
      }
    }
    return true;
  }

  /** How the calls split by zone and why, in a sentence for `explain()`; '' without rules. */
  describe(): string {
    if (this.tiers.length === 0) return '';
    const parts = this.tiers.map((t) => {
      const loads =
        t.mode === 'off'
          ? ''
          : `: ${t.zones
              .filter((z) => z.load !== undefined && z.load > 0)
              .map((z) => `${z.zone ?? '(no zone)'} ${z.load}%`)
              .join(
                ', ',
              )}${t.routingEnabled < 100 ? ` of the ${t.routingEnabled}% of picks it applies to` : ''}`;
      return `tier ${t.priority} ${t.mode}${loads} (${t.why})`;
    });
    return `zone-aware routing from ${this.tiers[0]!.localZone}: ${parts.join('; ')}`;
  }
}

/** Points 0 to 9,999 for drawing zones against their shares (in basis points), from `random`. */
export function zoneDraws(random: Random): PointDraws {
  return new PointDraws(random, WHOLE, 0);
}
