import { describe, expect, it } from 'vitest';
import { isFieldName, isSendableHeaderValue } from '../../src/http-syntax.js';

describe('HTTP field syntax', () => {
  it('takes tokens as field names', () => {
    for (const n of ['x-a', 'X_Trace.Id', "a!#$%&'*+-.^_`|~9"]) expect(isFieldName(n)).toBe(true);
    for (const n of ['', 'x a', 'x:a', 'é', 'x\r\n']) expect(isFieldName(n)).toBe(false);
  });

  it('sends values without CR, LF, NUL or characters above U+00FF', () => {
    for (const v of ['', 'plain', ' padded ', 'tab\there', 'caf\u00e9', '\u00ff', '\x01']) {
      expect(isSendableHeaderValue(v)).toBe(true);
    }
    for (const v of ['a\rb', 'a\nb', 'a\0b', '5 €', '\u0100', '😀']) {
      expect(isSendableHeaderValue(v)).toBe(false);
    }
  });
});
