/**
 * UTF-8 encoding into one reused scratch buffer, so that hashing a short key allocates nothing.
 * Hash functions here are synchronous and never re-enter each other, so one buffer serves all.
 * @internal
 */

let scratch = new Uint8Array(1024);
let scratch32 = new Int32Array(scratch.buffer);

/** The scratch buffer (read it after {@link encodeUtf8}: encoding may replace it with a larger one). */
export function utf8Scratch(): Uint8Array {
  return scratch;
}

/** The same scratch memory seen as 32-bit words in platform byte order. */
export function utf8Scratch32(): Int32Array {
  return scratch32;
}

/** Whether the platform stores typed-array words little-endian (virtually every CPU today). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Makes the scratch buffer hold at least `bytes` bytes and returns it.
 * @internal
 */
export function reserveScratch(bytes: number): Uint8Array {
  if (scratch.length < bytes) {
    let size = scratch.length;
    while (size < bytes) size *= 2;
    scratch = new Uint8Array(size);
    scratch32 = new Int32Array(scratch.buffer);
  }
  return scratch;
}

/**
 * Writes the UTF-8 bytes of `str[start, end)` at the start of the scratch buffer, leaving at least
 * `extra` spare bytes after them (room for a hash's padding), and returns the byte length.
 * A lone surrogate becomes U+FFFD, as `TextEncoder` and Node's `Buffer` encode it.
 * @internal
 */
export function encodeUtf8(str: string, start: number, end: number, extra: number): number {
  // At most 3 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units).
  const buf = reserveScratch((end - start) * 3 + extra);
  let p = 0;
  for (let i = start; i < end; i++) {
    let c = str.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
      continue;
    }
    if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
      continue;
    }
    if (c >= 0xd800 && c < 0xe000) {
      if (c < 0xdc00 && i + 1 < end) {
        const d = str.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          i++;
          const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          buf[p++] = 0xf0 | (cp >> 18);
          buf[p++] = 0x80 | ((cp >> 12) & 0x3f);
          buf[p++] = 0x80 | ((cp >> 6) & 0x3f);
          buf[p++] = 0x80 | (cp & 0x3f);
          continue;
        }
      }
      c = 0xfffd;
    }
    buf[p++] = 0xe0 | (c >> 12);
    buf[p++] = 0x80 | ((c >> 6) & 0x3f);
    buf[p++] = 0x80 | (c & 0x3f);
  }
  return p;
}

/**
 * Copies `bytes` to the start of the scratch buffer with `extra` spare bytes after them.
 * @internal
 */
export function copyToScratch(bytes: Uint8Array, extra: number): number {
  reserveScratch(bytes.length + extra).set(bytes);
  return bytes.length;
}
