import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  checkFleetPosition,
  checkSpanFields,
  type FleetPosition,
  fleetOffset,
  ringOf,
  type SubsetPlacement,
  sliceOf,
  subsetHash,
} from '../fleet/subset.js';
import type {
  Algorithm,
  AlgorithmEnv,
  AlgorithmExplanation,
  BackendView,
  PickContext,
} from '../types.js';
import { checkFunction, checkNumber, checkOptions, isPlainObject } from '../validate.js';
import { PowerOfTwoChoices } from './power-of-two-choices.js';
import { snapshotHolding, snapshotIndex } from './shared.js';

/** Options of {@link DeterministicSubset}. */
export interface DeterministicSubsetOptions {
  /**
   * The algorithm that picks inside the subset. An instance serves one pool only.
   * @default new PowerOfTwoChoices()
   */
  algorithm?: Algorithm;
  /**
   * The subset size to aim for. Each client uses `c × m / n` backends (`m` backends, `n`
   * clients), where `c`, the number of subsets every backend is in, is the whole number nearest
   * to `size × n / m`: within `m / 2n` of `size`, and exactly `size` when `size × n` is a multiple
   * of `m` (20 at 500 clients and 1,000 backends). Every backend is then in exactly `c` subsets.
   * The SRE book suggests 20 to 100; Finagle keeps at least 12.
   * @default 20
   */
  size?: number;
  /** This client's index in its fleet, an integer in `[0, clientCount)`. Give it with `clientCount`, or give `fleet`. */
  clientIndex?: number;
  /** How many clients the fleet has. */
  clientCount?: number;
  /**
   * Reads this client's position in its fleet, instead of `clientIndex` and `clientCount`: called
   * once at construction and again by {@link DeterministicSubset.refresh}, which your code calls
   * when the fleet changes size.
   */
  fleet?: () => FleetPosition;
  /**
   * Turns the whole fleet's slices around the ring: a fraction in `[0, 1)`, or a name (the
   * calling service's) hashed into one. Fleets of the same size that call the same backends
   * should use different offsets, or their first subsets coincide. Every client of one fleet
   * must use the same offset.
   * @default 0
   */
  offset?: number | string;
  /**
   * Where the fleet's clients stand on the ring. `even` spreads calls exactly evenly over the
   * backends for any fleet size, and a client joining or leaving moves a few percent of the
   * fleet's assignments; `stable` (Ringsteady's van der Corput positions) moves nothing when a
   * client joins at the end of the fleet and only the leaving client's backends when one leaves,
   * keeps connections exactly balanced, but spreads calls less evenly (max/mean calls per
   * backend 1.05 at 500 clients × 1,000 backends, 1.25 at 260 clients). Every client of one fleet
   * must use the same placement. See `SubsetPlacement`.
   * @default 'even'
   */
  placement?: SubsetPlacement;
  /**
   * Widen when fewer than this share of the subset can take calls (unhealthy, ejected or
   * draining members): the subset then grows along the ring until it holds as many routable
   * backends as its size, or the whole pool. 0 never widens (the pool's panic rule alone
   * applies inside the subset).
   * @default 0.5
   */
  minEligibleShare?: number;
}

const KEYS = [
  'algorithm',
  'size',
  'clientIndex',
  'clientCount',
  'fleet',
  'offset',
  'placement',
  'minEligibleShare',
] as const;

/**
 * Deterministic subsetting: this client calls only its share of the backends, chosen so that
 * the clients of a fleet, each computing its own subset from its index and the fleet size,
 * load every backend equally (Finagle's deterministic aperture; see `deterministicSubset` for
 * the rule and its sources). With 500 clients and 1,000 backends, each client holds 20
 * backends instead of 1,000, and every backend serves exactly 10 clients.
 *
 * It wraps any algorithm, which picks inside the subset (weights, least load, hashing apply
 * there). Health composes: unhealthy, ejected and draining members are skipped as usual, and
 * when fewer than `minEligibleShare` of the subset can take calls the subset widens along the
 * ring, so calls never go nowhere while the pool has a routable backend. A retry that excludes
 * every member of the subset goes outside it.
 *
 * The subset is computed when membership or eligibility changes, never per pick: a pick costs
 * what the wrapped algorithm's costs.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({
 *   algorithm: new DeterministicSubset({
 *     algorithm: new LeastConnections(),
 *     clientIndex: Number(process.env.POD_ORDINAL),
 *     clientCount: Number(process.env.REPLICAS),
 *     size: 20,
 *   }),
 * });
 * ```
 */
export class DeterministicSubset implements Algorithm {
  readonly name: string;
  /** The algorithm that picks inside the subset. */
  readonly inner: Algorithm;
  /** The target subset size. */
  readonly size: number;
  readonly #fleet: (() => FleetPosition) | undefined;
  readonly #offset: number;
  /** Where the fleet's clients stand on the ring. */
  readonly placement: SubsetPlacement;
  readonly #minEligibleShare: number;
  #position: FleetPosition;

  /** Every member the pool holds, as last announced. */
  #members: readonly BackendView[] = [];
  /** Ring order of the members, by priority tier (`-1`: every tier), built on membership change. */
  #rings = new Map<number, readonly BackendView[]>();
  /**
   * The pool's eligible snapshots: one per priority tier that takes calls, or with zone-aware
   * routing one per zone of a tier (and the whole tier too).
   */
  #snapshots: readonly (readonly BackendView[])[] | undefined;
  /**
   * For each snapshot, its members in its tier's (possibly widened) subset, handed to the inner
   * algorithm as its snapshots; the first is what `active()` reports.
   */
  #actives: readonly (readonly BackendView[])[] = [];
  /** The members of the subset (all states), each once, as the inner algorithm knows them. */
  #subset: readonly BackendView[] = [];
  /** How many backends the inner algorithm may pick among: the distinct members of `#actives`. */
  #eligibleCount = 0;
  #subsetSize = 0;
  #ringSize = 0;
  #widened = false;
  #fallback = false;
  #membersDirty = true;
  /** Whether membership or eligibility changed since the subset was last computed. */
  #dirty = true;
  /** MurmurHash3 of each member id, kept across rebuilds of the ring. */
  #hashes = new Map<string, number>();

  constructor(options: DeterministicSubsetOptions) {
    if (!isPlainObject(options)) {
      throw new LoadBalancerConfigError(
        'DeterministicSubsetOptions',
        options,
        '{ clientIndex, clientCount } or { fleet }, with algorithm?, size?, offset?',
      );
    }
    const o = checkOptions('DeterministicSubsetOptions', options, KEYS);
    const inner = (o.algorithm ?? new PowerOfTwoChoices()) as Algorithm;
    if (typeof inner !== 'object' || inner === null || typeof inner.pick !== 'function') {
      throw new LoadBalancerConfigError(
        'algorithm',
        inner,
        'an Algorithm such as new RoundRobin()',
      );
    }
    this.inner = inner;
    this.name = `deterministic-subset(${inner.name})`;
    this.size = o.size === undefined ? 20 : checkNumber('size', o.size, { min: 1, integer: true });
    this.#minEligibleShare =
      o.minEligibleShare === undefined
        ? 0.5
        : checkNumber('minEligibleShare', o.minEligibleShare, { min: 0, max: 1 });
    const named = typeof o.offset === 'string';
    const span = checkSpanFields(
      { offset: named ? undefined : o.offset, placement: o.placement },
      'a fraction in [0, 1), or a name',
    );
    this.#offset = named ? fleetOffset(o.offset as string) : (span.offset ?? 0);
    this.placement = span.placement ?? 'even';
    if (o.fleet !== undefined) {
      if (o.clientIndex !== undefined || o.clientCount !== undefined) {
        throw new LoadBalancerConfigError(
          'fleet',
          'fleet with clientIndex/clientCount',
          'either fleet or clientIndex and clientCount, not both',
        );
      }
      this.#fleet = checkFunction<() => FleetPosition>('fleet', o.fleet);
      this.#position = checkFleetPosition('fleet()', this.#fleet());
    } else {
      this.#fleet = undefined;
      this.#position = checkFleetPosition(
        '',
        { index: o.clientIndex, count: o.clientCount },
        { index: 'clientIndex', count: 'clientCount' },
      );
    }
  }

  /** This client's position in its fleet, as last read. */
  get position(): FleetPosition {
    return this.#position;
  }

  /** The ids of this client's subset (before any widening), in ring order. */
  subset(): readonly string[] {
    this.#settle();
    return this.#subset.slice(0, this.#subsetSize).map((b) => b.id);
  }

  /** The ids the inner algorithm picks among now (the subset's routable members, or more when widened). */
  active(): readonly string[] {
    this.#settle();
    return (this.#actives[0] ?? []).map((b) => b.id);
  }

  /** Whether the subset is widened now because too few of its members can take calls. */
  get widened(): boolean {
    this.#settle();
    return this.#widened;
  }

  /**
   * Reads the `fleet` function again and recomputes the subset (call it when your fleet changes
   * size, or this client's index changes). Without a `fleet` function, nothing changes.
   * @throws {LoadBalancerConfigError} when `fleet()` gives no valid position (nothing changes then).
   */
  refresh(): void {
    if (this.#fleet === undefined) return;
    const next = checkFleetPosition('fleet()', this.#fleet());
    if (next.index === this.#position.index && next.count === this.#position.count) return;
    this.#position = next;
    this.#membersDirty = true;
    this.#dirty = true;
  }

  attach(env: AlgorithmEnv): void {
    // The pool's environment, except that the backends taking calls are those of the subset.
    this.inner.attach?.(
      Object.create(env, {
        eligibleCount: {
          get: (): number => {
            this.#settle();
            return this.#eligibleCount;
          },
        },
      }) as AlgorithmEnv,
    );
  }

  onMembershipChange(members: readonly BackendView[]): void {
    // Weights may have changed too (slow start): the inner algorithm hears of it on the next
    // recompute.
    this.#rings.clear();
    this.#members = members;
    this.#membersDirty = true;
    this.#dirty = true;
  }

  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.#snapshots = snapshots;
    this.#dirty = true;
  }

  /**
   * Recomputes the subset once after any number of changes, before the next pick: a discovery
   * answer that adds 5,000 backends one by one costs one ring, not 5,000.
   */
  #settle(): void {
    if (!this.#dirty || this.#snapshots === undefined) return;
    this.#dirty = false;
    // Each priority tier has a ring of its own members, and this client its slice of it. The
    // pool may announce several arrays of one tier (its zones, and the whole tier beside them):
    // each gets the members of its tier's subset that it holds.
    const tiers = new Map<number, ReadonlySet<BackendView>>();
    const subset: BackendView[] = [];
    const listed = new Set<BackendView>();
    const list = (members: readonly BackendView[]): void => {
      for (const b of members) {
        if (listed.has(b)) continue;
        listed.add(b);
        subset.push(b);
      }
    };
    const actives: (readonly BackendView[])[] = [];
    const taking = new Set<BackendView>();
    let widened = false;
    let fallback = false;
    for (const candidates of this.#snapshots) {
      const key = tierOf(candidates);
      let inSubset = tiers.get(key);
      if (inSubset === undefined) {
        const tier = this.#settleTier(key, tiers.size === 0);
        inSubset = new Set(tier.members);
        tiers.set(key, inSubset);
        list(tier.members);
        widened ||= tier.widened;
      }
      let active: readonly BackendView[] = candidates.filter((b) => inSubset.has(b));
      if (active.length === 0 && candidates.length > 0) {
        // Nothing of the subset can take calls here (a zone the slice misses, a tier the ring
        // does not cover): never route to nothing while the pool has candidates.
        fallback = true;
        active = candidates;
        list(candidates);
      }
      for (const b of active) taking.add(b);
      actives.push(active);
    }
    this.#widened = widened;
    this.#fallback = fallback;
    this.#eligibleCount = taking.size;
    if (this.#membersDirty || !sameMembers(subset, this.#subset)) {
      this.#subset = subset;
      this.#membersDirty = false;
      this.inner.onMembershipChange?.(subset);
    }
    this.#actives = actives;
    this.inner.onEligibleChange?.(actives);
  }

  /** The subset of one priority tier (`-1`: every tier): its slice, widened if need be. */
  #settleTier(tier: number, first: boolean): { members: readonly BackendView[]; widened: boolean } {
    const ring = this.#ringOf(tier);
    const members = sliceOf(ring, this.#position, this.size, {
      offset: this.#offset,
      placement: this.placement,
    });
    const size = members.length;
    if (first) {
      this.#ringSize = ring.length;
      this.#subsetSize = size;
    }
    let eligible = 0;
    for (const b of members) if (b.eligible) eligible++;
    if (size === 0 || eligible >= Math.ceil(this.#minEligibleShare * size)) {
      return { members, widened: false };
    }
    // Too few left to carry this client's share: walk on along the ring from the slice's end
    // until the subset holds as many routable backends as its size (or the ring ends).
    const start = ring.indexOf(members[0]!);
    for (let i = size; i < ring.length && eligible < size; i++) {
      const b = ring[(start + i) % ring.length]!;
      members.push(b);
      if (b.eligible) eligible++;
    }
    return { members, widened: members.length > size };
  }

  pick(candidates: readonly BackendView[], ctx: PickContext): BackendView | undefined {
    if (this.#dirty) this.#settle();
    const k = snapshotIndex(candidates, this.#snapshots);
    if (k >= 0) {
      const active = this.#actives[k];
      return this.inner.pick(active !== undefined && active.length > 0 ? active : candidates, ctx);
    }
    // A retry that excludes backends already tried (the pool marks them ineligible for this
    // pick): untried members of the subset first, any untried backend when none is left.
    const kept = this.#retryKept(candidates);
    return this.inner.pick(kept.length > 0 ? kept : candidates, ctx);
  }

  /** The untried members of the subset of the tier a retry's candidates come from. */
  #retryKept(candidates: readonly BackendView[]): BackendView[] {
    const k = snapshotHolding(candidates, this.#snapshots);
    return this.#activeAt(k).filter((b) => b.eligible);
  }

  /** The active members of snapshot `k`, or of the first snapshot when `k` names none. */
  #activeAt(k: number): readonly BackendView[] {
    return (k < 0 ? undefined : this.#actives[k]) ?? this.#actives[0] ?? [];
  }

  explain(candidates: readonly BackendView[], ctx: PickContext): AlgorithmExplanation {
    this.#settle();
    const k = snapshotIndex(candidates, this.#snapshots);
    const active = k >= 0 ? this.#activeAt(k) : this.#retryKept(candidates);
    const list = active.length > 0 ? active : candidates;
    const e = this.inner.explain?.(list, ctx);
    const { index, count } = this.#position;
    const how = this.#fallback
      ? 'no member of the subset can take calls: every eligible backend is in play'
      : this.#widened
        ? `widened to ${this.#subset.length} along the ring, too few of the subset could take calls`
        : `${list.length} of them routable`;
    return {
      wouldPick: e?.wouldPick,
      note: `client ${index} of ${count}: subset of ${this.#subsetSize} of ${this.#ringSize} backends, ${how}; ${
        e?.note ?? `${this.inner.name} picks among ${list.length}`
      }`,
    };
  }

  onAcquire(backend: BackendView): void {
    this.inner.onAcquire?.(backend);
  }

  onRelease(backend: BackendView): void {
    this.inner.onRelease?.(backend);
  }

  /** The ring of priority tier `tier`'s members, or of every member for `-1`. */
  #ringOf(tier: number): readonly BackendView[] {
    let ring = this.#rings.get(tier);
    if (ring === undefined) {
      if (this.#rings.size === 0) this.#pruneHashes();
      const members =
        tier === -1 ? this.#members : this.#members.filter((b) => b.priority === tier);
      ring = ringOf(
        members,
        (b) => b.id,
        (id) => this.#hashOf(id),
      );
      this.#rings.set(tier, ring);
    }
    return ring;
  }

  #hashOf(id: string): number {
    let h = this.#hashes.get(id);
    if (h === undefined) {
      h = subsetHash(id);
      this.#hashes.set(id, h);
    }
    return h;
  }

  /** Forgets the hashes of ids no longer in the pool. */
  #pruneHashes(): void {
    if (this.#hashes.size <= this.#members.length) return;
    const present = new Set(this.#members.map((b) => b.id));
    for (const id of this.#hashes.keys()) if (!present.has(id)) this.#hashes.delete(id);
  }
}

/**
 * The priority tier of an announced array (the pool routes within one tier while any tier has a
 * healthy backend), or `-1` when its backends span tiers.
 */
function tierOf(candidates: readonly BackendView[]): number {
  const tier = candidates.length > 0 ? candidates[0]!.priority : -1;
  for (const b of candidates) if (b.priority !== tier) return -1;
  return tier;
}

function sameMembers(a: readonly BackendView[], b: readonly BackendView[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
