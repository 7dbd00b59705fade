/**
 * `npm run reliability [-- section ...]`: measures what docs/reliability.md promises, over real
 * sockets on 127.0.0.1, and prints each figure. Sections (all by default):
 * - `faults`: the 13 socket-fault scenarios (calls hung and lost, checks that did not hold);
 * - `concurrent`: 10,000 calls in flight at once through the balanced fetch;
 * - `cycles`: 1,000,000 acquire/release cycles, live heap after a full GC (child process);
 * - `urls`: 57 URLs that try to leave the pool;
 * - `cookies`: 24 attacks on signed sticky-session cookies.
 *
 * The scenarios are the ones the integration suites run (test/support/fault-scenarios.ts,
 * load-runs.ts, url-escapes.ts, cookie-attacks.ts), so `npm test` enforces the same figures. The
 * exit code is 1 when a figure falls short. Bounded: about a minute on a quiet machine.
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { runCookieAttacks } from '../test/support/cookie-attacks.js';
import { FAULT_SCENARIOS, runScenario, warmUp } from '../test/support/fault-scenarios.js';
import { acquireCycles, concurrentCalls } from '../test/support/load-runs.js';
import { runEscapes } from '../test/support/url-escapes.js';

const SECTIONS = ['faults', 'concurrent', 'cycles', 'urls', 'cookies'] as const;
type Section = (typeof SECTIONS)[number];

const { positionals } = parseArgs({ allowPositionals: true, options: {} });
for (const p of positionals) {
  if (!(SECTIONS as readonly string[]).includes(p)) {
    console.error(`Unknown section "${p}". Known: ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
}
const wanted = new Set<Section>(positionals.length === 0 ? SECTIONS : (positionals as Section[]));

const n = (x: number) => x.toLocaleString('en-US');
let short = false;
/** Prints one figure line, marking (and remembering) a figure that falls short. */
function figure(ok: boolean, text: string): void {
  if (!ok) short = true;
  console.log(`${ok ? '  ' : '✗ '}${text}`);
}

console.log(
  `loadwise reliability figures: Node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} CPUs\n`,
);

if (wanted.has('faults')) {
  await warmUp();
  let passed = 0;
  let calls = 0;
  let hung = 0;
  let lost = 0;
  const started = performance.now();
  for (const scenario of FAULT_SCENARIOS) {
    const r = await runScenario(scenario);
    const ok = r.problems.length === 0 && r.hung === 0 && r.lost === 0;
    if (ok) passed++;
    calls += r.calls;
    hung += r.hung;
    lost += r.lost;
    console.log(
      `    ${ok ? 'pass' : 'FAIL'}  ${r.name} (${r.calls} calls, ${r.hung} hung, ${r.lost} lost, ${r.ms} ms)`,
    );
    for (const p of r.problems) console.log(`          ${p}`);
  }
  figure(
    passed === FAULT_SCENARIOS.length && hung === 0 && lost === 0,
    `socket faults: ${passed} of ${FAULT_SCENARIOS.length} scenarios passed; of ${n(calls)} calls, ${hung} hung and ${lost} lost (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
}

if (wanted.has('concurrent')) {
  const r = await concurrentCalls(10_000);
  figure(
    r.ok === r.calls && r.peakInFlight === r.calls && r.inFlightAfter === 0,
    `concurrency: ${n(r.ok)} of ${n(r.calls)} concurrent calls answered 200, ${n(r.peakInFlight)} leases held at once, per backend ${r.byBody.map(n).join(' / ')} (servers saw ${r.hits.map(n).join(' / ')}), ${r.failures.reduce((a, b) => a + b, 0)} failures, ${r.inFlightAfter} in flight after (${(r.ms / 1000).toFixed(1)} s)`,
  );
}

if (wanted.has('cycles')) {
  const r = await acquireCycles(1_000_000);
  const growth = r.heapAfter - r.heapBefore;
  const total = r.requests.reduce((a, b) => a + b, 0);
  figure(
    total === r.cycles && r.inFlight === 0 && growth < r.cycles / 2,
    `memory: ${n(r.cycles)} acquire/release cycles, ${n(total)} counted (${r.requests.map(n).join(' / ')}), ${r.inFlight} in flight after; live heap after a full GC grew ${n(growth)} bytes (first half ${n(r.heapHalf - r.heapBefore)}, second half ${n(r.heapAfter - r.heapHalf)}; ${(growth / r.cycles).toFixed(3)} bytes a cycle) (${(r.ms / 1000).toFixed(1)} s)`,
  );
}

if (wanted.has('urls')) {
  const results = await runEscapes();
  const escaped = results.filter((r) => r.outcome.kind === 'escaped');
  const refused = results.filter((r) => r.outcome.kind === 'refused').length;
  const contained = results.filter((r) => r.outcome.kind === 'contained').length;
  for (const r of escaped) {
    console.log(`    ESCAPED  ${JSON.stringify(r.attempt.url)} (${r.attempt.why})`);
  }
  figure(
    escaped.length === 0,
    `URL escapes: ${escaped.length} of ${results.length} URLs escaped (${refused} refused before anything was sent, ${contained} sent and kept under the base path)`,
  );
}

if (wanted.has('cookies')) {
  const results = await runCookieAttacks();
  const refused = results.filter((r) => r.refused);
  const notSent = refused.filter((r) => r.got === 'not-sent').length;
  for (const r of results.filter((x) => !x.refused)) {
    console.log(`    NOT REFUSED  ${r.name}: got ${r.got}, expected ${r.expected}`);
  }
  figure(
    refused.length === results.length,
    `signed cookies: ${refused.length} of ${results.length} attacks refused (${refused.length - notSent} rejected by the session manager, ${notSent} refused before sending)`,
  );
}

process.exitCode = short ? 1 : 0;
