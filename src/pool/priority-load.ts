import type { Random } from '../random.js';
import type { PriorityTierLoad } from '../types.js';
import type { BackendRecord } from './backend-record.js';
import { PointDraws } from './draws.js';

/**
 * Priority load as Envoy computes it (source/extensions/load_balancing_policies/common/
 * load_balancer_impl.cc: `recalculatePerPriorityState`, `distributeLoad`,
 * `recalculatePerPriorityPanic`, `recalculateLoadInTotalPanic`, `choosePriority`; docs
 * intro/arch_overview/upstream/load_balancing/priority.rst, overprovisioning.rst,
 * panic_threshold.rst):
 *
 * - a tier's health is min(100, ⌊factor × 100 × healthy / backends⌋), in whole percent;
 * - the normalised total health is the sum over the tiers, capped at 100;
 * - tiers take load in order, each ⌊health × 100 / normalised total⌋ of what is left, and the
 *   rounding remainder goes to the first tier with any health;
 * - only when the normalised total is below 100 is a tier judged for panic; when every tier that
 *   has backends is in panic, the load is split by backend count instead (total panic);
 * - a tier in panic routes over all its backends that are not draining.
 *
 * The pool calls {@link PriorityLoad.compute} when health or membership changes, never per
 * pick; a pick only draws its tier ({@link PriorityLoad.choose}).
 */

/** The pool's rules that shape the split. @internal */
export interface PriorityRules {
  /** Envoy's overprovisioning factor: 1.4 lets a tier at 72% healthy still take all its load. */
  readonly overprovisioningFactor: number;
  /** A tier panics below this healthy share of its backends (0 to 1). */
  readonly panicThreshold: number;
  /** A tier panics with fewer healthy backends than this (or than it has). */
  readonly minHealthy: number;
}

/** The counts of one tier: the input of {@link splitPriorityLoad}. @internal */
export interface TierCounts {
  readonly priority: number;
  /** Backends that are not draining (Envoy leaves excluded hosts out of the count likewise). */
  readonly backends: number;
  readonly healthy: number;
}

/** How the load splits across tiers. @internal */
export interface PrioritySplit {
  /** One entry per tier of the input, in its order. */
  readonly tiers: readonly PriorityTierLoad[];
  /** The tiers' health summed and capped at 100 (Envoy's normalised total health). */
  readonly normalizedHealth: number;
  /** Whether every tier with backends is in panic, so the load follows backend counts. */
  readonly totalPanic: boolean;
}

/**
 * Envoy's priority load over tiers given best first. Pure and in integer percent, as Envoy's,
 * so its documented examples come out the same: one tier at 25% healthy and one at 100% take
 * 35% and 65%.
 * @internal
 */
export function splitPriorityLoad(
  counts: readonly TierCounts[],
  rules: PriorityRules,
): PrioritySplit {
  const n = counts.length;
  const health = new Array<number>(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const c = counts[i]!;
    // The epsilon absorbs float error such as 1.4 × 100 × 3 / 6 = 69.99999999999999.
    health[i] =
      c.backends === 0
        ? 0
        : Math.min(
            100,
            Math.floor((rules.overprovisioningFactor * 100 * c.healthy) / c.backends + 1e-9),
          );
    sum += health[i]!;
  }
  const normalizedHealth = Math.min(100, sum);
  // Envoy never panics while the tiers together can take the whole load.
  const judged = normalizedHealth < 100;
  const panic = counts.map(
    (c) =>
      judged &&
      c.backends > 0 &&
      (c.healthy < Math.min(rules.minHealthy, c.backends) ||
        c.healthy < rules.panicThreshold * c.backends),
  );
  const populated = counts.filter((c) => c.backends > 0).length;
  const totalPanic = populated > 0 && counts.every((c, i) => c.backends === 0 || panic[i] === true);

  const load = new Array<number>(n).fill(0);
  if (totalPanic) {
    // recalculateLoadInTotalPanic: by backend count, the remainder to the first populated tier.
    let total = 0;
    for (const c of counts) total += c.backends;
    let left = 100;
    for (let i = 0; i < n; i++) {
      load[i] = Math.floor((100 * counts[i]!.backends) / total);
      left -= load[i]!;
    }
    const first = counts.findIndex((c) => c.backends > 0);
    load[first] = load[first]! + left;
  } else if (normalizedHealth > 0) {
    // distributeLoad: each tier takes its normalised health of what is left.
    let left = 100;
    for (let i = 0; i < n; i++) {
      load[i] = Math.min(left, Math.floor((health[i]! * 100) / normalizedHealth));
      left -= load[i]!;
    }
    const first = health.findIndex((h) => h > 0);
    load[first] = load[first]! + left;
  }
  // Otherwise nothing is healthy and nothing may panic (panicThreshold and minHealthy both 0):
  // no tier takes a call. Envoy nominally gives P=0 the load and then finds no host.
  const tiers = counts.map((c, i) => ({
    priority: c.priority,
    backends: c.backends,
    healthy: c.healthy,
    health: health[i]!,
    load: load[i]!,
    panic: panic[i]!,
  }));
  return { tiers, normalizedHealth, totalPanic };
}

/** A tier that takes calls: its share and the backends a pick there chooses from. @internal */
export interface TierSnapshot {
  readonly priority: number;
  /** The loads of this tier and every better one, summed (1 to 100): where a draw lands. */
  readonly upTo: number;
  /**
   * Its candidates, in membership order: its healthy backends, or in panic every one that is not
   * draining. The same array serves every pick until the next change, so algorithms can keep
   * state per array.
   */
  readonly candidates: BackendRecord[];
  readonly figures: PriorityTierLoad;
}

/**
 * The split in force: every tier's figures, and a snapshot per tier that takes calls.
 * @internal
 */
export class PriorityLoad {
  /** Every tier that has members, best first. */
  readonly tiers: readonly PriorityTierLoad[];
  /** The tiers that take calls, best first. */
  readonly snapshots: readonly TierSnapshot[];
  /**
   * Every candidate of those tiers, in membership order. With one such tier, the very array of
   * its snapshot.
   */
  readonly candidates: BackendRecord[];
  readonly normalizedHealth: number;
  readonly totalPanic: boolean;

  private constructor(
    tiers: readonly PriorityTierLoad[],
    snapshots: readonly TierSnapshot[],
    candidates: BackendRecord[],
    normalizedHealth: number,
    totalPanic: boolean,
  ) {
    this.tiers = tiers;
    this.snapshots = snapshots;
    this.candidates = candidates;
    this.normalizedHealth = normalizedHealth;
    this.totalPanic = totalPanic;
  }

  /** The split of an empty pool. */
  static readonly EMPTY: PriorityLoad = new PriorityLoad([], [], [], 0, false);

  /** Computes the split over `members` (in membership order) and each loaded tier's candidates. */
  static compute(members: readonly BackendRecord[], rules: PriorityRules): PriorityLoad {
    const byTier = new Map<number, BackendRecord[]>();
    for (const r of members) {
      const list = byTier.get(r.priority);
      if (list === undefined) byTier.set(r.priority, [r]);
      else list.push(r);
    }
    const priorities = [...byTier.keys()].sort((a, b) => a - b);
    const counts = priorities.map((priority) => {
      let backends = 0;
      let healthy = 0;
      for (const r of byTier.get(priority)!) {
        if (!r.draining) backends++;
        if (r.state === 'healthy') healthy++;
      }
      return { priority, backends, healthy };
    });
    const split = splitPriorityLoad(counts, rules);
    const snapshots: TierSnapshot[] = [];
    let upTo = 0;
    for (let i = 0; i < priorities.length; i++) {
      const figures = split.tiers[i]!;
      if (figures.load === 0) continue;
      upTo += figures.load;
      const candidates = byTier
        .get(figures.priority)!
        .filter((r) => (figures.panic ? !r.draining : r.state === 'healthy'));
      snapshots.push({ priority: figures.priority, upTo, candidates, figures });
    }
    let candidates: BackendRecord[];
    if (snapshots.length === 1) {
      candidates = snapshots[0]!.candidates;
    } else {
      const taking = new Set<BackendRecord>();
      for (const s of snapshots) for (const r of s.candidates) taking.add(r);
      candidates = members.filter((r) => taking.has(r));
    }
    return new PriorityLoad(
      split.tiers,
      snapshots,
      candidates,
      split.normalizedHealth,
      split.totalPanic,
    );
  }

  /** Whether a tier that takes calls routes across unhealthy backends. */
  get panic(): boolean {
    for (const s of this.snapshots) if (s.figures.panic) return true;
    return false;
  }

  /**
   * The candidates of the only tier that takes calls, or undefined when several share them (the
   * pick then draws a tier with {@link PriorityLoad.tierAt}).
   */
  get only(): BackendRecord[] | undefined {
    return this.snapshots.length === 1 ? this.snapshots[0]!.candidates : undefined;
  }

  /**
   * The candidates of the tier a draw from 1 to 100 lands in, against the tiers' summed loads,
   * as Envoy's `choosePriority`.
   */
  tierAt(point: number): BackendRecord[] {
    const snapshots = this.snapshots;
    const last = snapshots.length - 1;
    if (last < 0) return this.candidates;
    for (let i = 0; i < last; i++) {
      const s = snapshots[i]!;
      if (point <= s.upTo) return s.candidates;
    }
    return snapshots[last]!.candidates;
  }

  /** The candidates for the next pick: the only tier's, or a tier drawn from `draws`. */
  choose(draws: PointDraws): BackendRecord[] {
    return this.only ?? this.tierAt(draws.next());
  }

  /** Whether `other` splits the load the same way (same tiers, loads and panics). */
  sameSplit(other: PriorityLoad): boolean {
    const a = this.tiers;
    const b = other.tiers;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x.priority !== y.priority || x.load !== y.load || x.panic !== y.panic) return false;
    }
    return true;
  }

  /** How the load is split and why, in a sentence for `explain()`. */
  describe(factor: number, panicThreshold: number): string {
    const parts = this.tiers.map((t) => {
      const health =
        t.backends === 0
          ? 'no backend taking calls'
          : `${t.healthy} of ${t.backends} healthy × ${factor} → health ${t.health}%`;
      const panic = t.panic
        ? `, in panic: below ${Math.round(panicThreshold * 100)}% healthy or minHealthy, so its unhealthy backends take calls too`
        : '';
      return `tier ${t.priority} ${t.load}% (${health}${panic})`;
    });
    let why: string;
    if (this.totalPanic) {
      why = `the tiers together are at ${this.normalizedHealth}% health and every tier is in panic, so calls split by backend count`;
    } else if (this.normalizedHealth === 100) {
      why = 'the tiers together are at 100% health, so no tier panics';
    } else if (this.snapshots.length === 0) {
      why = 'no backend is healthy and panic is off';
    } else {
      why = `the tiers together are at ${this.normalizedHealth}% health, so each tier's load is its health scaled to 100%`;
    }
    return `priority load: ${parts.join(', ')}; ${why}`;
  }
}

/** Points 1 to 100 for drawing tiers against their loads (percentages), from `random`. */
export function tierDraws(random: Random): PointDraws {
  return new PointDraws(random, 100, 1);
}
