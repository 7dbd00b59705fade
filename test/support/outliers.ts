/**
 * A pool of numbered backends (`b0`, `b1`, …) on a ManualClock with an OutlierDetector, and a
 * record of what the detector did, for the outlier-detection tests.
 */
import { expect } from 'vitest';
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import {
  type EjectionCause,
  OutlierDetector,
  type OutlierDetectorOptions,
} from '../../src/health/outlier-detector.js';
import { seededRandom } from '../../src/testing/index.js';
import type { Algorithm, LeaseOutcome } from '../../src/types.js';
import { numbered, testPool } from './pools.js';

/** `n` backends with an OutlierDetector; round robin from `b0` unless `algorithm` is given. */
export function detecting(n: number, options: OutlierDetectorOptions = {}, algorithm?: Algorithm) {
  const { pool, clock } = testPool(numbered(n), {
    algorithm: algorithm ?? new RoundRobin({ startIndex: 0 }),
    random: seededRandom(3),
  });
  const detector = new OutlierDetector(pool, options);
  const ejections: { id: string; cause: EjectionCause; durationMs: number; ejections: number }[] =
    [];
  const skipped: { id: string; ejected: number; total: number }[] = [];
  detector.on('eject', (e) =>
    ejections.push({
      id: e.backend.id,
      cause: e.cause,
      durationMs: e.durationMs,
      ejections: e.ejections,
    }),
  );
  detector.on('eject-skipped', (e) =>
    skipped.push({ id: e.backend.id, ejected: e.ejected, total: e.total }),
  );
  /** `times` calls pinned to backend `id`, each released with `outcome`. */
  const call = (id: string, outcome: LeaseOutcome, times = 1): void => {
    for (let i = 0; i < times; i++) {
      const lease = pool.acquire({ affinity: { id } });
      expect(lease.backend.id).toBe(id);
      lease.release(outcome);
    }
  };
  const state = (id: string) => pool.get(id)?.state;
  /** Advances the clock to `ms` since the start. */
  const at = (ms: number): void => clock.advance(ms - clock.now());
  /** The ejection multiplier of backend `id`. */
  const multiplier = (id: string) => detector.status().find((s) => s.id === id)?.ejections;
  return { clock, pool, detector, ejections, skipped, call, state, at, multiplier };
}
