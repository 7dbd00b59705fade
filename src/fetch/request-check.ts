/**
 * Checks a request's method and headers before any backend is picked, so a request that can never
 * be sent fails as the caller's mistake instead of as a backend's failure.
 * @internal
 */
import { InvalidRequestError } from '../errors/invalid-request-error.js';
import { isFieldName, isSendableHeaderValue } from '../http-syntax.js';

/**
 * Characters no field value may carry (RFC 9110 §5.5; fetch's "header value", which also trims
 * leading and trailing whitespace, so those are accepted here).
 */
const FORBIDDEN_IN_VALUE = /[\r\n\0]/;
/** Methods the Fetch standard refuses to send ("forbidden method"). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK']);

/** The methods most requests use, as callers spell them, and their upper-case form. */
const COMMON_METHODS: ReadonlyMap<string, string> = new Map(
  ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'].flatMap((m) => [
    [m, m],
    [m.toLowerCase(), m],
  ]),
);

/**
 * Throws an {@link InvalidRequestError} for a method no fetch would send. One of the common
 * methods is looked up instead of checked (this runs for every request).
 */
export function checkMethod(method: string): void {
  if (COMMON_METHODS.has(method)) return;
  if (!isFieldName(method)) {
    throw new InvalidRequestError('method', method, describeBadChars(method, 'is not a token'));
  }
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
    throw new InvalidRequestError('method', method, 'is forbidden');
  }
}

/** The method upper-cased (as the retry rules compare it), after {@link checkMethod}. */
export function checkedMethod(method: string): string {
  const known = COMMON_METHODS.get(method);
  if (known !== undefined) return known;
  checkMethod(method);
  return method.toUpperCase();
}

/**
 * Throws an {@link InvalidRequestError} for a header that could never be sent. A `Headers` object
 * was checked by the platform when it was filled, so only plain objects and arrays are read.
 */
export function checkHeaders(headers: HeadersInit | undefined): void {
  if (headers === undefined || headers === null || typeof headers !== 'object') return;
  if (typeof (headers as Headers).get === 'function') return;
  if (Array.isArray(headers)) {
    for (const pair of headers) {
      if (Array.isArray(pair) && pair.length === 2) checkHeader(pair[0], pair[1]);
    }
    return;
  }
  for (const name of Object.keys(headers)) {
    const value = (headers as Record<string, unknown>)[name];
    if (value !== undefined) checkHeader(name, value);
  }
}

/**
 * A header part converted to a string as fetch converts it (Web IDL `ByteString`), or undefined
 * when it has no string form. Whether each character fits in a byte is checked by the caller:
 * a field name is a token, a value {@link isSendableHeaderValue}.
 */
function stringForm(x: unknown): string | undefined {
  if (typeof x === 'symbol') return undefined;
  try {
    return String(x);
  } catch {
    return undefined;
  }
}

function checkHeader(rawName: unknown, rawValue: unknown): void {
  const name = stringForm(rawName);
  if (name === undefined || !isFieldName(name)) {
    const shown = typeof rawName === 'string' ? rawName : '(not a string)';
    throw new InvalidRequestError('header-name', shown, describeBadChars(shown, 'is not a token'));
  }
  const value = stringForm(rawValue);
  if (value !== undefined && isSendableHeaderValue(value)) return;
  // Not sendable: a line break or NUL is named; otherwise a character is above U+00FF.
  const bad = value === undefined ? null : FORBIDDEN_IN_VALUE.exec(value);
  if (bad === null) {
    throw new InvalidRequestError(
      'header-value',
      name,
      'is not a string of bytes (a character above U+00FF, or a value with no string form)',
    );
  }
  const what = bad[0] === '\0' ? 'a NUL character' : 'a line break (CR or LF)';
  throw new InvalidRequestError('header-value', name, `contains ${what} at character ${bad.index}`);
}

function describeBadChars(text: string, fallback: string): string {
  if (text.length === 0) return 'is empty';
  const bad = /[\r\n]/.exec(text) ?? /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/.exec(text);
  if (bad === null) return fallback;
  const c = bad[0];
  const shown = c === '\r' ? 'CR' : c === '\n' ? 'LF' : c === ' ' ? 'a space' : JSON.stringify(c);
  return `contains ${shown} at character ${bad.index}`;
}
