/**
 * Runs every example in examples/ as a user would (`node --import tsx examples/<file>.ts`), so
 * none rots: each must exit with code 0 within 30 s and print its expected line. The demo has
 * its own test and is left out. New examples are picked up from the directory and must be given
 * an entry in EXPECTED.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type ChildResult, limitConcurrency, runTsChild } from '../support/child.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLES = join(ROOT, 'examples');
const SKIP = new Set(['demo.ts']);
/** Longest an example may run before it is killed and fails. */
const RUN_TIMEOUT_MS = 30_000;
/** Examples run at most this many at a time, beside the rest of the suite. */
const CONCURRENCY = 2;

/** A line each example must print: evidence that it did what it says, not just that it ran. */
const EXPECTED: Readonly<Record<string, RegExp>> = {
  'acquire-tcp-client.ts':
    /outlier detector: kv-dead ejected[\s\S]*after closing: 0 connections in flight/,
  'basic-fetch.ts': /^30 of 30 calls answered 200$/m,
  'cache-hashing.ts':
    /\(0 not to the new node\)[\s\S]*after cache-d joins: +\d+ of 100 hits; misses on: cache-d=\d+$/m,
  'custom-discovery.ts': /^after: .*api-3=\d/m,
  'dns-discovery.ts': /joined app-3[\s\S]*app-1 left the pool[\s\S]*lookup failed \(ESERVFAIL\)/,
  'health-checks.ts':
    /6 calls -> \{(?=[^}]*"a")(?=[^}]*"b")(?=[^}]*"c")[^}]*\} \(panic mode: still served by every backend\)/,
  'manual-clock-testing.ts': /^all tests passed/m,
  'prometheus.ts': /^loadwise_requests_total\{pool="[^"]+",backend="[^"]+"\} [1-9]\d*$/m,
  'undici-dispatcher.ts':
    /^c turned slow : served by [^\n]*\nhedges sent: [1-9]\d*; in flight after the calls: 0$/m,
  'sticky-gateway.ts': /cookie not honoured \(unknown-backend\)[\s\S]*alice: app-\d: 2 items/,
};

const examples = readdirSync(EXAMPLES)
  .filter((f) => f.endsWith('.ts') && !SKIP.has(f))
  .sort();

function runExample(file: string): Promise<ChildResult> {
  return runTsChild(join('examples', file), [], {
    limitMs: RUN_TIMEOUT_MS,
    env: { NO_COLOR: '1' },
  });
}

/** Lets at most `CONCURRENCY` examples run at once. */
const limited = limitConcurrency(CONCURRENCY);

describe('examples', () => {
  it('finds the examples, and every one has an expected-output entry', () => {
    expect(examples.length).toBeGreaterThanOrEqual(7);
    expect(examples.filter((f) => EXPECTED[f] === undefined)).toEqual([]);
  });

  // The timeout covers the wait for a free slot as well as the run itself.
  it.concurrent.each(examples)(
    '%s runs to completion and prints what it shows',
    async (file) => {
      const expected = EXPECTED[file];
      if (expected === undefined) {
        throw new Error(
          `examples/${file} has no entry in EXPECTED (test/integration/examples.test.ts)`,
        );
      }
      const run = await limited(() => runExample(file));
      const transcript = `--- stdout ---\n${run.stdout}\n--- stderr ---\n${run.stderr}`;
      expect(
        run.killedByGuard,
        `examples/${file} ran longer than ${RUN_TIMEOUT_MS} ms\n${transcript}`,
      ).toBe(false);
      expect(
        run.code,
        `examples/${file} exited with ${run.code ?? run.signal}\n${transcript}`,
      ).toBe(0);
      expect(run.stdout, `examples/${file} did not print ${expected}\n${transcript}`).toMatch(
        expected,
      );
    },
    RUN_TIMEOUT_MS * Math.ceil(examples.length / CONCURRENCY) + 10_000,
  );
});
