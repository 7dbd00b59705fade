import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestRefusedError } from '../../src/errors/request-refused-error.js';
import { createBalancedFetch } from '../../src/fetch/balanced-fetch.js';
import type { BalancedFetchOptions, FetchFunction } from '../../src/fetch/types.js';
import { parseServiceOrigins, resolvePath } from '../../src/fetch/url.js';
import { BackendPool } from '../../src/pool/backend-pool.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import type { BackendView } from '../../src/types.js';

const views = (...urls: string[]): { backends(): readonly BackendView[] } => {
  const list = urls.map((url) => ({ url }) as BackendView);
  return { backends: () => list };
};
const backends = views('http://10.0.0.1:8080/v1', 'http://10.0.0.2:8080/v1');
const policy = { serviceOrigins: new Set(['http://users.internal']) };
const resolve = (raw: string): string => resolvePath(raw, backends, policy);

describe('resolvePath: accepted URLs become a path under the backend base path', () => {
  it.each([
    ['/users/42', '/users/42'],
    ['/users/42?x=1&y=2', '/users/42?x=1&y=2'],
    ['/users/42#frag', '/users/42'],
    ['users/42', '/users/42'],
    ['', '/'],
    ['/', '/'],
    ['?q=1', '/?q=1'],
    ['/a/./b', '/a/b'],
    ['/a/b/../c', '/a/c'],
    ['/file.json', '/file.json'],
    ['/a?next=//evil.com', '/a?next=//evil.com'],
    ['http://users.internal/users/7?z=1', '/users/7?z=1'],
    ['http://users.internal', '/'],
    // A backend's own origin: its base path is stripped so any backend can take the call.
    ['http://10.0.0.2:8080/v1/users/9', '/users/9'],
    ['http://10.0.0.1:8080/v1', '/'],
    ['http://10.0.0.1:8080/other', '/other'],
  ])('%j -> %j', (raw, expected) => {
    expect(resolve(raw)).toBe(expected);
  });
});

describe('resolvePath: URLs that would leave the pool are refused', () => {
  it.each([
    ['//evil.com/x', 'protocol-relative'],
    ['\\\\evil.com/x', 'protocol-relative'],
    ['/\\evil.com/x', 'protocol-relative'],
    ['\\/evil.com/x', 'protocol-relative'],
    ['/\t/evil.com/x', 'protocol-relative'],
    ['/\n/evil.com', 'protocol-relative'],
    ['http://evil.com/x', 'origin'],
    ['http://10.0.0.1:9999/x', 'origin'],
    ['http://users.internal.evil.com/x', 'origin'],
    ['http:/evil.com/x', 'origin'],
    ['http:evil.com', 'origin'],
    ['https://10.0.0.1:8080/v1/x', 'scheme-change'],
    ['https://users.internal/x', 'scheme-change'],
    ['javascript:alert(1)', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['data:text/plain,hi', 'scheme'],
    ['ftp://10.0.0.1:8080/x', 'scheme'],
    ['/../admin', 'path-escape'],
    ['/a/../../admin', 'path-escape'],
    ['/%2e%2e/admin', 'path-escape'],
    ['/.%2E/admin', 'path-escape'],
    ['http://[::1', 'invalid-url'],
  ])('%j is refused (%s)', (raw, reason) => {
    let caught: unknown;
    try {
      resolve(raw);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(RequestRefusedError);
    expect((caught as RequestRefusedError).reason).toBe(reason);
    expect((caught as RequestRefusedError).code).toBe('LB_REQUEST_REFUSED');
  });

  it('names the allowed origins and what to do', () => {
    expect(() => resolve('http://evil.com/')).toThrow(
      /serviceOrigins.*Allowed origins: http:\/\/users\.internal, http:\/\/10\.0\.0\.1:8080/,
    );
  });

  it('property: whatever the input, the result is a path on the picked backend', () => {
    const base = 'http://10.0.0.1:8080/v1';
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .tuple(
              fc.constantFrom(
                'http://',
                'https://',
                'http:',
                '//',
                '\\\\',
                'javascript:',
                'file://',
                '',
              ),
              fc.constantFrom(
                '10.0.0.1:8080',
                '10.0.0.2:8080/v1',
                'users.internal',
                'evil.com',
                '',
              ),
              fc.webPath(),
            )
            .map((parts) => parts.join('')),
          fc.webPath(),
          fc
            .array(fc.constantFrom('/', '\\', '.', '..', '%2e', '\t', 'a', '?', '#', '@', ':'))
            .map((parts) => parts.join('')),
        ),
        (raw) => {
          let path: string;
          try {
            path = resolve(raw);
          } catch (error) {
            return error instanceof RequestRefusedError;
          }
          const url = new URL(base + path);
          return (
            path.startsWith('/') &&
            url.origin === 'http://10.0.0.1:8080' &&
            (url.pathname === '/v1' || url.pathname.startsWith('/v1/'))
          );
        },
      ),
      { seed: 42, numRuns: 600 },
    );
  });
});

describe('parseServiceOrigins', () => {
  it('normalizes origins', () => {
    expect(parseServiceOrigins(['http://Users.Internal/', 'https://a.b:443'])).toEqual([
      'http://users.internal',
      'https://a.b',
    ]);
  });

  it.each([
    ['not a url'],
    ['http://a.b/path'],
    ['http://a.b/?q'],
    ['ftp://a.b'],
    ['http://u:p@a.b'],
    [42],
  ])('rejects %j', (value) => {
    expect(() => parseServiceOrigins([value])).toThrow(/serviceOrigins\[0\]/);
  });
});

/** A balanced fetch over one backend whose transport records the URLs it is asked for. */
function recordingFetch(backend: string, options: BalancedFetchOptions) {
  const pool = new BackendPool({
    backends: [backend],
    clock: new ManualClock(),
    random: seededRandom(1),
    skew: false,
  });
  const calls: string[] = [];
  const fetch: FetchFunction = async (url) => {
    calls.push(url);
    return new Response('ok');
  };
  return { pool, calls, fetch: createBalancedFetch(pool, { ...options, fetch }) };
}

describe('balanced fetch: refused URLs send nothing', () => {
  const setup = () =>
    recordingFetch('http://10.0.0.1:8080/v1', { serviceOrigins: ['http://users.internal'] });

  it.each([
    ['//evil.com/x'],
    ['http://evil.com/x'],
    ['https://10.0.0.1:8080/v1/x'],
    ['javascript:alert(1)'],
    ['file:///etc/passwd'],
  ])('%j rejects with RequestRefusedError before any acquire or send', async (raw) => {
    const { pool, calls, fetch } = setup();
    await expect(fetch(raw)).rejects.toBeInstanceOf(RequestRefusedError);
    expect(calls).toEqual([]);
    expect(pool.stats().backends[0]!.requests).toBe(0);
  });

  it('treats URL objects and Request objects the same way', async () => {
    const { calls, fetch } = setup();
    await expect(fetch(new URL('http://evil.com/a'))).rejects.toBeInstanceOf(RequestRefusedError);
    await expect(fetch(new Request('http://evil.com/a'))).rejects.toBeInstanceOf(
      RequestRefusedError,
    );
    await (await fetch(new URL('http://users.internal/a?b=1'))).text();
    await (await fetch(new Request('http://users.internal/c'))).text();
    await (await fetch('/d')).text();
    expect(calls).toEqual([
      'http://10.0.0.1:8080/v1/a?b=1',
      'http://10.0.0.1:8080/v1/c',
      'http://10.0.0.1:8080/v1/d',
    ]);
  });
});

describe('ambiguous path encodings (servers that decode them climb above the base path)', () => {
  const AMBIGUOUS = [
    '/files/..%2fadmin',
    '/files/..%2Fadmin',
    '/files/%2e%2e%2fadmin',
    '/files/..;/admin',
    '/files/.;/x',
    '/files/%5c..%5cadmin',
    '/files/x%00.png',
    '/files/%252e%252e%252fadmin',
    '/files/..%252fadmin',
    // Overlong UTF-8, which old IIS decoded (CVE-2000-0884): invalid UTF-8, so ambiguous. Found
    // by the URL-escape table of docs/reliability.md (sent as they were before).
    '/files/..%c0%afadmin',
    '/files/%c0%ae%c0%ae/admin',
    '/files/..%c1%9cadmin',
    '/files/..%e0%80%afadmin',
    '/files/%ff',
  ];
  const setup = (backend: string, ambiguousPaths?: 'refuse' | 'allow' | 'auto') =>
    recordingFetch(backend, ambiguousPaths === undefined ? {} : { ambiguousPaths });

  it.each(AMBIGUOUS)('%s is refused by default under a base path', async (path) => {
    const { pool, calls, fetch } = setup('http://10.0.0.1:8080/api');
    const error = await fetch(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestRefusedError);
    expect((error as RequestRefusedError).reason).toBe('ambiguous-path');
    expect((error as Error).message).toContain('ambiguousPaths');
    expect(calls).toEqual([]);
    expect(pool.stats().backends[0]!.requests).toBe(0);
  });

  it('is refused in an absolute URL of the service too', async () => {
    const { fetch } = setup('http://10.0.0.1:8080/api');
    await expect(fetch('http://10.0.0.1:8080/api/files/..%2fadmin')).rejects.toMatchObject({
      reason: 'ambiguous-path',
    });
  });

  it("is forwarded under 'auto' when no backend has a base path, and always under 'allow'", async () => {
    const root = setup('http://10.0.0.1:8080');
    await (await root.fetch('/files/..%2fadmin')).text();
    expect(root.calls).toEqual(['http://10.0.0.1:8080/files/..%2fadmin']);
    const allowed = setup('http://10.0.0.1:8080/api', 'allow');
    await (await allowed.fetch('/files/..%2fadmin')).text();
    expect(allowed.calls).toEqual(['http://10.0.0.1:8080/api/files/..%2fadmin']);
  });

  it("'refuse' refuses even without a base path", async () => {
    const { fetch } = setup('http://10.0.0.1:8080', 'refuse');
    await expect(fetch('/a%2fb')).rejects.toMatchObject({ reason: 'ambiguous-path' });
  });

  it('leaves the query alone, and ordinary encodings pass', async () => {
    const { calls, fetch } = setup('http://10.0.0.1:8080/api');
    for (const path of [
      '/search?q=..%2f%00',
      '/files/a%20b',
      '/files/caf%C3%A9',
      '/files/%E2%82%AC',
      '/files/%F0%9F%98%80',
      '/x;v=1',
      '/search?q=%c0%af',
    ]) {
      await (await fetch(path)).text();
    }
    expect(calls).toHaveLength(7);
  });

  it('rejects an unknown mode', () => {
    const { pool } = setup('http://10.0.0.1:8080');
    expect(() => createBalancedFetch(pool, { ambiguousPaths: 'yes' as never })).toThrow(
      /ambiguousPaths/,
    );
  });
});
