/**
 * The HTTP field grammar of RFC 9110, for checking header names and values a caller configures
 * before anything is sent.
 * @internal
 */

/**
 * RFC 9110 §5.1: field-name = token; §5.6.2: token = 1*tchar, tchar = "!" / "#" / "$" / "%" /
 * "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
 */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * RFC 9110 §5.5: field-value = *field-content; field-content = field-vchar
 * [ 1*( SP / HTAB / field-vchar ) field-vchar ]; field-vchar = VCHAR / obs-text (%x80-FF). So
 * no control character but HTAB inside, none at all at either end, and no leading or trailing
 * whitespace. Characters above U+00FF cannot be sent as one byte each (fetch refuses them).
 */
const FIELD_VALUE = /^(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?$/;

/**
 * What fetch refuses in a header value: CR, LF and NUL (its "header value" rule; they would end
 * or split the field) and characters above U+00FF (Web IDL ByteString: one byte per character).
 * Looser than {@link isFieldValue}: fetch trims surrounding whitespace and sends other controls.
 */
const UNSENDABLE_IN_VALUE = /[\r\n\0\u0100-\uffff]/;

/** Whether `name` is a valid header field name. */
export function isFieldName(name: string): boolean {
  return TOKEN.test(name);
}

/** Whether `value` is a valid header field value (the empty value is valid). */
export function isFieldValue(value: string): boolean {
  return FIELD_VALUE.test(value);
}

/** Whether fetch sends `value` as a header value: no CR, LF, NUL nor character above U+00FF. */
export function isSendableHeaderValue(value: string): boolean {
  return !UNSENDABLE_IN_VALUE.test(value);
}
