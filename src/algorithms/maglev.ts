import { checkTableSize, MaglevTable } from '../hashing/maglev-table.js';
import type {
  Algorithm,
  AlgorithmEnv,
  AlgorithmExplanation,
  BackendView,
  PickContext,
} from '../types.js';
import { checkFunction, checkOptions, checkString } from '../validate.js';
import {
  checkKeyFunction,
  checkMissingKey,
  type KeyFunction,
  keyFieldOf,
  type MissingKeyPolicy,
  missingKeyNote,
  pickWithoutKey,
  readKey,
  SnapshotZones,
} from './shared.js';

/** Options of {@link Maglev}. */
export interface MaglevOptions {
  /**
   * Where the affinity key comes from: a function of the pick context returning a string, or
   * `undefined` for no key.
   * @default (ctx) => ctx.key
   */
  key?: (ctx: PickContext) => string | undefined;
  /**
   * The number of table slots M, a prime at most 5000011 (Envoy's limit). Envoy's default; the paper advises M above
   * 100 × the number of backends for shares within 1% of the weights.
   * @default 65537
   */
  tableSize?: number;
  /**
   * The string a backend's offset and skip are hashed from (and the fill order). Envoy hashes
   * the host's address, which is what the default id (`host:port`) holds.
   * @default (backend) => backend.id
   */
  hostKey?: (backend: BackendView) => string;
  /**
   * A pick without a key: `'random'` picks a random eligible backend (from the pool's random
   * source), `'throw'` throws a `LoadBalancerConfigError` naming the missing key.
   * @default 'random'
   */
  missingKey?: MissingKeyPolicy;
}

const byId = (b: BackendView): string => b.id;

/**
 * Maglev hashing (Eisenbud et al., NSDI 2016), compatible with Envoy's Maglev load balancer: a
 * prime-sized lookup table built from every backend's hashed preference list, so shares follow
 * the weights within a fraction of a percent and a key lookup is one array read after hashing
 * the key (XXH64, seed 0). The table is rebuilt only when membership or weights change.
 *
 * When the slot's backend is not eligible (unhealthy, draining, ejected, excluded), the pick
 * probes the following slots for the first eligible backend: keys of a backend that is down
 * spread over the others in proportion to their table shares, and return once it recovers.
 * A pick without a key goes to a random eligible backend (or throws, with
 * `missingKey: 'throw'`).
 *
 * Weights are the backends' configured weights; slow start does not move keys around.
 *
 * @example
 * ```ts
 * const pool = new BackendPool({ backends, algorithm: new Maglev({ tableSize: 65537 }) });
 * pool.acquire({ key: 'session-9f2c' });
 * ```
 */
export class Maglev implements Algorithm {
  readonly name: string = 'maglev';
  readonly #key: KeyFunction | undefined;
  readonly #keyField: string;
  readonly #tableSize: number | undefined;
  readonly #hostKey: (backend: BackendView) => string;
  readonly #missingKey: MissingKeyPolicy;
  #env: AlgorithmEnv | undefined;
  #table: MaglevTable | undefined;
  /** The (key, weight) list the table was built from, to skip rebuilds that change nothing. */
  #signature = '';
  /** Member views by table index. */
  #views: (BackendView | undefined)[] = [];
  /** The zone of each of the pool's snapshots (zone-aware routing hands over one zone). */
  readonly #zones = new SnapshotZones();

  constructor(options: MaglevOptions = {}) {
    const o = checkOptions('Maglev options', options, [
      'key',
      'tableSize',
      'hostKey',
      'missingKey',
    ]);
    this.#key = checkKeyFunction(o.key);
    this.#keyField = keyFieldOf(this.#key);
    this.#tableSize =
      o.tableSize === undefined ? undefined : checkTableSize('tableSize', o.tableSize);
    this.#hostKey =
      o.hostKey === undefined
        ? byId
        : checkFunction<(b: BackendView) => string>('hostKey', o.hostKey);
    this.#missingKey = checkMissingKey(o.missingKey);
  }

  attach(env: AlgorithmEnv): void {
    this.#env = env;
  }

  onEligibleChange(snapshots: readonly (readonly BackendView[])[]): void {
    this.#zones.update(snapshots);
  }

  onMembershipChange(members: readonly BackendView[]): void {
    const entries = members.map((m) => ({
      id: m.id,
      weight: m.weight,
      key: checkString('hostKey(backend)', this.#hostKey(m)),
    }));
    const signature = JSON.stringify(entries);
    if (signature !== this.#signature || this.#table === undefined) {
      this.#signature = signature;
      this.#table =
        entries.length === 0
          ? undefined
          : new MaglevTable(
              entries,
              this.#tableSize === undefined ? {} : { tableSize: this.#tableSize },
            );
    }
    const present = new Map<string, BackendView>();
    for (const m of members) present.set(m.id, m);
    this.#views = this.#table === undefined ? [] : this.#table.ids.map((id) => present.get(id));
  }

  pick(candidates: readonly BackendView[], ctx: PickContext): BackendView | undefined {
    const key = readKey(this.#key, ctx, this.name, this.#keyField);
    if (key === undefined) {
      return pickWithoutKey(this.#missingKey, this.#env, this.name, this.#keyField, candidates);
    }
    const table = this.#table;
    if (table === undefined) return candidates[0];
    return this.#choose(candidates, table, table._slotOf(key, 0, key.length));
  }

  #choose(candidates: readonly BackendView[], table: MaglevTable, slot: number): BackendView {
    const slots = table._slots;
    const views = this.#views;
    const m = slots.length;
    // The pool draws a tier (and a zone) first: only backends there may take this pick.
    const tier = candidates[0]!.priority;
    const zone = this.#zones.of(candidates);
    let s = slot;
    for (let step = 0; step < m; step++) {
      const v = views[slots[s]!];
      if (v?.eligible && v.priority === tier && (zone === null || v.zone === zone)) return v;
      s = s + 1 === m ? 0 : s + 1;
    }
    // No eligible backend holds a slot (more backends than slots, or a table not built for these
    // candidates): a deterministic choice by slot.
    return candidates[slot % candidates.length]!;
  }

  explain(candidates: readonly BackendView[], ctx: PickContext): AlgorithmExplanation {
    const table = this.#table;
    const about = `Maglev table of ${table?.tableSize ?? 0} slots over ${table?.ids.length ?? 0} backends`;
    const key = readKey(this.#key, ctx, this.name, this.#keyField);
    if (key === undefined || table === undefined) {
      return {
        wouldPick: undefined,
        note: `${about}; ${missingKeyNote(this.#keyField, this.#missingKey)}`,
      };
    }
    const slot = table._slotOf(key, 0, key.length);
    const owner = this.#views[table._slots[slot]!];
    const picked = this.#choose(candidates, table, slot);
    const moved =
      owner !== undefined && owner !== picked
        ? `; owner ${owner.id} (${owner.state}) is passed over`
        : '';
    return {
      wouldPick: picked,
      note: `${about}; ${this.#keyField} ${JSON.stringify(key)} → slot ${slot} → ${picked.id}${moved}`,
    };
  }
}
