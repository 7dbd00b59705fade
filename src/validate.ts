/**
 * Input checks shared by every public entry point. Each throws a {@link LoadBalancerConfigError}
 * naming the field, the value and what was expected.
 * @internal
 */
import type { Clock } from './clock.js';
import { LoadBalancerConfigError } from './errors/config-error.js';
import { isTrusted, type Random, trusted } from './random.js';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks that `value` is an options object (or undefined) holding only `allowed` keys. An unknown
 * key is refused with the list of known ones and, when one is close, a guess at what was meant
 * (`retry` for `retries`, `timeout` for `timeoutMs`); `hints` adds advice for keys that belong
 * elsewhere (undici's pool options under `poolOptions`).
 */
export function checkOptions<T extends object>(
  field: string,
  value: T | undefined,
  allowed: readonly string[],
  hints?: Readonly<Record<string, string>>,
): T {
  if (value === undefined) return {} as T;
  if (!isPlainObject(value)) throw new LoadBalancerConfigError(field, value, 'an options object');
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const hint =
        (hints !== undefined && Object.hasOwn(hints, key) ? hints[key] : undefined) ??
        didYouMean(key, allowed);
      throw new LoadBalancerConfigError(
        `${field}.${key}`,
        (value as Record<string, unknown>)[key],
        `a known option name (known: ${allowed.join(', ')})`,
        hint === undefined ? undefined : { hint },
      );
    }
  }
  return value;
}

/** `Did you mean "x"?` for the known name closest to `key`, when one is close enough. */
function didYouMean(key: string, known: readonly string[]): string | undefined {
  const k = key.toLowerCase();
  // A plural or singular, or a duration without its unit, first: `retry` is `retries` rather
  // than `retryOn`, though both are close.
  const variants = [
    `${k}s`,
    `${k}es`,
    k.replace(/y$/, 'ies'),
    `${k}ms`,
    k.replace(/(?:s|ms)$/, ''),
  ];
  const variant = known.find((name) => name !== key && variants.includes(name.toLowerCase()));
  if (variant !== undefined) return `Did you mean "${variant}"?`;
  // Up to 3 edits for longer names (`retry` → `retries`), fewer for short ones, so that a
  // suggestion is a likely typo rather than any short name.
  let best: string | undefined;
  let bestDistance = k.length >= 5 ? 3 : k.length >= 3 ? 2 : 1;
  for (const name of known) {
    const d = editDistance(k, name.toLowerCase());
    if (d < bestDistance || (d === bestDistance && best === undefined)) {
      best = name;
      bestDistance = d;
    }
  }
  return best === undefined ? undefined : `Did you mean "${best}"?`;
}

/**
 * Levenshtein distance (insertions, deletions, substitutions), two rows. Option names are short
 * and this runs only on the way to an error, so a dependency would cost more than it saves.
 */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = row;
  }
  return prev[b.length]!;
}

export function checkNumber(
  field: string,
  value: unknown,
  {
    min,
    max,
    integer = false,
    minExclusive = false,
  }: { min?: number; max?: number; integer?: boolean; minExclusive?: boolean } = {},
): number {
  const range = [
    integer ? 'an integer' : 'a finite number',
    min === undefined ? '' : minExclusive ? `> ${min}` : `>= ${min}`,
    max === undefined ? '' : `<= ${max}`,
  ]
    .filter(Boolean)
    .join(' ');
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new LoadBalancerConfigError(field, value, range);
  }
  if (integer && !Number.isInteger(value)) throw new LoadBalancerConfigError(field, value, range);
  if (min !== undefined && (minExclusive ? value <= min : value < min)) {
    throw new LoadBalancerConfigError(field, value, range);
  }
  if (max !== undefined && value > max) throw new LoadBalancerConfigError(field, value, range);
  return value;
}

/**
 * The longest duration any option accepts, in ms: 2^50 ms, about 35,700 years. Clock readings
 * (epoch milliseconds, about 2^41) plus such a duration stay exact in a double; the clocks honour
 * every delay up to it exactly (`systemClock` chains platform timers beyond 2^31 - 1 ms).
 */
export const MAX_DURATION_MS = 2 ** 50;

/**
 * Checks a duration in milliseconds: a finite number within `[min, max]` (`min` 0 and `max`
 * {@link MAX_DURATION_MS} unless given). Every duration option goes through here, so the rule
 * for what a duration may be lives in one place.
 */
export function checkDuration(
  field: string,
  value: unknown,
  {
    min = 0,
    max = MAX_DURATION_MS,
    minExclusive = false,
  }: { min?: number; max?: number; minExclusive?: boolean } = {},
): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new LoadBalancerConfigError(field, value, durationRange(min, max, minExclusive));
  }
  if ((minExclusive ? value <= min : value < min) || value > max) {
    throw new LoadBalancerConfigError(field, value, durationRange(min, max, minExclusive));
  }
  return value;
}

/**
 * The shortest period of a timer that repeats (a health-check interval, an analysis window, a
 * sweep), in ms. Platform timers fire no sooner (Node runs a shorter delay after 1 ms; HTML
 * clamps nested timers to at least 4 ms), and on a virtual clock (`ManualClock`, the simulator)
 * a shorter period is work without end: 1e-9 ms over a 600 ms simulated run is 6e11 timers.
 */
export const MIN_INTERVAL_MS = 1;

/** Checks the period of a repeating timer: a duration of at least {@link MIN_INTERVAL_MS}. */
export function checkInterval(field: string, value: unknown): number {
  return checkDuration(field, value, { min: MIN_INTERVAL_MS });
}

/** Returns the period `value` checked, or `fallback` when `value` is undefined. */
export function optInterval(field: string, value: unknown, fallback: number): number {
  return value === undefined ? fallback : checkInterval(field, value);
}

/** Returns the duration `value` checked, or `fallback` when `value` is undefined. */
export function optDuration(
  field: string,
  value: unknown,
  fallback: number,
  limits?: Parameters<typeof checkDuration>[2],
): number {
  return value === undefined ? fallback : checkDuration(field, value, limits);
}

function durationRange(min: number, max: number, minExclusive: boolean): string {
  const upper =
    max === MAX_DURATION_MS ? `${max} (2^50 ms, the longest duration the library takes)` : `${max}`;
  return `a duration in ms, a finite number ${minExclusive ? '>' : '>='} ${min} and <= ${upper}`;
}

/** Returns `value` checked, or `fallback` when `value` is undefined. */
export function optNumber(
  field: string,
  value: unknown,
  fallback: number,
  limits?: Parameters<typeof checkNumber>[2],
): number {
  return value === undefined ? fallback : checkNumber(field, value, limits);
}

export function checkString(field: string, value: unknown, { nonEmpty = true } = {}): string {
  if (typeof value !== 'string' || (nonEmpty && value.length === 0)) {
    throw new LoadBalancerConfigError(field, value, nonEmpty ? 'a non-empty string' : 'a string');
  }
  return value;
}

export function checkBoolean(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new LoadBalancerConfigError(field, value, 'true or false');
  return value;
}

export function checkFunction<F>(field: string, value: unknown): F {
  if (typeof value !== 'function') throw new LoadBalancerConfigError(field, value, 'a function');
  return value as F;
}

export function checkOneOf<T extends string>(
  field: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new LoadBalancerConfigError(
      field,
      value,
      `one of ${allowed.map((a) => `'${a}'`).join(', ')}`,
    );
  }
  return value as T;
}

export function checkClock(field: string, value: unknown): Clock {
  if (!hasMethods(value, ['now', 'setTimeout', 'clearTimeout'])) {
    throw new LoadBalancerConfigError(
      field,
      value,
      'a Clock with the methods now, setTimeout and clearTimeout',
    );
  }
  return value as unknown as Clock;
}

/**
 * Checks a random source. A caller's own source is wrapped so that every number it returns is
 * checked: one outside `[0, 1)` (NaN, 1, a negative) would index past the candidates of a pick,
 * so it is refused there, naming the option. Sources of this library are returned as they are.
 */
export function checkRandom(field: string, value: unknown): Random {
  const source = checkFunction<Random>(field, value);
  if (isTrusted(source)) return source;
  const checked = (): number => {
    const x = source();
    if (typeof x === 'number' && x >= 0 && x < 1) return x;
    throw new LoadBalancerConfigError(
      `${field}()`,
      x,
      'a number in [0, 1) from every call, as Math.random returns',
    );
  };
  return trusted(checked);
}

/**
 * Whether `value` is an object (or a function) with a method of each of these names: the duck
 * test for the clients, pools, sources and clocks a caller passes in.
 */
export function hasMethods(value: unknown, names: readonly string[]): boolean {
  if (!isObjectLike(value)) return false;
  for (const name of names) if (typeof value[name] !== 'function') return false;
  return true;
}

function isObjectLike(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}
