/**
 * Without `@opentelemetry/api` installed, instrumenting records nothing and breaks nothing.
 * The module is made unresolvable for this file.
 */
import { describe, expect, it, vi } from 'vitest';
import { BackendPool, instrument, RoundRobin } from '../../src/index.js';
import { ManualClock } from '../../src/testing/index.js';

vi.mock('@opentelemetry/api', () => {
  throw new Error("Cannot find package '@opentelemetry/api'");
});

describe('without @opentelemetry/api', () => {
  it('resolves ready to false, attaches nothing and leaves the pool working', async () => {
    const pool = new BackendPool({
      backends: ['http://10.0.0.1:80'],
      algorithm: new RoundRobin(),
      clock: new ManualClock(),
    });
    const events = new (await import('eventemitter3')).EventEmitter();
    const fetch = Object.assign(() => undefined, { events });
    const telemetry = instrument({ pool, fetch });
    expect(await telemetry.ready).toBe(false);
    expect(telemetry.active).toBe(false);
    expect(pool.listenerCount('release') + pool.listenerCount('state')).toBe(0);
    expect(events.eventNames()).toEqual([]);
    const lease = pool.acquire();
    expect(lease.release({ ok: true })).toBe(true);
    telemetry.close();
    await pool.close();
  });
});
