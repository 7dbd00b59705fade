/**
 * The first mistakes of a new user, each answered by an error (or a probe reason) that says what
 * to do: a misspelt option, a backend URL without its scheme, a URL where a backend id belongs, a
 * pool of non-HTTP backends handed to a balanced fetch or to the HTTP probe, and undici `Pool`
 * options given to the dispatcher at the top level, as `BalancedPool` took them.
 */
import { describe, expect, it } from 'vitest';
import { UnknownBackendError } from '../../src/errors/unknown-backend-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import { HealthChecker } from '../../src/health/health-checker.js';
import { OutlierDetector } from '../../src/health/outlier-detector.js';
import { httpProbe } from '../../src/health/probes.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock } from '../../src/testing/index.js';
import { BalancedDispatcher } from '../../src/undici/balanced-dispatcher.js';
import { configError } from '../support/config-errors.js';

const BACKENDS = ['http://10.0.1.10:8080', 'http://10.0.1.11:8080'];

describe('a misspelt option names the option meant', () => {
  const pool = new BackendPool({ backends: BACKENDS });
  it.each<[string, () => unknown, string, string]>([
    [
      'backend',
      () => new BackendPool({ backend: BACKENDS } as never),
      'BackendPoolOptions.backend',
      'backends',
    ],
    [
      'retry',
      () => createBalancedFetch(pool, { retry: 2 } as never),
      'BalancedFetchOptions.retry',
      'retries',
    ],
    [
      'timeout',
      () => createBalancedFetch(pool, { timeout: 2000 } as never),
      'BalancedFetchOptions.timeout',
      'timeoutMs',
    ],
    [
      'interval',
      () => new HealthChecker(pool, { interval: 5000 } as never),
      'HealthCheckerOptions.interval',
      'intervalMs',
    ],
    [
      'consecutive5xx',
      () => new OutlierDetector(pool, { consecutiveFailure: 3 } as never),
      'OutlierDetectorOptions.consecutiveFailure',
      'consecutiveFailures',
    ],
    [
      'DeadlineMs',
      () => createBalancedFetch(pool, { DeadlineMs: 1 } as never),
      'BalancedFetchOptions.DeadlineMs',
      'deadlineMs',
    ],
  ])('%s', (_, fn, field, meant) => {
    const error = configError(fn);
    expect(error.field).toBe(field);
    expect(error.message).toContain(`Did you mean "${meant}"?`);
    // The list of known options stays, for the ones no guess reaches.
    expect(error.message).toMatch(/\(known: [^)]*\)/);
  });

  it('a name far from every option gets the list alone', () => {
    const error = configError(() => createBalancedFetch(pool, { zzNotAnOption: 1 } as never));
    expect(error.message).not.toContain('Did you mean');
    expect(error.message).toContain('(known: fetch, retries,');
  });
});

describe('a backend URL without its scheme', () => {
  it.each([
    ['10.0.1.10:8080', 'http://10.0.1.10:8080'],
    ['localhost:8080', 'http://localhost:8080'],
    ['api.internal:8080', 'http://api.internal:8080'],
    ['api.internal', 'http://api.internal'],
  ])('%s: the message shows the URL with http://', (given, meant) => {
    const error = configError(() => new BackendPool({ backends: [given] }));
    expect(error.field).toBe('backends[0].url');
    expect(error.message).toContain(`did you mean ${JSON.stringify(meant)}?`);
  });

  it('a URL with a scheme gets no such guess', () => {
    const error = configError(() => new BackendPool({ backends: ['http://'] }));
    expect(error.message).not.toContain('did you mean');
  });
});

describe('a URL where a backend id belongs', () => {
  it('names the id of the backend with that URL', async () => {
    const pool = new BackendPool({ backends: [...BACKENDS, 'https://api.internal/v1/'] });
    for (const [given, id] of [
      ['http://10.0.1.10:8080', '10.0.1.10:8080'],
      ['http://10.0.1.11:8080/', '10.0.1.11:8080'],
      ['https://api.internal:443/v1', 'api.internal:443/v1'],
    ] as const) {
      let caught: unknown;
      try {
        await pool.drain(given, { graceMs: 0 });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(UnknownBackendError);
      expect((caught as Error).message).toContain(`that is the URL of backend "${id}"`);
    }
    expect(() => pool.setWeight('10.0.1.12:8080', 2)).toThrow(
      /pass the id of a backend the pool holds .*it holds: 10\.0\.1\.10:8080, 10\.0\.1\.11:8080/,
    );
    await pool.close();
  });
});

describe('non-HTTP backends where HTTP is spoken', () => {
  it('a balanced fetch over tcp:// backends is refused when it is made', () => {
    const pool = new BackendPool({ backends: ['tcp://10.0.2.5:6379', 'redis://10.0.2.6:6379'] });
    const error = configError(() => createBalancedFetch(pool));
    expect(error.field).toBe('backend "10.0.2.5:6379" url');
    expect(error.message).toContain('an http: or https: URL');
    expect(error.message).toContain('pool.acquire()');
    expect(error.message).toContain('connect() from loadwise/node');
  });

  it('the HTTP probe fails a tcp:// backend with a reason that names tcpProbe', async () => {
    let calls = 0;
    const probe = httpProbe({
      fetch: async () => {
        calls++;
        return new Response('ok');
      },
    });
    const result = await probe(
      { id: 'r', url: 'tcp://10.0.2.5:6379' } as never,
      new AbortController().signal,
    );
    expect(result).toMatchObject({ ok: false });
    expect((result as { reason: string }).reason).toContain('tcpProbe() from loadwise/node');
    expect(calls).toBe(0);
  });
});

describe('BalancedPool options given to BalancedDispatcher at the top level', () => {
  it.each([
    ['connections', '`poolOptions`'],
    ['keepAliveTimeout', '`poolOptions`'],
    ['maxWeightPerServer', 'no equivalent'],
    ['factory', 'not supported'],
  ])('%s', (key, advice) => {
    const pool = new BackendPool({ backends: BACKENDS, clock: new ManualClock() });
    const error = configError(() => new BalancedDispatcher(pool, { [key]: 1 } as never));
    expect(error.field).toBe(`BalancedDispatcherOptions.${key}`);
    expect(error.message).toContain(advice);
  });
});
