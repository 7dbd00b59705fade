/**
 * The emitter behind the pool's, the balanced fetch's and the dispatcher's events keeps a flag of
 * whether anyone listens, so the per-call paths skip building events nobody hears. The flag must
 * follow every way a listener comes and goes, or events are lost (or built for no one).
 */
import { describe, expect, it } from 'vitest';
import { Emitter } from '../../src/emitter.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';

type Events = { a: (n: number) => void; b: () => void };

describe('Emitter', () => {
  it('is quiet exactly while no listener is registered, whichever way they come and go', () => {
    const e = new Emitter<Events>();
    expect(e.quiet).toBe(true);
    const f = (): void => undefined;
    e.on('a', f);
    expect(e.quiet).toBe(false);
    e.off('a', f);
    expect(e.quiet).toBe(true);
    e.addListener('b', f);
    expect(e.quiet).toBe(false);
    e.removeListener('b', f);
    expect(e.quiet).toBe(true);
    e.once('a', f);
    expect(e.quiet).toBe(false);
    // A once listener is spent by its event.
    e.emit('a', 1);
    expect(e.quiet).toBe(true);
    e.on('a', f).on('b', f);
    e.removeAllListeners('a');
    expect(e.quiet).toBe(false);
    e.removeAllListeners();
    expect(e.quiet).toBe(true);
  });

  it('the pool emits acquire and release to listeners added, spent and removed at any time', () => {
    const pool = new BackendPool({
      backends: ['http://10.0.0.1:80'],
      clock: new ManualClock(),
      random: seededRandom(1),
    });
    const seen: string[] = [];
    const call = (): void => {
      pool.acquire().release({ ok: true, latencyMs: 1 });
    };
    call();
    expect(seen).toEqual([]);
    const onAcquire = (): void => {
      seen.push('acquire');
    };
    pool.on('acquire', onAcquire);
    pool.once('release', () => seen.push('release-once'));
    call();
    call();
    expect(seen).toEqual(['acquire', 'release-once', 'acquire']);
    pool.off('acquire', onAcquire);
    pool.on('release', () => seen.push('release'));
    call();
    expect(seen).toEqual(['acquire', 'release-once', 'acquire', 'release']);
    pool.removeAllListeners('release');
    call();
    expect(seen).toHaveLength(4);
  });
});
