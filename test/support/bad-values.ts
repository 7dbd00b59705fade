/**
 * Values a careless or hostile caller may pass where an option belongs, as fast-check
 * arbitraries: `fc.anything()` plus the edge cases that break validation most often (NaN,
 * ±Infinity, negative, 2^31, 2^53, fractional, empty and whitespace strings, CR/LF/NUL, arrays,
 * functions, objects with unknown keys, null, undefined).
 */
import fc from 'fast-check';
import { seededRandom } from '../../src/testing/index.js';

/** Thrown by the callbacks the generators hand to the library (a user's own bug). */
export class UserCallbackError extends Error {
  constructor() {
    super('thrown by a user callback');
    this.name = 'UserCallbackError';
  }
}

/** Numbers at the edges of every range check. */
export const EDGE_NUMBERS: readonly number[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  -1,
  -0.5,
  0.5,
  1,
  1.5,
  2,
  3,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 50,
  2 ** 50 + 2,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  1e-300,
];

/** Strings that are empty, blank, or carry characters no header, URL or name should. */
export const EDGE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t',
  ' x ',
  '\r\n',
  'a\r\nb: c',
  'a\nb',
  'a\0b',
  '\0',
  'é€',
  '../..',
  '%00',
  '//evil.example/x',
  'http://user:pw@10.0.0.9:80',
  'x'.repeat(300),
];

/** Other shapes: fresh each time, so no run can poison the next. */
const EDGE_OTHERS: readonly (() => unknown)[] = [
  () => null,
  () => undefined,
  () => true,
  () => false,
  () => [],
  () => [1],
  () => ['a', 'b'],
  () => [null],
  () => ({}),
  () => ({ zzUnknown: 1 }),
  () => ({ 'x-a': 42 }),
  () => ({ 'x-a': Object.create(null) }),
  () => Object.create(null),
  () => () => undefined,
  () => () => 42,
  () => () => {
    throw new UserCallbackError();
  },
  () => new Map(),
  () => new Date(Number.NaN),
  () => 1n,
  () => Symbol('x'),
  () => new Uint8Array(3),
  () => new (class Custom {})(),
];

/** Header maps no request can carry: a line break, a character above U+00FF, odd values. */
export const badHeaders: fc.Arbitrary<unknown> = fc
  .constantFrom<() => unknown>(
    () => ({ 'x-a': 'a\r\nx-b: 1' }),
    () => ({ 'x-a': 'a\nb' }),
    () => ({ 'x-a': 'nul\0' }),
    () => ({ 'x-a': 'é€' }),
    () => ({ 'bad name': 'v' }),
    () => ({ '': 'v' }),
    () => ({ 'x-a': Object.create(null) }),
    () => ({ 'x-a': Symbol('v') }),
    () => [['x-a', 'b\r\nc']],
    () => [['x y', 'b']],
  )
  .map((make) => make());

/** One of the edge values above. */
export const edgeValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...EDGE_NUMBERS),
  fc.constantFrom(...EDGE_STRINGS),
  fc.constantFrom(...EDGE_OTHERS).map((make) => make()),
);

/** Anything at all: the edge values, or whatever fast-check makes up (kept small). */
export const badValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: edgeValue },
  {
    weight: 1,
    arbitrary: fc.anything({
      maxDepth: 2,
      maxKeys: 3,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withTypedArray: true,
      withSparseArray: true,
      withBoxedValues: true,
    }),
  },
);

/** Durations that are valid but extreme, next to ordinary ones. */
export const durationMs = (min = 0): fc.Arbitrary<number> =>
  fc.oneof(
    fc.constantFrom(1, 10, 100, 1000, 30_000, 2 ** 31 - 1, 2 ** 31, 2 ** 40, 2 ** 50),
    fc.integer({ min: Math.ceil(min), max: 100_000 }),
    fc.double({ min: Math.max(min, 1e-3), max: 5000, noNaN: true }),
  );

/** Counts (integers >= min), ordinary and huge. */
export const count = (min = 1, max = 2 ** 53 - 1): fc.Arbitrary<number> =>
  fc.oneof(
    fc.integer({ min, max: Math.min(max, min + 10) }),
    fc.constantFrom(...[min, 2 ** 31, 2 ** 32, 2 ** 53 - 1].filter((n) => n >= min && n <= max)),
  );

/** A fraction in [lo, hi]. */
export const fraction = (lo = 0, hi = 1): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(lo, hi), fc.double({ min: lo, max: hi, noNaN: true }));

/** Strings that are fine names (and a few odd but legal ones). */
export const name: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('a', 'users', 'name with spaces', 'ünïcødé', 'x'.repeat(200)),
  fc.string({ minLength: 1, maxLength: 12 }),
);

/** A callback: mostly a well-behaved one (`good`), sometimes one that returns junk or throws. */
export function callback<F extends (...args: never[]) => unknown>(good: F): fc.Arbitrary<F> {
  const junk = fc.constantFrom<(...args: never[]) => unknown>(
    () => undefined,
    () => 42,
    () => ({}),
    () => {
      throw new UserCallbackError();
    },
  );
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant(good) },
    { weight: 2, arbitrary: junk },
  ) as fc.Arbitrary<F>;
}

/** A random source: seeded ones, and ones that break the `[0, 1)` contract. */
export const randomSource: fc.Arbitrary<() => number> = fc.oneof(
  { weight: 4, arbitrary: fc.nat().map((seed) => seededRandom(seed)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      () => 0,
      () => 0.999_999_999,
      () => 1,
      () => -0.5,
      () => Number.NaN,
      () => 7,
    ),
  },
);
