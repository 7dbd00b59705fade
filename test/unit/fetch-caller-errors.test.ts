/**
 * Errors on the caller's side never blame a backend: a request that can never be sent is refused
 * before the pick, and a failure of this process (no file descriptor, no port, the fetch
 * implementation refusing its arguments) is not counted against the backend and not retried.
 */
import { describe, expect, it } from 'vitest';
import {
  createBalancedFetch,
  InvalidRequestError,
  LocalFailureError,
  OutlierDetector,
} from '../../src/index.js';
import { testPool, url } from '../support/pools.js';

function setup(fetchImpl: (url: string, init: RequestInit) => Promise<Response>) {
  const { pool, clock } = testPool([url('a'), url('b')]);
  let acquired = 0;
  pool.on('acquire', () => acquired++);
  const calls: string[] = [];
  const fetch = createBalancedFetch(pool, {
    retries: 2,
    backoffBaseMs: 0,
    fetch: async (u, init) => {
      calls.push(u);
      return fetchImpl(u, init);
    },
  });
  return { pool, clock, fetch, calls, acquired: () => acquired };
}

const ok = async () => new Response('ok');

describe('requests that can never be sent are refused before any pick', () => {
  const cases: [string, RequestInit, InvalidRequestError['reason'], string][] = [
    [
      'CR/LF in a header value',
      { headers: { 'x-user': 'a\r\nx-admin: 1' } },
      'header-value',
      'x-user',
    ],
    ['LF in a header value (array form)', { headers: [['x-a', 'b\nc']] }, 'header-value', 'x-a'],
    ['NUL in a header value', { headers: { 'x-a': 'b\0' } }, 'header-value', 'x-a'],
    ['a space in a header name', { headers: { 'x user': '1' } }, 'header-name', 'x user'],
    ['an empty header name', { headers: { '': '1' } }, 'header-name', ''],
    ['CR/LF in a method', { method: 'GET\r\nX: y' }, 'method', 'GET\r\nX: y'],
    ['a forbidden method', { method: 'TRACE' }, 'method', 'TRACE'],
  ];
  it.each(cases)('%s', async (_, init, reason, part) => {
    const { fetch, calls, acquired, pool } = setup(ok);
    const error = await fetch('/x', init).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ code: 'LB_INVALID_REQUEST', reason, part });
    expect(calls).toEqual([]);
    expect(acquired()).toBe(0);
    expect(pool.stats().inFlight).toBe(0);
  });

  it('never repeats a header value (it may be a credential)', async () => {
    const { fetch } = setup(ok);
    const error = (await fetch('/x', {
      headers: { authorization: 'Bearer s3cret\r\n' },
    }).catch((e: unknown) => e)) as Error;
    expect(error.message).toContain('"authorization"');
    expect(error.message).not.toContain('s3cret');
  });

  it('15 calls with a bad header leave a healthy backend healthy', async () => {
    const { fetch, pool } = setup(ok);
    const detector = new OutlierDetector(pool, { consecutiveFailures: 5 });
    for (let i = 0; i < 15; i++) {
      await expect(fetch('/x', { headers: { 'x-fwd': 'v\nx' } })).rejects.toBeInstanceOf(
        InvalidRequestError,
      );
    }
    expect(pool.stats().healthy).toBe(2);
    expect(pool.stats().backends.map((b) => b.failures)).toEqual([0, 0]);
    detector.close();
  });

  it('well-formed requests pass unchanged', async () => {
    const { fetch, calls } = setup(ok);
    const res = await fetch('/x', {
      method: 'PATCH',
      headers: [
        ['x-a', ' spaced value\t'],
        ['x-b', 'ünïcode'],
      ],
    });
    expect(res.status).toBe(200);
    expect(calls).toHaveLength(1);
  });
});

describe('failures of this process are the caller’s', () => {
  const localErrors: [string, () => unknown][] = [
    ['EMFILE', () => Object.assign(new Error('connect EMFILE'), { code: 'EMFILE' })],
    ['ENFILE', () => Object.assign(new Error('connect ENFILE'), { code: 'ENFILE' })],
    [
      'EADDRNOTAVAIL in a fetch failure',
      () =>
        new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect EADDRNOTAVAIL'), { code: 'EADDRNOTAVAIL' }),
        }),
    ],
    ['a TypeError of the fetch implementation', () => new TypeError('Invalid header value')],
  ];
  it.each(localErrors)('%s: not blamed, not retried, a LocalFailureError', async (_, make) => {
    const { fetch, calls, pool } = setup(async () => {
      throw make();
    });
    const detector = new OutlierDetector(pool, { consecutiveFailures: 1 });
    const error = await fetch('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalFailureError);
    const local = error as LocalFailureError;
    expect(local.code).toBe('LB_LOCAL_FAILURE');
    expect(local.backend).toBe('a.test:80');
    expect(local.attempts).toEqual([
      expect.objectContaining({ backend: 'a.test:80', outcome: 'local' }),
    ]);
    expect(local.message).toContain('a.test:80');
    expect(local.message).toContain('not blamed');
    expect(calls).toHaveLength(1);
    expect(pool.stats().backends.map((b) => b.failures)).toEqual([0, 0]);
    expect(pool.stats().healthy).toBe(2);
    expect(pool.stats().inFlight).toBe(0);
    detector.close();
  });

  it('a refused connection is still the backend’s, and retried elsewhere', async () => {
    let n = 0;
    const { fetch, pool } = setup(async () => {
      if (n++ === 0) {
        throw new TypeError('fetch failed', {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        });
      }
      return new Response('ok');
    });
    expect((await fetch('/x')).status).toBe(200);
    expect(pool.stats().backends.map((b) => b.failures)).toEqual([1, 0]);
  });
});
