/**
 * Load: 10,000 calls in flight at once through the balanced fetch to three loopback backends, and
 * 1,000,000 acquire/release cycles on a pool with constant memory. Counts must be exact. The runs
 * are in test/support/load-runs.ts; scripts/reliability.ts prints the same figures.
 */
import { describe, expect, it } from 'vitest';
import { acquireCycles, concurrentCalls } from '../support/load-runs.js';

describe('load', () => {
  it('10,000 concurrent calls through the balanced fetch all succeed, counted exactly', async () => {
    const r = await concurrentCalls(10_000);
    expect(r.ok).toBe(10_000);
    // Every call was picked before the first answer came back: all 10,000 were in flight at once.
    expect(r.peakInFlight).toBe(10_000);
    // Round robin over three: 3334, 3333, 3333, and the servers saw exactly the same.
    expect(r.byBody).toEqual([3334, 3333, 3333]);
    expect(r.requests).toEqual(r.byBody);
    expect(r.hits).toEqual(r.byBody);
    expect(r.failures).toEqual([0, 0, 0]);
    expect(r.inFlightAfter).toBe(0);
    expect(r.eventsInFlightAfter).toBe(0);
  }, 120_000);

  it('1,000,000 acquire/release cycles: exact counts and constant memory (child process, --expose-gc)', async () => {
    const CYCLES = 1_000_000;
    const r = await acquireCycles(CYCLES);
    expect(r.cycles).toBe(CYCLES);
    expect(r.requests.reduce((a, b) => a + b, 0)).toBe(CYCLES);
    expect([...r.requests].sort()).toEqual([333333, 333333, 333334]);
    expect(r.failures).toEqual([0, 0, 0]);
    expect(r.inFlight).toBe(0);
    expect(r.detectorTracked).toBe(3);
    // Constant memory: what a million cycles leave behind after a full GC is noise (JIT code and
    // feedback), under half a byte per cycle, and the second half adds no more than the first.
    const growth = r.heapAfter - r.heapBefore;
    console.log(
      `heap growth over ${CYCLES} cycles: ${growth} bytes (first half ${r.heapHalf - r.heapBefore}, second half ${r.heapAfter - r.heapHalf})`,
    );
    expect(growth).toBeLessThan(CYCLES / 2);
    expect(r.heapAfter - r.heapHalf).toBeLessThan(CYCLES / 4);
  }, 60_000);
});
