import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { md5Hash32 } from '../../src/hashing/md5.js';
import { LoadBalancerConfigError, md5 } from '../../src/index.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const nodeMd5 = (input: string | Uint8Array): Buffer => createHash('md5').update(input).digest();

describe('md5', () => {
  // RFC 1321, appendix A.5.
  it.each([
    ['', 'd41d8cd98f00b204e9800998ecf8427e'],
    ['a', '0cc175b9c0f1b6a831c399e269772661'],
    ['abc', '900150983cd24fb0d6963f7d28e17f72'],
    ['message digest', 'f96b697d7cb7938d525a2f31aaf161d0'],
    ['abcdefghijklmnopqrstuvwxyz', 'c3fcd3d76192e4007dfb496cca67e13b'],
    [
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
      'd174ab98d277d9f5a5611c2c9f419d9f',
    ],
    [
      '12345678901234567890123456789012345678901234567890123456789012345678901234567890',
      '57edf4a22be3c955ac49da2e2107b67a',
    ],
  ])('matches the RFC 1321 test suite for %j', (input, expected) => {
    expect(hex(md5(input))).toBe(expected);
  });

  it('pads correctly around the 55/56/64-byte block boundaries', () => {
    for (let len = 50; len <= 130; len++) {
      const s = 'k'.repeat(len);
      expect(hex(md5(s)), `length ${len}`).toBe(nodeMd5(s).toString('hex'));
    }
  });

  it('hashes UTF-8 like node:crypto, lone surrogates included (as U+FFFD)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          // any UTF-16 code units, so lone surrogates too
          fc
            .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 80 })
            .map((units) => String.fromCharCode(...units)),
          fc.string({ unit: 'grapheme', maxLength: 30 }),
        ),
        (s) => {
          expect(hex(md5(s))).toBe(nodeMd5(s).toString('hex'));
        },
      ),
      { seed: 42, numRuns: 300 },
    );
  });

  it('hashes raw bytes like node:crypto', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(hex(md5(bytes))).toBe(nodeMd5(bytes).toString('hex'));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('grows its scratch buffer for long inputs', () => {
    const long = 'é'.repeat(20_000);
    expect(hex(md5(long))).toBe(nodeMd5(long).toString('hex'));
    // and short inputs still hash right afterwards
    expect(hex(md5('abc'))).toBe('900150983cd24fb0d6963f7d28e17f72');
  });

  it('gives the ketama key hash: the little-endian uint32 of digest bytes 0..3', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        expect(md5Hash32(s)).toBe(nodeMd5(s).readUInt32LE(0));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('hashes a range of a string without slicing it', () => {
    expect(md5Hash32('::ffff:10.0.0.1', 7, 15)).toBe(nodeMd5('10.0.0.1').readUInt32LE(0));
  });

  it('rejects what is neither a string nor bytes', () => {
    expect(() => md5(42 as unknown as string)).toThrow(LoadBalancerConfigError);
  });
});
