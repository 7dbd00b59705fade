import { LoadBalancerError } from './load-balancer-error.js';

/**
 * Why a pool snapshot was refused:
 * - `version`: written by another snapshot format version;
 * - `stale`: older than the pool's `maxSnapshotAgeMs`;
 * - `future`: stamped later than this process's wall clock allows (clocks that disagree by more
 *   than a minute cannot be trusted with the durations it holds);
 * - `malformed`: not a snapshot, or a field of it is missing or wrong (`field` names it);
 * - `unknown-backend`: it holds a backend the pool was not given (`field` names it);
 * - `mismatch`: a backend of the same id has another URL in the pool.
 */
export type SnapshotRefusalReason =
  | 'version'
  | 'stale'
  | 'future'
  | 'malformed'
  | 'unknown-backend'
  | 'mismatch';

/**
 * A pool refused the snapshot it was asked to restore (the `restore` option): nothing of it was
 * applied and no pool was built. Start the pool without `restore` instead (cold), and log the
 * message: it says what was wrong.
 */
export class SnapshotRestoreError extends LoadBalancerError {
  /** Why it was refused. */
  readonly reason: SnapshotRefusalReason;
  /** The snapshot field at fault, such as `backends[2].ejection.remainingMs`, when one is. */
  readonly field: string | undefined;

  constructor(
    reason: SnapshotRefusalReason,
    detail: string,
    field?: string,
    options?: { cause?: unknown },
  ) {
    super(
      'LB_SNAPSHOT_REFUSED',
      `Pool snapshot refused (${reason}${field === undefined ? '' : `, ${field}`}): ${detail}. Nothing of it was applied; start the pool without \`restore\` (cold) instead`,
      options,
    );
    this.reason = reason;
    this.field = field;
  }
}
