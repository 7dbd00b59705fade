/**
 * Pools for unit tests: deterministic (a `ManualClock`, seeded randomness, no skew detection) and
 * named backends (`url('a')` is `http://a.test:80`, whose id is `idOf('a')`, `a.test:80`).
 */
import { RoundRobin } from '../../src/algorithms/round-robin.js';
import { BackendPool, type BackendPoolOptions } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { BackendSpec } from '../../src/types.js';

/** The URL of the backend named `name`: `http://<name>.test:80`. */
export const url = (name: string): string => `http://${name}.test:80`;
/** The id of the backend named `name`: `<name>.test:80`. */
export const idOf = (name: string): string => `${name}.test:80`;
/** The name in a backend id: `a` for `a.test:80`. */
export const nameOf = (id: string): string => id.split('.')[0]!;
/** Backends `b0` … `b<n-1>` at `http://10.0.0.1:80` … */
export const numbered = (n: number): BackendSpec[] =>
  Array.from({ length: n }, (_, i) => ({ url: `http://10.0.0.${i + 1}:80`, id: `b${i}` }));

/**
 * A pool over `backends` on a fresh `ManualClock` (returned with it), with `seededRandom(1)`,
 * `skew: false` and round robin from the first backend; `options` override any of these (the
 * returned clock stays the fresh one).
 */
export function testPool(
  backends: readonly BackendSpec[],
  options: BackendPoolOptions = {},
): { pool: BackendPool; clock: ManualClock } {
  const clock = new ManualClock();
  const pool = new BackendPool({
    backends,
    algorithm: new RoundRobin({ startIndex: 0 }),
    clock,
    random: seededRandom(1),
    skew: false,
    ...options,
  });
  return { pool, clock };
}
