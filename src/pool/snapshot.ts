import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  type SnapshotRefusalReason,
  SnapshotRestoreError,
} from '../errors/snapshot-restore-error.js';
import { DEFAULT_CLOCK_SKEW_MS, stampAge } from '../stamps.js';
import {
  checkBoolean,
  checkDuration,
  checkNumber,
  checkOptions,
  checkString,
  isPlainObject,
} from '../validate.js';
import type { BackendRecord } from './backend-record.js';
import { type NormalizedBackend, normalizeBackend } from './normalize.js';

/**
 * Pool snapshots for warm restarts: what a restarted client needs so that its first calls do
 * not go where the previous process had learnt not to send them (an ejected backend, the
 * slowest one, one still ramping up). Every time in a snapshot is a duration (left or elapsed)
 * at one wall-clock stamp, `takenAt`, because clock readings mean nothing in another process:
 * `systemClock.now()` counts from its own process start in monotonic time, a `ManualClock` from
 * anywhere. On restore the snapshot's age by the reader's wall clock is added to every elapsed
 * time and taken off every remaining one.
 */

/** The snapshot format a pool writes and the only one it restores. */
export const POOL_SNAPSHOT_VERSION = 1;

/** What `format` holds in every pool snapshot. */
export const POOL_SNAPSHOT_FORMAT = 'loadwise.pool-snapshot';

/**
 * One backend in a {@link PoolSnapshot}. Optional fields are left out rather than `undefined`,
 * so the snapshot survives `JSON.stringify` unchanged.
 */
export interface BackendSnapshot {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly zone?: string;
  readonly priority: number;
  /** The backend's metadata as given (keep it JSON-serialisable to persist it). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Health as probes (or `setHealthy`) last decided it, apart from draining and ejection. */
  readonly healthy: boolean;
  /** Draining: no new calls. A restored pool keeps it draining. */
  readonly draining: boolean;
  /**
   * A `remove()` was under way: the backend was leaving, and is not restored (a new process has
   * no call on it to wait for).
   */
  readonly removing: boolean;
  /** An ejection in force when the snapshot was taken. */
  readonly ejection?: {
    /** Its time left then, in ms. */
    readonly remainingMs: number;
    readonly reason: string;
    /** Whether a passing health probe ends it early (false for a backend's own `Retry-After`). */
    readonly endsOnProbe: boolean;
  };
  /** Slow start under way: how long it had been ramping, in ms. */
  readonly slowStart?: { readonly elapsedMs: number };
  /** The peak-EWMA latency, and the age of its last sample, in ms. */
  readonly latency?: { readonly ewmaMs: number; readonly ageMs: number };
}

/**
 * A pool's state for a warm restart: `pool.snapshot()` writes it, the `restore` option of a new
 * pool reads it. Plain JSON: persist it with `JSON.stringify` (a file, Redis) and give
 * `JSON.parse`'s result back.
 *
 * @example
 * ```ts
 * await writeFile('pool.json', JSON.stringify(pool.snapshot()));
 * // ... after the restart:
 * const restore = JSON.parse(await readFile('pool.json', 'utf8'));
 * const pool = new BackendPool({ restore, maxSnapshotAgeMs: 60_000 });
 * ```
 */
export interface PoolSnapshot {
  /** Always `'loadwise.pool-snapshot'`. */
  readonly format: typeof POOL_SNAPSHOT_FORMAT;
  /** The format version ({@link POOL_SNAPSHOT_VERSION}); a pool refuses any other. */
  readonly version: number;
  /** The name of the pool that wrote it. */
  readonly pool: string;
  /** When it was taken: ms since the Unix epoch by the writer's wall clock (`Clock.wallNow`). */
  readonly takenAt: number;
  /** Every backend of the pool, in membership order. */
  readonly backends: readonly BackendSnapshot[];
}

/** Writes the snapshot of `records` at monotonic reading `now` and wall-clock reading `wall`. */
export function takeSnapshot(
  name: string,
  records: readonly BackendRecord[],
  now: number,
  wall: number,
): PoolSnapshot {
  return {
    format: POOL_SNAPSHOT_FORMAT,
    version: POOL_SNAPSHOT_VERSION,
    pool: name,
    takenAt: wall,
    backends: records.map((r) => {
      const left = r.ejectedUntil === undefined ? 0 : r.ejectedUntil - now;
      const b: {
        -readonly [K in keyof BackendSnapshot]: BackendSnapshot[K];
      } = {
        id: r.id,
        url: r.url,
        weight: r.weight,
        priority: r.priority,
        metadata: { ...r.metadata },
        healthy: r.healthy,
        draining: r.draining,
        removing: r.leaving,
      };
      if (r.zone !== undefined) b.zone = r.zone;
      if (left > 0) {
        b.ejection = { remainingMs: left, reason: r.ejectReason, endsOnProbe: r.ejectEndsOnProbe };
      }
      if (r.slowStartFrom !== undefined) {
        b.slowStart = { elapsedMs: Math.max(0, now - r.slowStartFrom) };
      }
      if (r.latencyEwma > 0) {
        b.latency = { ewmaMs: r.latencyEwma, ageMs: Math.max(0, now - r.latencyStamp) };
      }
      return b;
    }),
  };
}

/** A backend's state to restore, checked. @internal */
export interface RestoredBackend {
  /** Its index in the snapshot's `backends`. */
  readonly index: number;
  readonly spec: NormalizedBackend;
  readonly healthy: boolean;
  readonly draining: boolean;
  /** Ejection time left at restore (age taken off), when some is left. */
  readonly ejection: { remainingMs: number; reason: string; endsOnProbe: boolean } | undefined;
  /** Slow-start time elapsed at restore (age added). */
  readonly slowStartElapsedMs: number | undefined;
  /** Latency EWMA and its sample's age at restore (age added). */
  readonly latency: { ewmaMs: number; ageMs: number } | undefined;
}

/** A snapshot checked through and through, ready to apply. @internal */
export interface RestorePlan {
  /** Backends to restore, in the snapshot's order (those being removed left out). */
  readonly backends: readonly RestoredBackend[];
}

const SNAPSHOT_KEYS = ['format', 'version', 'pool', 'takenAt', 'backends'];
const BACKEND_KEYS = [
  'id',
  'url',
  'weight',
  'zone',
  'priority',
  'metadata',
  'healthy',
  'draining',
  'removing',
  'ejection',
  'slowStart',
  'latency',
];

/** The pool option a snapshot is given as: where its fields are named from in config errors. */
const ROOT = 'restore';

/**
 * Checks every field of `value` and works out what to restore at wall-clock reading `wall`,
 * before anything is applied. Throws {@link SnapshotRestoreError} for anything amiss.
 * @internal
 */
export function planRestore(value: unknown, wall: number, maxAgeMs: number): RestorePlan {
  try {
    return plan(value, wall, maxAgeMs);
  } catch (error) {
    if (!(error instanceof LoadBalancerConfigError)) throw error;
    // A field is checked by the rules the pool applies to its options (a snapshot's backend
    // must pass them as `backends` do); the refusal names it from the snapshot's top.
    const field = error.field === ROOT ? undefined : error.field.slice(ROOT.length + 1);
    throw new SnapshotRestoreError('malformed', error.message, field, { cause: error });
  }
}

function plan(value: unknown, wall: number, maxAgeMs: number): RestorePlan {
  const refuse = (reason: SnapshotRefusalReason, detail: string, field: string): never => {
    throw new SnapshotRestoreError(reason, detail, field);
  };
  const written = 'what pool.snapshot() returns, after JSON.parse when persisted';
  if (!isPlainObject(value)) {
    throw new LoadBalancerConfigError(
      ROOT,
      value,
      `an object with format "${POOL_SNAPSHOT_FORMAT}" (${written})`,
    );
  }
  if (value['format'] !== POOL_SNAPSHOT_FORMAT) {
    throw new LoadBalancerConfigError(
      `${ROOT}.format`,
      value['format'],
      `"${POOL_SNAPSHOT_FORMAT}" (${written})`,
    );
  }
  // The version first: another version may be laid out differently.
  if (value['version'] !== POOL_SNAPSHOT_VERSION) {
    refuse(
      'version',
      `it is version ${JSON.stringify(value['version'])}, this loadwise reads version ${POOL_SNAPSHOT_VERSION} only`,
      'version',
    );
  }
  const s = checkOptions(ROOT, value, SNAPSHOT_KEYS);
  checkString(`${ROOT}.pool`, s['pool'], { nonEmpty: false });
  const takenAt = checkNumber(`${ROOT}.takenAt`, s['takenAt']);
  const age = stampAge(takenAt, wall, DEFAULT_CLOCK_SKEW_MS);
  if (age === undefined) {
    return refuse(
      'future',
      `it was taken at ${new Date(takenAt).toISOString()}, ${Math.round(takenAt - wall)} ms ahead of this process's wall clock (more than the ${DEFAULT_CLOCK_SKEW_MS} ms allowed for clock skew)`,
      'takenAt',
    );
  }
  if (age > maxAgeMs) {
    refuse(
      'stale',
      `it is ${Math.round(age)} ms old, more than maxSnapshotAgeMs (${maxAgeMs})`,
      'takenAt',
    );
  }
  const list = s['backends'];
  if (!Array.isArray(list)) throw new LoadBalancerConfigError(`${ROOT}.backends`, list, 'an array');
  const backends: RestoredBackend[] = [];
  const seen = new Set<string>();
  list.forEach((raw: unknown, index) => {
    const f = `${ROOT}.backends[${index}]`;
    if (raw === undefined) throw new LoadBalancerConfigError(f, raw, 'an object');
    const b = checkOptions(f, raw as Record<string, unknown>, BACKEND_KEYS);
    const spec = normalizeBackend(
      {
        url: b['url'] as string,
        id: checkString(`${f}.id`, b['id']),
        // Required here, though a spec may leave them out: a snapshot always writes them.
        weight: checkNumber(`${f}.weight`, b['weight']),
        priority: checkNumber(`${f}.priority`, b['priority']),
        ...(b['zone'] === undefined ? {} : { zone: b['zone'] as string }),
        ...(b['metadata'] === undefined
          ? {}
          : { metadata: b['metadata'] as Record<string, unknown> }),
      },
      f,
    );
    if (seen.has(spec.id)) {
      refuse('malformed', `backend id ${JSON.stringify(spec.id)} twice`, `backends[${index}].id`);
    }
    seen.add(spec.id);
    const healthy = checkBoolean(`${f}.healthy`, b['healthy']);
    const draining = checkBoolean(`${f}.draining`, b['draining']);
    const leaving = checkBoolean(`${f}.removing`, b['removing']);
    let ejection: RestoredBackend['ejection'];
    if (b['ejection'] !== undefined) {
      const e = checkOptions(`${f}.ejection`, b['ejection'] as Record<string, unknown>, [
        'remainingMs',
        'reason',
        'endsOnProbe',
      ]);
      const remainingMs = checkDuration(`${f}.ejection.remainingMs`, e['remainingMs']);
      const reason = checkString(`${f}.ejection.reason`, e['reason'], { nonEmpty: false });
      const endsOnProbe = checkBoolean(`${f}.ejection.endsOnProbe`, e['endsOnProbe']);
      if (remainingMs > age) ejection = { remainingMs: remainingMs - age, reason, endsOnProbe };
    }
    let slowStartElapsedMs: number | undefined;
    if (b['slowStart'] !== undefined) {
      const w = checkOptions(`${f}.slowStart`, b['slowStart'] as Record<string, unknown>, [
        'elapsedMs',
      ]);
      slowStartElapsedMs = checkDuration(`${f}.slowStart.elapsedMs`, w['elapsedMs']) + age;
    }
    let latency: RestoredBackend['latency'];
    if (b['latency'] !== undefined) {
      const l = checkOptions(`${f}.latency`, b['latency'] as Record<string, unknown>, [
        'ewmaMs',
        'ageMs',
      ]);
      latency = {
        ewmaMs: checkNumber(`${f}.latency.ewmaMs`, l['ewmaMs'], { min: 0 }),
        ageMs: checkDuration(`${f}.latency.ageMs`, l['ageMs']) + age,
      };
    }
    // A backend a remove() was taking out is not restored.
    if (leaving) return;
    backends.push({ index, spec, healthy, draining, ejection, slowStartElapsedMs, latency });
  });
  return { backends };
}
