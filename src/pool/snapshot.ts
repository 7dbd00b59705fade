import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  type SnapshotRefusalReason,
  SnapshotRestoreError,
} from '../errors/snapshot-restore-error.js';
import { DEFAULT_CLOCK_SKEW_MS, stampAge } from '../stamps.js';
import { isPlainObject, MAX_DURATION_MS } from '../validate.js';
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
  /** Its age by this process's wall clock (0 within the skew allowance). */
  readonly ageMs: number;
  /** Backends to restore, in the snapshot's order (those being removed left out). */
  readonly backends: readonly RestoredBackend[];
  /** Ids of backends that were being removed: not restored, and not unknown either. */
  readonly removing: ReadonlySet<string>;
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

/**
 * Checks every field of `value` and works out what to restore at wall-clock reading `wall`,
 * before anything is applied. Throws {@link SnapshotRestoreError} for anything amiss.
 * @internal
 */
export function planRestore(value: unknown, wall: number, maxAgeMs: number): RestorePlan {
  const refuse = (reason: SnapshotRefusalReason, detail: string, field?: string): never => {
    throw new SnapshotRestoreError(reason, detail, field);
  };
  if (!isPlainObject(value) || value['format'] !== POOL_SNAPSHOT_FORMAT) {
    refuse(
      'malformed',
      `expected an object with format "${POOL_SNAPSHOT_FORMAT}" (what pool.snapshot() returns, after JSON.parse when persisted)`,
      isPlainObject(value) ? 'format' : undefined,
    );
  }
  const s = value as Record<string, unknown>;
  // The version first: another version may be laid out differently.
  if (s['version'] !== POOL_SNAPSHOT_VERSION) {
    refuse(
      'version',
      `it is version ${JSON.stringify(s['version'])}, this loadwise reads version ${POOL_SNAPSHOT_VERSION} only`,
      'version',
    );
  }
  unknownKeys(s, SNAPSHOT_KEYS, '');
  if (typeof s['pool'] !== 'string') refuse('malformed', 'expected a string', 'pool');
  const takenAt = s['takenAt'];
  if (typeof takenAt !== 'number' || !Number.isFinite(takenAt)) {
    refuse('malformed', 'expected ms since the Unix epoch', 'takenAt');
  }
  const ageMs = stampAge(takenAt as number, wall, DEFAULT_CLOCK_SKEW_MS);
  if (ageMs === undefined) {
    refuse(
      'future',
      `it was taken at ${new Date(takenAt as number).toISOString()}, ${Math.round((takenAt as number) - wall)} ms ahead of this process's wall clock (more than the ${DEFAULT_CLOCK_SKEW_MS} ms allowed for clock skew)`,
      'takenAt',
    );
  }
  const age = ageMs as number;
  if (age > maxAgeMs) {
    refuse(
      'stale',
      `it is ${Math.round(age)} ms old, more than maxSnapshotAgeMs (${maxAgeMs})`,
      'takenAt',
    );
  }
  const list = s['backends'];
  if (!Array.isArray(list)) refuse('malformed', 'expected an array', 'backends');
  const backends: RestoredBackend[] = [];
  const removing = new Set<string>();
  const seen = new Set<string>();
  (list as unknown[]).forEach((raw, i) => {
    const f = `backends[${i}]`;
    if (!isPlainObject(raw)) refuse('malformed', 'expected an object', f);
    const b = raw as Record<string, unknown>;
    unknownKeys(b, BACKEND_KEYS, `${f}.`);
    let spec: NormalizedBackend;
    try {
      if (typeof b['id'] !== 'string' || b['id'] === '') {
        throw new LoadBalancerConfigError(`${f}.id`, b['id'], 'a non-empty string');
      }
      spec = normalizeBackend(
        {
          url: b['url'] as string,
          id: b['id'],
          weight: b['weight'] as number,
          priority: b['priority'] as number,
          ...(b['zone'] === undefined ? {} : { zone: b['zone'] as string }),
          ...(b['metadata'] === undefined
            ? {}
            : { metadata: b['metadata'] as Record<string, unknown> }),
        },
        f,
      );
    } catch (error) {
      // The spec rules are the pool's own: a snapshot's backend must pass them as `backends` do.
      const field = error instanceof LoadBalancerConfigError ? error.field : f;
      throw new SnapshotRestoreError(
        'malformed',
        error instanceof Error ? error.message : String(error),
        field,
        { cause: error },
      );
    }
    if (seen.has(spec.id))
      refuse('malformed', `backend id ${JSON.stringify(spec.id)} twice`, `${f}.id`);
    seen.add(spec.id);
    const healthy = bool(b, 'healthy', f);
    const draining = bool(b, 'draining', f);
    const leaving = bool(b, 'removing', f);
    let ejection: RestoredBackend['ejection'];
    if (b['ejection'] !== undefined) {
      const e = object(b['ejection'], `${f}.ejection`, ['remainingMs', 'reason', 'endsOnProbe']);
      const remainingMs = duration(e['remainingMs'], `${f}.ejection.remainingMs`);
      if (typeof e['reason'] !== 'string')
        refuse('malformed', 'expected a string', `${f}.ejection.reason`);
      const endsOnProbe = bool(e, 'endsOnProbe', `${f}.ejection`);
      if (remainingMs > age) {
        ejection = { remainingMs: remainingMs - age, reason: e['reason'] as string, endsOnProbe };
      }
    }
    let slowStartElapsedMs: number | undefined;
    if (b['slowStart'] !== undefined) {
      const w = object(b['slowStart'], `${f}.slowStart`, ['elapsedMs']);
      slowStartElapsedMs = duration(w['elapsedMs'], `${f}.slowStart.elapsedMs`) + age;
    }
    let latency: RestoredBackend['latency'];
    if (b['latency'] !== undefined) {
      const l = object(b['latency'], `${f}.latency`, ['ewmaMs', 'ageMs']);
      const ewmaMs = l['ewmaMs'];
      if (typeof ewmaMs !== 'number' || !(ewmaMs >= 0) || ewmaMs === Number.POSITIVE_INFINITY) {
        refuse('malformed', 'expected a finite number >= 0', `${f}.latency.ewmaMs`);
      }
      latency = {
        ewmaMs: ewmaMs as number,
        ageMs: duration(l['ageMs'], `${f}.latency.ageMs`) + age,
      };
    }
    if (leaving) {
      removing.add(spec.id);
      return;
    }
    backends.push({ spec, healthy, draining, ejection, slowStartElapsedMs, latency });
  });
  return { ageMs: age, backends, removing };
}

function unknownKeys(o: Record<string, unknown>, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(o)) {
    if (!known.includes(key)) {
      throw new SnapshotRestoreError(
        'malformed',
        `no such field in a version ${POOL_SNAPSHOT_VERSION} snapshot`,
        `${prefix}${key}`,
      );
    }
  }
}

function object(value: unknown, field: string, keys: readonly string[]): Record<string, unknown> {
  if (!isPlainObject(value))
    throw new SnapshotRestoreError('malformed', 'expected an object', field);
  unknownKeys(value, keys, `${field}.`);
  return value;
}

function bool(o: Record<string, unknown>, key: string, at: string): boolean {
  const v = o[key];
  if (typeof v !== 'boolean') {
    throw new SnapshotRestoreError('malformed', 'expected true or false', `${at}.${key}`);
  }
  return v;
}

function duration(value: unknown, field: string): number {
  if (typeof value !== 'number' || !(value >= 0) || value > MAX_DURATION_MS) {
    throw new SnapshotRestoreError(
      'malformed',
      `expected a duration in ms, a finite number >= 0 and <= ${MAX_DURATION_MS}`,
      field,
    );
  }
  return value;
}
