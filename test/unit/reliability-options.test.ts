/**
 * Property-based bad input over every public constructor, function and method that takes
 * options, on every entry point (`loadwise`, `loadwise/node`, `loadwise/redis`,
 * `loadwise/testing`). One table row per target lists every option key with its valid values
 * (test/support/option-table*.ts); fast-check (seeded, bounded) overrides up to two keys with
 * arbitrary values (fc.anything() and targeted ones: NaN, ±Infinity, negative, 2^31, 2^53,
 * fractional, blank strings, CR/LF/NUL, arrays, functions, objects with unknown keys, null,
 * undefined), or replaces the whole argument.
 *
 * Each call either succeeds, and what it returned then behaves when used (picks, a fetch through
 * a stub transport, probes and ejections on a ManualClock, session binds and lookups, ring
 * lookups, a discovery refresh, a routed call) and leaves no timer once closed; or it throws a
 * `LoadBalancerError` whose message names one of the options given. Nothing throws a plain
 * `TypeError` or `RangeError`. The rows that need sockets or a redis-server run in
 * test/integration/reliability-options.test.ts.
 *
 * The table cannot fall behind: for every row with a label, an unknown key must be refused and
 * the refusal's list of known keys must equal the row's keys; and every function or class an
 * entry point exports must be covered by a row (or be listed in NO_ROW with the reason). The
 * hand-written cases of reliability-bad-input.test.ts stay as the readable examples.
 */
import { describe, expect, it } from 'vitest';
import * as core from '../../src/index.js';
import * as node from '../../src/node/index.js';
import * as redis from '../../src/redis/index.js';
import * as testing from '../../src/testing/index.js';
import { checkKeys, checkRow } from '../support/option-harness.js';
import { CORE, MORE, NO_ROW } from '../support/option-table.js';
import { NODE } from '../support/option-table-node.js';

describe('every option of every runtime-neutral constructor and function, under arbitrary values', () => {
  for (const target of [...CORE, ...MORE]) {
    it(target.name, () => checkRow(target).then(() => undefined));
  }
});

describe('the table lists every option (an option added later fails here until listed)', () => {
  for (const target of [...CORE, ...MORE, ...NODE].filter((t) => t.label !== undefined)) {
    it(`${target.name}: an unknown key is refused, naming the known ones`, () => checkKeys(target));
  }

  const entries = {
    loadwise: core,
    'loadwise/node': node,
    'loadwise/redis': redis,
    'loadwise/testing': testing,
  };
  for (const [entry, exports] of Object.entries(entries)) {
    it(`every function and class of ${entry} has a row`, () => {
      const covered = new Set([...CORE, ...MORE, ...NODE].flatMap((t) => t.covers));
      const missing = Object.entries(exports)
        .filter(([n, v]) => typeof v === 'function' && !isErrorClass(v) && !(n in NO_ROW))
        .map(([n]) => n)
        .filter((n) => !covered.has(n));
      expect(missing).toEqual([]);
    });
  }
});

function isErrorClass(value: unknown): boolean {
  return typeof value === 'function' && value.prototype instanceof Error;
}
