import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createCookieSigner,
  getCookie,
  LoadBalancerConfigError,
  parseCookieHeader,
  serializeSetCookie,
} from '../../src/index.js';

const SECRET = 'unit-test-cookie-secret-k-7f3a9c2e';
const OTHER = 'unit-test-cookie-secret-z-51d8b04a';

describe('getCookie / parseCookieHeader', () => {
  it.each([
    ['SERVERID=abc', 'abc'],
    ['a=1; SERVERID=abc; b=2', 'abc'],
    ['a=1;SERVERID=abc', 'abc'],
    ['  SERVERID = abc  ', 'abc'],
    ['SERVERID="abc"', 'abc'],
    ['SERVERID=first; SERVERID=second', 'first'],
    ['XSERVERID=no; SERVERIDX=no', undefined],
    ['SERVERID', undefined],
    ['', undefined],
    ['SERVERID=', ''],
  ])('getCookie(%j) = %j', (header, expected) => {
    expect(getCookie(header, 'SERVERID')).toBe(expected);
  });

  it('treats a missing header as no cookie', () => {
    expect(getCookie(null, 'SERVERID')).toBeUndefined();
    expect(getCookie(undefined, 'SERVERID')).toBeUndefined();
  });

  it('parses every pair, first occurrence winning', () => {
    expect([...parseCookieHeader('a=1; b="2"; junk; a=3; c=x=y')]).toEqual([
      ['a', '1'],
      ['b', '2'],
      ['c', 'x=y'],
    ]);
  });

  it('agrees with parseCookieHeader on generated headers (property)', () => {
    const name = fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/);
    const value = fc.stringMatching(/^[A-Za-z0-9._-]{0,12}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 8 }), name, (pairs, wanted) => {
        const header = pairs.map(([n, v]) => `${n}=${v}`).join('; ');
        expect(getCookie(header, wanted)).toBe(parseCookieHeader(header).get(wanted));
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});

describe('serializeSetCookie', () => {
  it.each([
    [{}, 'SERVERID=abc; Path=/; HttpOnly; SameSite=Lax'],
    [
      { secure: true, maxAgeSec: 3600, sameSite: 'Strict' },
      'SERVERID=abc; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict',
    ],
    [
      { path: '/app', domain: 'example.com', httpOnly: false },
      'SERVERID=abc; Path=/app; Domain=example.com; SameSite=Lax',
    ],
    [{ secure: true, sameSite: 'None' }, 'SERVERID=abc; Path=/; HttpOnly; Secure; SameSite=None'],
  ])('with %j', (attributes, expected) => {
    expect(serializeSetCookie('SERVERID', 'abc', attributes as never)).toBe(expected);
  });

  it.each([
    ['bad name', 'abc', {}],
    ['SERVERID', 'a b', {}],
    ['SERVERID', 'a;b', {}],
    ['SERVERID', 'abc', { sameSite: 'None' }],
    ['SERVERID', 'abc', { sameSite: 'lax' }],
    ['SERVERID', 'abc', { path: '/a;b' }],
    ['SERVERID', 'abc', { maxAgeSec: 1.5 }],
    ['SERVERID', 'abc', { expires: 1 }],
  ])('rejects %j %j %j', (name, value, attributes) => {
    expect(() => serializeSetCookie(name, value, attributes as never)).toThrow(
      LoadBalancerConfigError,
    );
  });
});

describe('createCookieSigner', () => {
  it('signs and verifies; a tampered value or signature fails', async () => {
    const signer = createCookieSigner(SECRET);
    const signed = await signer.sign('payload.1.2');
    expect(signed).toMatch(/^payload\.1\.2\.[A-Za-z0-9_-]{22}$/);
    expect(await signer.verify(signed)).toBe('payload.1.2');
    expect(await signer.verify(signed.replace('payload', 'paylOad'))).toBeUndefined();
    const last = signed.at(-1) === 'A' ? 'B' : 'A';
    expect(await signer.verify(signed.slice(0, -1) + last)).toBeUndefined();
    expect(await signer.verify('payload.1.2')).toBeUndefined();
    expect(await createCookieSigner(OTHER).verify(signed)).toBeUndefined();
  });

  it('rotates keys: the first secret signs, every secret verifies', async () => {
    const old = createCookieSigner(OTHER);
    const rotated = createCookieSigner([SECRET, OTHER]);
    const fromOld = await old.sign('v');
    expect(await rotated.verify(fromOld)).toBe('v');
    expect(await old.verify(await rotated.sign('v'))).toBeUndefined();
    expect(await createCookieSigner(SECRET).verify(await rotated.sign('v'))).toBe('v');
  });

  it('accepts byte secrets', async () => {
    const bytes = crypto.getRandomValues(new Uint8Array(32));
    const signer = createCookieSigner(bytes);
    expect(await signer.verify(await signer.sign('x'))).toBe('x');
  });

  it.each([
    ['short', 'too short'],
    ['empty list', []],
    ['not a secret', 42],
    ['short bytes', new Uint8Array(8)],
  ])('rejects a secret that is %s', (_label, secret) => {
    expect(() => createCookieSigner(secret as never)).toThrow(LoadBalancerConfigError);
  });

  it.each([
    ['32 identical bytes', new Uint8Array(32).fill(7), '1 distinct byte value'],
    ['a Uint8Array never filled', new Uint8Array(32), '1 distinct byte value'],
    ['one character repeated', 'k'.repeat(32), '1 distinct byte value'],
    ['two characters alternating', 'ab'.repeat(20), '2 distinct byte values'],
    ['a word repeated', 'password'.repeat(4), '7 distinct byte values'],
    ['bytes 0, 1, 2, ... 31', Uint8Array.from({ length: 32 }, (_, i) => i), 'evenly spaced'],
    ['a 16-byte block twice', '0123456789abcdef'.repeat(2), 'repeats a block of 16 bytes'],
    ['a 10-byte block repeated', 'q1w2e3r4t5'.repeat(4), 'repeats a block of 10 bytes'],
    [
      'one weak key in a rotation list',
      ['unit-test-cookie-secret-k-7f3a9c2e', 'x'.repeat(32)],
      '1 distinct',
    ],
  ])('rejects a trivially guessable secret: %s', (_label, secret, why) => {
    let error: unknown;
    try {
      createCookieSigner(secret as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoadBalancerConfigError);
    expect((error as Error).message).toContain(why);
    expect((error as Error).message).toContain('not trivially guessable');
    // The secret itself never shows in the message.
    if (typeof secret === 'string') expect((error as Error).message).not.toContain(secret);
  });

  it('accepts secrets as they are usually made: random bytes, hex, base64, a passphrase', () => {
    const random = crypto.getRandomValues(new Uint8Array(32));
    const hex = Array.from(random, (b) => b.toString(16).padStart(2, '0')).join('');
    const base64 = btoa(String.fromCharCode(...random));
    for (const secret of [random, hex, base64, 'correct horse battery staple, v2 2024']) {
      expect(() => createCookieSigner(secret)).not.toThrow();
    }
  });
});
