/**
 * Credentials never reach a message: every URL shown to a person goes through one redactor, which
 * lets a URL parser decide what the credentials are, and hides the whole authority where the
 * input does not parse.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BackendPool,
  createBalancedFetch,
  LoadBalancerConfigError,
  RequestRefusedError,
} from '../../src/index.js';
import { redactUrl } from '../../src/redact.js';
import { testPool, url } from '../support/pools.js';

const SECRET = 's3cret';

/** Every spelling of a URL with credentials seen to slip past a plain `scheme://` pattern. */
const SPELLINGS = [
  `http://user:${SECRET}@h.example/x`,
  `http:user:${SECRET}@h.example`,
  `http:\\\\user:${SECRET}@h.example`,
  `http:/user:${SECRET}@h.example`,
  `http://user:${SECRET}@pass@h.example/x`,
  `http://user:p@${SECRET}@h.example/x`,
  `HTTPS://user:${SECRET}@h.example`,
  `https://:${SECRET}@h.example`,
  `http://user:${SECRET}/x@h.example/`,
  `http://user:${SECRET}@[not-a-host/x`,
  `//user:${SECRET}@h.example/x`,
  `\\\\user:${SECRET}@h.example/x`,
  `http://user:${SECRET}@h.example?x=@y`,
];

describe('redactUrl', () => {
  it.each(SPELLINGS)('%s', (raw) => {
    const shown = redactUrl(raw);
    expect(shown).not.toContain(SECRET);
    expect(shown).toContain('***');
  });

  it('leaves URLs and paths without credentials as they are', () => {
    for (const raw of ['http://h.example/users/@me', '/users/@me?x=a@b', 'http://h:8080/x', '/p']) {
      expect(redactUrl(raw)).toBe(raw);
    }
  });

  it('property: no generated password survives', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 0, maxLength: 12 }),
        fc.string({ minLength: 6, maxLength: 20 }).filter((p) => /^[A-Za-z0-9@:%!$~]+$/.test(p)),
        fc.constantFrom('http://', 'http:', 'http:/', 'http:\\\\', 'https://', '//'),
        (user, password, prefix) => {
          const raw = `${prefix}${encodeURIComponent(user)}:${password}@host.example/path`;
          const shown = redactUrl(raw);
          expect(shown.includes(password) && !'@host.example/path'.includes(password)).toBe(false);
        },
      ),
      { seed: 7, numRuns: 500 },
    );
  });
});

describe('messages and fields never carry a password', () => {
  it.each(SPELLINGS.filter((s) => !s.startsWith('//') && !s.startsWith('\\\\')))(
    'RequestRefusedError for %s',
    async (raw) => {
      const { pool } = testPool([url('a')]);
      const error = await createBalancedFetch(pool, { fetch: async () => new Response('') })(
        raw,
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RequestRefusedError);
      expect((error as RequestRefusedError).message).not.toContain(SECRET);
      expect((error as RequestRefusedError).url).not.toContain(SECRET);
    },
  );

  it('RequestRefusedError for a scheme-relative URL with credentials', async () => {
    const { pool } = testPool([url('a')]);
    const fetch = createBalancedFetch(pool, { fetch: async () => new Response('') });
    for (const raw of [`//user:${SECRET}@evil.example/x`, `\\\\user:${SECRET}@evil.example/x`]) {
      const error = (await fetch(raw).catch((e: unknown) => e)) as RequestRefusedError;
      expect(error).toBeInstanceOf(RequestRefusedError);
      expect(error.message).not.toContain(SECRET);
      expect(error.url).not.toContain(SECRET);
    }
  });

  it('a serviceOrigins error', () => {
    const { pool } = testPool([url('a')]);
    let error: unknown;
    try {
      createBalancedFetch(pool, { serviceOrigins: [`http://svc:${SECRET}@users.internal`] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as Error).message).not.toContain(SECRET);
    expect(String((error as LoadBalancerConfigError).value)).not.toContain(SECRET);
  });

  it.each(SPELLINGS.filter((s) => /^https?:/i.test(s)))('a backend URL %s', (raw) => {
    let error: unknown;
    try {
      new BackendPool({ backends: [raw] });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as Error).message).not.toContain(SECRET);
    expect(String((error as LoadBalancerConfigError).value)).not.toContain(SECRET);
  });
});
