import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createCookieSigner,
  getCookie,
  LoadBalancerConfigError,
  parseCookieHeader,
  serializeSetCookie,
} from '../../src/index.js';

const SECRET = 'k'.repeat(32);
const OTHER = 'z'.repeat(32);

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
    const bytes = new Uint8Array(32).fill(7);
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
});
