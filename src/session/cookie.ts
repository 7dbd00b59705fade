/**
 * Cookie parsing, `Set-Cookie` serialization and HMAC signing for sticky sessions. Uses only
 * web-platform globals (`crypto.subtle`, `TextEncoder`, `btoa`), so it runs wherever the core
 * runs.
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  checkBoolean,
  checkNumber,
  checkOneOf,
  checkOptions,
  checkString,
  isPlainObject,
} from '../validate.js';

/** The `SameSite` values (RFC 6265bis §5.4.7). */
export type SameSite = 'Strict' | 'Lax' | 'None';

/** Attributes of a `Set-Cookie` header (RFC 6265 §4.1). */
export interface CookieAttributes {
  /**
   * The `Path` attribute.
   * @default '/'
   */
  path?: string;
  /** The `Domain` attribute; left out (host-only cookie) when not given. @default undefined */
  domain?: string;
  /**
   * The `Max-Age` attribute in seconds; left out by default, which makes a browser-session
   * cookie (as HAProxy's `cookie ... insert` without `maxlife`).
   * @default undefined
   */
  maxAgeSec?: number;
  /**
   * The `HttpOnly` attribute: scripts in the page cannot read the cookie.
   * @default true
   */
  httpOnly?: boolean;
  /**
   * The `Secure` attribute: sent over HTTPS only. Required by browsers with `SameSite=None`.
   * @default false
   */
  secure?: boolean;
  /**
   * The `SameSite` attribute. `Lax` is what browsers assume when it is missing (RFC 6265bis).
   * @default 'Lax'
   */
  sameSite?: SameSite;
}

/**
 * An HMAC key: a string (UTF-8) or bytes, at least 32 bytes long and not trivially guessable
 * (refused: fewer than 8 distinct byte values, evenly spaced bytes such as 0, 1, 2, ... or
 * `abcd...`, and a short block repeated, such as `'secret'.repeat(6)`; an all-zero
 * `new Uint8Array(32)` that was never filled is the usual case). Give a list to rotate keys: the
 * first signs, every one verifies.
 */
export type CookieSecret = string | Uint8Array | readonly (string | Uint8Array)[];

const ATTRIBUTE_KEYS = ['path', 'domain', 'maxAgeSec', 'httpOnly', 'secure', 'sameSite'] as const;
const SAME_SITE: readonly SameSite[] = ['Strict', 'Lax', 'None'];

/** RFC 7230 `tchar`: the characters of a cookie name. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 §4.1.1 `cookie-octet`: printable ASCII except space, `"`, `,`, `;` and `\`. */
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;
/** Attribute values may hold anything printable but `;` (RFC 6265 §4.1.1 `av-octet`). */
const ATTRIBUTE_VALUE = /^[\x20-\x3A\x3C-\x7E]+$/;

/**
 * Reads one cookie from a `Cookie` request header. The first occurrence wins (browsers send
 * the cookie with the most specific path first, RFC 6265 §5.4). A value wrapped in double
 * quotes is returned without them.
 *
 * @example
 * ```ts
 * getCookie('theme=dark; SERVERID=abc', 'SERVERID'); // 'abc'
 * getCookie(request.headers.get('cookie'), 'SERVERID');
 * ```
 */
export function getCookie(header: string | null | undefined, name: string): string | undefined {
  checkString('name', name);
  if (header === null || header === undefined) return undefined;
  if (typeof header !== 'string')
    throw new LoadBalancerConfigError('header', header, 'a Cookie header string');
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq >= 0 && eq < end && header.slice(start, eq).trim() === name) {
      return unquote(header.slice(eq + 1, end).trim());
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * Parses a `Cookie` request header into a map of name to value (first occurrence wins; pairs
 * without `=` are skipped, as RFC 6265 §5.2 has user agents ignore them).
 *
 * @example
 * ```ts
 * parseCookieHeader('a=1; b="2"'); // Map { 'a' => '1', 'b' => '2' }
 * ```
 */
export function parseCookieHeader(header: string): Map<string, string> {
  if (typeof header !== 'string')
    throw new LoadBalancerConfigError('header', header, 'a Cookie header string');
  const cookies = new Map<string, string>();
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name.length === 0 || cookies.has(name)) continue;
    cookies.set(name, unquote(part.slice(eq + 1).trim()));
  }
  return cookies;
}

function unquote(value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"')
    ? value.slice(1, -1)
    : value;
}

/**
 * Checks cookie attributes and fills in the defaults.
 * @internal
 */
export function resolveCookieAttributes(
  field: string,
  attributes: CookieAttributes | undefined,
): Required<Omit<CookieAttributes, 'domain' | 'maxAgeSec'>> &
  Pick<CookieAttributes, 'domain' | 'maxAgeSec'> {
  const o = checkOptions(field, attributes, ATTRIBUTE_KEYS);
  const path = o.path === undefined ? '/' : checkAttribute(`${field}.path`, o.path);
  const domain = o.domain === undefined ? undefined : checkAttribute(`${field}.domain`, o.domain);
  const maxAgeSec =
    o.maxAgeSec === undefined
      ? undefined
      : checkNumber(`${field}.maxAgeSec`, o.maxAgeSec, { integer: true });
  const httpOnly = o.httpOnly === undefined ? true : checkBoolean(`${field}.httpOnly`, o.httpOnly);
  const secure = o.secure === undefined ? false : checkBoolean(`${field}.secure`, o.secure);
  const sameSite =
    o.sameSite === undefined ? 'Lax' : checkOneOf(`${field}.sameSite`, o.sameSite, SAME_SITE);
  if (sameSite === 'None' && !secure) {
    throw new LoadBalancerConfigError(
      `${field}.secure`,
      secure,
      'true when sameSite is None (browsers drop SameSite=None cookies without Secure)',
    );
  }
  const out: ReturnType<typeof resolveCookieAttributes> = { path, httpOnly, secure, sameSite };
  if (domain !== undefined) out.domain = domain;
  if (maxAgeSec !== undefined) out.maxAgeSec = maxAgeSec;
  return out;
}

function checkAttribute(field: string, value: unknown): string {
  const s = checkString(field, value);
  if (!ATTRIBUTE_VALUE.test(s)) {
    throw new LoadBalancerConfigError(field, s, 'printable ASCII without ";"');
  }
  return s;
}

/**
 * Checks a cookie name (an RFC 7230 token).
 * @internal
 */
export function checkCookieName(field: string, name: unknown): string {
  const s = checkString(field, name);
  if (!TOKEN.test(s)) {
    throw new LoadBalancerConfigError(field, s, 'a cookie name made of RFC 7230 token characters');
  }
  return s;
}

/**
 * Builds a `Set-Cookie` header value. The value must already be made of cookie-safe characters
 * (RFC 6265 §4.1.1): encode it first (e.g. with `encodeURIComponent`) when it may hold others.
 *
 * @example
 * ```ts
 * serializeSetCookie('SERVERID', 'abc', { secure: true, maxAgeSec: 3600 });
 * // 'SERVERID=abc; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax'
 * ```
 */
export function serializeSetCookie(
  name: string,
  value: string,
  attributes?: CookieAttributes,
): string {
  checkCookieName('name', name);
  if (typeof value !== 'string' || !COOKIE_VALUE.test(value)) {
    throw new LoadBalancerConfigError(
      'value',
      value,
      'a string of cookie-octets (RFC 6265 §4.1.1): no spaces, quotes, commas, semicolons or backslashes',
    );
  }
  if (attributes !== undefined && !isPlainObject(attributes)) {
    throw new LoadBalancerConfigError('attributes', attributes, 'an attributes object');
  }
  return formatSetCookie(name, value, resolveCookieAttributes('attributes', attributes));
}

/**
 * Formats a `Set-Cookie` value from checked parts.
 * @internal
 */
export function formatSetCookie(
  name: string,
  value: string,
  a: ReturnType<typeof resolveCookieAttributes>,
): string {
  let out = `${name}=${value}; Path=${a.path}`;
  if (a.domain !== undefined) out += `; Domain=${a.domain}`;
  if (a.maxAgeSec !== undefined) out += `; Max-Age=${a.maxAgeSec}`;
  if (a.httpOnly) out += '; HttpOnly';
  if (a.secure) out += '; Secure';
  out += `; SameSite=${a.sameSite}`;
  return out;
}

// ---------------------------------------------------------------- HMAC

/**
 * Bytes of HMAC-SHA256 kept in a signature: 16 (128 bits). RFC 2104 §5 allows truncating an
 * HMAC to no less than half its length and no less than 80 bits.
 */
const SIGNATURE_BYTES = 16;
/** Length of a signature once base64url-encoded (16 bytes, no padding). */
const SIGNATURE_CHARS = 22;
/** RFC 2104 §3: keys shorter than the hash output (32 bytes for SHA-256) weaken HMAC. */
const MIN_SECRET_BYTES = 32;

const encoder = new TextEncoder();

/**
 * HMAC-SHA256 keys imported once into Web Crypto, for signing and for opaque backend tokens.
 * @internal
 */
export class HmacKeys {
  readonly count: number;
  readonly #raw: readonly Uint8Array<ArrayBuffer>[];
  #keys: Promise<CryptoKey[]> | undefined;

  constructor(field: string, secret: CookieSecret) {
    const list = typeof secret === 'string' || secret instanceof Uint8Array ? [secret] : secret;
    if (!Array.isArray(list) || list.length === 0) {
      throw new LoadBalancerConfigError(
        field,
        secret,
        'a secret (string or Uint8Array) or a non-empty list of them',
      );
    }
    this.#raw = list.map((s: unknown, i: number) => {
      const f = list === secret ? `${field}[${i}]` : field;
      let bytes: Uint8Array<ArrayBuffer>;
      if (typeof s === 'string') bytes = encoder.encode(s);
      else if (s instanceof Uint8Array) bytes = new Uint8Array(s);
      else throw new LoadBalancerConfigError(f, s, 'a string or a Uint8Array');
      if (bytes.length < MIN_SECRET_BYTES) {
        throw new LoadBalancerConfigError(
          f,
          `(${bytes.length} bytes)`,
          `a secret of at least ${MIN_SECRET_BYTES} bytes (RFC 2104 §3); generate one with crypto.getRandomValues`,
        );
      }
      const weak = weakSecret(bytes);
      if (weak !== undefined) {
        // The value is never echoed: only its length and what is wrong with it.
        throw new LoadBalancerConfigError(
          f,
          `(${bytes.length} bytes)`,
          `a secret that is not trivially guessable (this one ${weak}); generate ${MIN_SECRET_BYTES} random bytes with crypto.getRandomValues`,
        );
      }
      return bytes;
    });
    this.count = this.#raw.length;
  }

  /** HMAC-SHA256 of `data` under the `index`-th secret. */
  async mac(index: number, data: string): Promise<Uint8Array> {
    this.#keys ??= Promise.all(
      this.#raw.map((raw) =>
        crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']),
      ),
    );
    const keys = await this.#keys;
    const key = keys[index];
    if (key === undefined) throw new RangeError(`HmacKeys.mac: no secret at index ${index}`);
    return new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(data)));
  }

  /** `value.signature`, signed with the first secret. */
  async sign(value: string): Promise<string> {
    const mac = await this.mac(0, value);
    return `${value}.${base64url(mac.subarray(0, SIGNATURE_BYTES))}`;
  }

  /** The value inside `signed` when any secret's signature matches, else `undefined`. */
  async verify(signed: string): Promise<string | undefined> {
    const dot = signed.lastIndexOf('.');
    if (dot < 0 || signed.length - dot - 1 !== SIGNATURE_CHARS) return undefined;
    const value = signed.slice(0, dot);
    const given = signed.slice(dot + 1);
    for (let i = 0; i < this.count; i++) {
      const mac = await this.mac(i, value);
      if (constantTimeEqual(given, base64url(mac.subarray(0, SIGNATURE_BYTES)))) return value;
    }
    return undefined;
  }
}

/** Fewest distinct byte values a secret may have (32 random bytes have about 30). */
const MIN_DISTINCT_BYTES = 8;

/**
 * Why a secret is trivially guessable, or undefined. Catches keys built by hand or by mistake
 * (`'x'.repeat(32)`, `new Uint8Array(32)` never filled, `0, 1, 2, ...`, a word repeated), not
 * weak passphrases in general: a brute-force estimate needs a model of the source, which a
 * library cannot know. For 32 random bytes, each rule fails with a probability far below 2^-100.
 */
function weakSecret(bytes: Uint8Array): string | undefined {
  const distinct = new Set(bytes).size;
  if (distinct < MIN_DISTINCT_BYTES) {
    return `has only ${distinct} distinct byte value${distinct === 1 ? '' : 's'}`;
  }
  const step = (bytes[1]! - bytes[0]! + 256) % 256;
  let even = true;
  for (let i = 2; i < bytes.length && even; i++)
    even = (bytes[i]! - bytes[i - 1]! + 256) % 256 === step;
  if (even) return 'is a run of evenly spaced bytes';
  for (let period = 1; period <= bytes.length / 2; period++) {
    let repeats = true;
    for (let i = period; i < bytes.length && repeats; i++) repeats = bytes[i] === bytes[i - period];
    if (repeats) return `repeats a block of ${period} bytes`;
  }
  return undefined;
}

/** Signs and verifies cookie values with HMAC-SHA256 (see {@link createCookieSigner}). */
export interface CookieSigner {
  /** Returns `value.signature` (22 base64url characters of signature). */
  sign(value: string): Promise<string>;
  /** Returns the value when its signature matches one of the secrets, else `undefined`. */
  verify(signed: string): Promise<string | undefined>;
}

/**
 * Creates a signer for cookie values: HMAC-SHA256 through Web Crypto, truncated to 128 bits
 * (RFC 2104 §5), compared in constant time. With a list of secrets, the first signs and all
 * verify, so keys can be rotated without dropping sessions.
 *
 * @example
 * ```ts
 * const signer = createCookieSigner(process.env.COOKIE_SECRET!);
 * const signed = await signer.sign('abc');   // 'abc.Xq3...'
 * await signer.verify(signed);               // 'abc'
 * await signer.verify('abc.forged');          // undefined
 * ```
 */
export function createCookieSigner(secret: CookieSecret): CookieSigner {
  const keys = new HmacKeys('secret', secret);
  return {
    sign: (value) => {
      if (typeof value !== 'string') throw new LoadBalancerConfigError('value', value, 'a string');
      return keys.sign(value);
    },
    verify: (signed) => {
      if (typeof signed !== 'string')
        throw new LoadBalancerConfigError('signed', signed, 'a string');
      return keys.verify(signed);
    },
  };
}

/**
 * SHA-256 of `data` (UTF-8).
 * @internal
 */
export async function sha256(data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(data)));
}

/**
 * Base64url without padding (RFC 4648 §5).
 * @internal
 */
export function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Compares two strings without an early exit, so timing does not reveal a matching prefix. */
function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
