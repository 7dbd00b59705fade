/**
 * The machinery of the property-based bad-input suite (test/unit/reliability-options.test.ts):
 * one table row per public constructor, function or method, each with its option keys (and
 * the values that are valid for them), how to call it, and how to exercise what it returns.
 *
 * For each row, fast-check builds option objects from valid values and overrides zero to two
 * keys with arbitrary values (or replaces the whole argument). Each call must either succeed
 * and then behave when exercised, or throw a `LoadBalancerError` whose message names one of the
 * options given (for a `LoadBalancerConfigError`, its `field` too). After every run, every
 * component is closed and no timer may be left on the clocks.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { LoadBalancerConfigError } from '../../src/errors/config-error.js';
import { LoadBalancerError } from '../../src/errors/load-balancer-error.js';
import type { FetchFunction } from '../../src/fetch/types.js';
import { BackendPool, type BackendPoolOptions } from '../../src/pool/backend-pool.js';
import type { Random } from '../../src/random.js';
import { ManualClock, seededRandom } from '../../src/testing/index.js';
import { badValue, UserCallbackError } from './bad-values.js';

/** The most timers one run may create: more means a timer re-arms without end. */
const MAX_TIMERS = 20_000;

/** A `ManualClock` that fails the run when timers are created without end. */
export class RunawayClock extends ManualClock {
  created = 0;

  override setTimeout(fn: () => void, ms: number) {
    if (++this.created > MAX_TIMERS) {
      throw new Error(`runaway timers: more than ${MAX_TIMERS} created in one run (last ${ms} ms)`);
    }
    return super.setTimeout(fn, ms);
  }

  /** Fires the next `steps` due timers one by one (each timer, however far off, once). */
  step(steps = 40): void {
    for (let i = 0; i < steps; i++) {
      const due = this.nextDue();
      if (due === undefined || !Number.isFinite(due)) return;
      this.advance(Math.max(0, due - this.now()));
    }
  }

  /**
   * Like {@link step}, letting promise callbacks run between timers. Each step moves only to the
   * next due time (a synchronous advance), so timers that async code schedules meanwhile are
   * not fired on the way to a far one: the clock never leaps past work a real clock would do.
   */
  async stepAsync(steps = 40): Promise<void> {
    for (let i = 0; i < steps; i++) {
      await flush();
      const due = this.nextDue();
      if (due === undefined || !Number.isFinite(due)) break;
      this.advance(Math.max(0, due - this.now()));
    }
    await flush();
  }
}

/** Lets queued promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await null;
}

/** The world of one run: clocks, randomness, pools and a stub transport, all torn down after. */
export interface Env {
  readonly clock: RunawayClock;
  /** A second clock, for options that take a clock of their own. */
  readonly otherClock: RunawayClock;
  readonly random: Random;
  /** A fresh pool of three backends on `clock` (closed after the run). */
  pool(options?: BackendPoolOptions): BackendPool;
  /** Registers something to close after the run. */
  track(close: () => unknown): void;
  /** A fetch that answers 200 (a stub transport: no socket). */
  readonly transport: FetchFunction;
}

/** A value filled in per run from the {@link Env} (a pool, a clock). */
export class Live {
  constructor(
    readonly describe: string,
    readonly make: (env: Env) => unknown,
  ) {}
  toString(): string {
    return this.describe;
  }
}

/** An arbitrary that always gives `make(env)`. */
export const live = (describe: string, make: (env: Env) => unknown): fc.Arbitrary<unknown> =>
  fc.constant(new Live(describe, make));

/** The clock option: the run's clock, another one, or something that is not a clock. */
export const clockOption: fc.Arbitrary<unknown> = fc.oneof(
  live('env.clock', (env) => env.clock),
  live('env.otherClock', (env) => env.otherClock),
);

export const URLS = ['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.3:8080/base'];

export function makeEnv(seed: number): Env & { dispose(): Promise<void> } {
  const clock = new RunawayClock();
  const otherClock = new RunawayClock();
  const closers: (() => unknown)[] = [];
  const transport: FetchFunction = async (url, init) => {
    // What a real fetch does first: build the Request (which checks method, headers and body)
    // and read the body; then answer without a socket.
    const request = new Request(url, init as RequestInit);
    await request.arrayBuffer();
    return new Response('ok', { status: 200 });
  };
  return {
    clock,
    otherClock,
    random: seededRandom(seed),
    transport,
    pool(options = {}) {
      const pool = new BackendPool({
        backends: URLS,
        clock,
        random: seededRandom(seed + 1),
        ...options,
      });
      closers.push(() => pool.close());
      return pool;
    },
    track(close) {
      closers.push(close);
    },
    async dispose() {
      for (const close of closers.splice(0).reverse()) await close();
      await flush();
    },
  };
}

/** Resolves every {@link Live} in a generated value (plain objects and arrays only). */
export function resolveLive(value: unknown, env: Env): unknown {
  if (value instanceof Live) return value.make(env);
  if (Array.isArray(value)) return value.map((v) => resolveLive(v, env));
  if (
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveLive(v, env);
    return out;
  }
  return value;
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** What a run was given: the options object and the keys it set. */
export interface Given {
  readonly options: Record<string, unknown>;
  /** Keys present in the options (valid and overridden alike), and the required ones. */
  readonly names: readonly string[];
  /** The row's label: an error about the whole argument names it. */
  readonly label: string | undefined;
  /** Every option key of the row. */
  readonly known: readonly string[];
  /** Keys whose value is a function (callbacks may go wrong only when called). */
  readonly callbacks: readonly string[];
}

/** One public constructor, function or method, with every option it takes. */
export interface Target<T = unknown> {
  /** What is called, as a reader would write it. */
  readonly name: string;
  /** The entry point exports this row covers (the coverage test checks every export). */
  readonly covers: readonly string[];
  /**
   * The prefix of the unknown-key error (`checkOptions` names `<label>.<key>` and lists the
   * known keys): the table's keys must be exactly those. `undefined` for positional arguments
   * and for the pick context, which is not checked for unknown keys (it is read on every pick).
   */
  readonly label: string | undefined;
  /** Every option key, with its valid values. */
  readonly keys: Readonly<Record<string, fc.Arbitrary<unknown>>>;
  /** Keys that are always given (required options); the others are given or left out. */
  readonly required?: readonly string[];
  /**
   * Parameters of the run that are not options (which algorithm a pool gets, say): always
   * given, always valid, passed to `build` with the options under the same names.
   */
  readonly params?: Readonly<Record<string, fc.Arbitrary<unknown>>>;
  /** Calls the target with the (resolved) options and the run's parameters. */
  build(
    options: Record<string, unknown>,
    env: Env,
    params: Record<string, unknown>,
  ): T | Promise<T>;
  /** Uses what `build` returned, and closes it. */
  exercise?(made: T, env: Env, given: Given): unknown;
  /** Typed errors `build` may throw besides config errors (with a message naming the value). */
  readonly buildErrors?: readonly ErrorClass[];
  /** Typed errors the exercise may meet (no backend left, a closed pool...). */
  readonly useErrors?: readonly ErrorClass[];
  /**
   * Targeted bad values for some keys (a header map with a line break, say), tried as often as
   * the general ones when those keys are overridden.
   */
  readonly bad?: Readonly<Record<string, fc.Arbitrary<unknown>>>;
  /** `false` for targets that take anything by design (a parser that returns undefined). */
  readonly refuses?: false;
  /** Runs for this row (default 40). */
  readonly runs?: number;
}

/** Arbitrary options for a row: valid values, 0-2 keys overridden with anything. */
export function optionsFor(target: Target): fc.Arbitrary<{
  options: unknown;
  overridden: string[];
  params: Record<string, unknown>;
}> {
  const keys = Object.keys(target.keys);
  const valid = fc.record(target.keys as Record<string, fc.Arbitrary<unknown>>, {
    requiredKeys: [...(target.required ?? [])],
  });
  const one = fc.constantFrom(...(keys.length === 0 ? [''] : keys)).chain((k) => {
    const targeted = target.bad?.[k];
    const value = targeted === undefined ? badValue : fc.oneof(badValue, targeted);
    return value.map((v): [string, unknown] => [k, v]);
  });
  // Mostly one bad key (so it is the one judged), sometimes none or two.
  const override =
    keys.length === 0
      ? fc.constant<[string, unknown][]>([])
      : fc.oneof(
          { weight: 1, arbitrary: fc.constant<[string, unknown][]>([]) },
          { weight: 4, arbitrary: one.map((x) => [x]) },
          { weight: 1, arbitrary: fc.tuple(one, one) },
        );
  const params = fc.record((target.params ?? {}) as Record<string, fc.Arbitrary<unknown>>);
  const wellFormed = fc.tuple(valid, override, params).map(([v, o, p]) => ({
    options: { ...v, ...Object.fromEntries(o) } as unknown,
    overridden: o.map(([k]) => k),
    params: p,
  }));
  const wholesale = fc
    .tuple(badValue, params)
    .map(([options, p]) => ({ options, overridden: ['(whole argument)'], params: p }));
  // Positional arguments have no options object to replace as a whole.
  if (target.label === undefined) return wellFormed;
  return fc.oneof({ weight: 7, arbitrary: wellFormed }, { weight: 1, arbitrary: wholesale });
}

/** The identifiers in an option path: `backends[0].url` → backends, 0, url. */
function tokens(path: string): string[] {
  return path.split(/[^A-Za-z0-9_$]+/).filter(Boolean);
}

/**
 * Whether an option path names an option given, the argument as a whole, or an option that
 * was left out but is needed (`value` undefined: `probe` for `type: 'custom'`).
 */
function names(field: string, given: Given, value: unknown): boolean {
  if (tokens(field).some((t) => given.names.includes(t))) return true;
  if (value === undefined && tokens(field).some((t) => given.known.includes(t))) return true;
  const label = given.label;
  return label !== undefined && (field === label || field.startsWith(`${label}.`));
}

function show(given: Given): string {
  return [...given.names, ...(given.label === undefined ? [] : [given.label])].join(', ');
}

/** Whether `error` is one a user's own callback threw (possibly wrapped by the library). */
function fromCallback(error: unknown): boolean {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof UserCallbackError) return true;
    const attempts = (e as { attempts?: { error?: unknown }[] }).attempts;
    if (Array.isArray(attempts) && attempts.some((a) => a.error instanceof UserCallbackError))
      return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.constructor.name}: ${error.message}`;
  return String(error);
}

/**
 * Checks an error thrown by a call: a `LoadBalancerError` naming one of the options given.
 */
export function expectNamed(error: unknown, given: Given, allowed: readonly ErrorClass[]): void {
  if (error instanceof UserCallbackError) return;
  if (!(error instanceof LoadBalancerError) && allowed.some((c) => error instanceof c)) return;
  if (!(error instanceof LoadBalancerError)) {
    throw new Error(`a plain error escaped: ${describeError(error)}`, { cause: error });
  }
  if (error instanceof LoadBalancerConfigError) {
    expect(error.message, 'the message names the field').toContain(error.field);
    expect(
      names(error.field, given, error.value),
      `field "${error.field}" names one of ${show(given)}`,
    ).toBe(true);
    return;
  }
  if (allowed.some((c) => error instanceof c)) return;
  const named =
    given.names.some((n) => error.message.includes(n)) ||
    (given.label !== undefined && error.message.includes(given.label));
  expect(named, `"${error.message}" names one of ${show(given)}`).toBe(true);
}

/** Checks an error met while using what a call returned. */
export function expectUsable(error: unknown, given: Given, allowed: readonly ErrorClass[]): void {
  if (fromCallback(error)) return;
  if (allowed.some((c) => error instanceof c)) return;
  // A callback can only be judged when it is called: a late config error naming it is fine.
  if (
    error instanceof LoadBalancerConfigError &&
    tokens(error.field).some((t) => given.callbacks.includes(t))
  ) {
    expect(error.message).toContain(error.field);
    return;
  }
  throw new Error(`accepted, then failed when used: ${describeError(error)}`, { cause: error });
}

/** Runs `fn`; returns undefined when it throws one of `allowed` (rethrows anything else). */
export function attempt<T>(fn: () => T, allowed: readonly ErrorClass[]): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (allowed.some((c) => error instanceof c) || fromCallback(error)) return undefined;
    throw error;
  }
}

/** Awaits `fn()`; returns undefined when it rejects with one of `allowed`. */
export async function attemptAsync<T>(
  fn: () => Promise<T> | T,
  allowed: readonly ErrorClass[],
): Promise<T | undefined> {
  try {
    return await fn();
  } catch (error) {
    if (allowed.some((c) => error instanceof c) || fromCallback(error)) return undefined;
    throw error;
  }
}

/**
 * Starts `promise` towards {@link attemptAsync} at once: a call that rejects while the clock is
 * being stepped must already have its handler (or Node reports an unhandled rejection).
 */
export function pending<T>(promise: Promise<T>): () => Promise<T> {
  const settled = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return async () => {
    const r = await settled;
    if (r.ok) return r.value;
    throw r.error;
  };
}

/** Figures of one row's property run, for the "the runs meant something" checks. */
export interface RowStats {
  runs: number;
  built: number;
  refused: number;
}

/** One run of a row: build, check the outcome, exercise, tear down, check the clocks. */
export async function runOnce(
  target: Target,
  input: { options: unknown; overridden: string[]; params: Record<string, unknown> },
  seed: number,
  stats: RowStats,
): Promise<void> {
  const env = makeEnv(seed);
  stats.runs++;
  const options = resolveLive(input.options, env);
  const present =
    options !== null && typeof options === 'object' && !Array.isArray(options)
      ? Object.keys(options)
      : [];
  const given: Given = {
    options: (typeof options === 'object' && options !== null ? options : {}) as Record<
      string,
      unknown
    >,
    label: target.label,
    known: Object.keys(target.keys),
    names: [...new Set([...present, ...(target.required ?? [])])],
    callbacks: present.filter((k) => typeof (options as Record<string, unknown>)[k] === 'function'),
  };
  let made: unknown;
  let built = false;
  try {
    try {
      made = await target.build(
        options as Record<string, unknown>,
        env,
        resolveLive(input.params, env) as Record<string, unknown>,
      );
      built = true;
    } catch (error) {
      // The run asked for more work than a unit test should do (see `fc.pre` in the rows).
      if (fc.PreconditionFailure.isFailure(error)) throw error;
      stats.refused++;
      expectNamed(error, given, target.buildErrors ?? []);
    }
    if (built) {
      stats.built++;
      try {
        await target.exercise?.(made as never, env, given);
      } catch (error) {
        expectUsable(error, given, target.useErrors ?? []);
      }
    }
  } finally {
    // Whatever happened, close everything the run made, so a failing run leaves nothing behind.
    await env.dispose();
  }
  expect(env.clock.pendingTimers(), 'timers left on the clock').toBe(0);
  expect(env.otherClock.pendingTimers(), 'timers left on the other clock').toBe(0);
}

/** The seed of every property run: the same inputs on every machine. */
export const SEED = 20_261_206;

/**
 * Runs one row's property (seeded, `target.runs` runs) and checks the runs meant something:
 * some calls succeeded and were exercised, and (unless the target takes anything) some were
 * refused. A failure reports the shrunk input and the error it raised.
 */
export async function checkRow(target: Target): Promise<RowStats> {
  const stats: RowStats = { runs: 0, built: 0, refused: 0 };
  let seed = 0;
  const details = await fc.check(
    fc.asyncProperty(optionsFor(target), async (input) => {
      seed++;
      await runOnce(target, input, seed, stats);
    }),
    { seed: SEED, numRuns: target.runs ?? 40 },
  );
  if (details.failed) {
    const error = details.errorInstance;
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
    throw new Error(
      `${fc.defaultReportMessage(details)}\n${String(error)}${cause ? `\ncaused by ${cause.stack}` : ''}`,
    );
  }
  expect(stats.built, 'calls that succeeded').toBeGreaterThan(0);
  if (target.refuses !== false) expect(stats.refused, 'calls that were refused').toBeGreaterThan(0);
  return stats;
}

/**
 * Checks that a row lists exactly the keys its target takes: an unknown key must be refused,
 * naming `<label>.<key>`, with a list of known keys equal to the row's.
 */
export async function checkKeys(target: Target): Promise<void> {
  const env = makeEnv(1);
  let caught: unknown;
  try {
    await target.build({ zzNotAnOption: 1 }, env, {});
  } catch (error) {
    caught = error;
  }
  await env.dispose();
  expect(caught).toBeInstanceOf(LoadBalancerConfigError);
  const error = caught as LoadBalancerConfigError;
  expect(error.field).toBe(`${target.label}.zzNotAnOption`);
  const known = /\(known: ([^)]*)\)/.exec(error.message)?.[1]?.split(', ') ?? [];
  expect([...known].sort()).toEqual(Object.keys(target.keys).sort());
}
