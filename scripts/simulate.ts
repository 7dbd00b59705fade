/**
 * `npm run simulate -- [scenario ...] [flags]`: runs the simulator's built-in scenarios against
 * the library's algorithms, prints the results as tables and writes SVG charts.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BUILT_IN_SCENARIOS,
  type FleetReport,
  fleetCharts,
  formatFleetReport,
  formatReport,
  reportCharts,
  SIMULATION_ALGORITHMS,
  type SimulationReport,
  simulate,
  simulateFleet,
  simulationCandidates,
} from '../src/simulator/index.js';

/** Wraps `text` at `width` columns, indenting every line by `indent` spaces. */
function wrap(text: string, indent: number, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.map((l) => `${' '.repeat(indent)}${l}`).join('\n');
}

const HELP = `Usage: npm run simulate -- [scenario ...] [flags]

Runs a deterministic simulation: each scenario's workload drives a real BackendPool with each
algorithm on a virtual clock (no sockets, nothing waits in real time), then prints success within
the deadline, latency percentiles, load skew and traffic movement per algorithm, and writes SVG
charts.

Scenarios (default: linkerd; "all" runs every one):
${BUILT_IN_SCENARIOS.map((s) => `  ${s.name.padEnd(12)} ${s.summary}`).join('\n')}
  ${'fleet'.padEnd(12)} deterministic subsetting: N clients (real pools) × M backends through churn,
               against the SRE book's subsetting, random subsets and none

Flags:
  --algorithms a,b,...  algorithms to compare (default: the scenario's own list)
${wrap(`known: ${SIMULATION_ALGORITHMS.join(', ')}`, 24, 100)}
  --seed N              seed of the workload and of the pool's randomness (default 1);
                        the same seed gives the same figures
  --rate N              calls per second (open-loop scenarios; default: the scenario's)
  --clients N           calls kept in flight (closed-loop scenarios: slow-backend,
                        lost-capacity; default: the scenario's); for fleet, the number of
                        clients (default 500)
  --duration MS         length of the run in ms; phase times scale with it (default: the scenario's)
  --out DIR             where to write the SVG charts (default docs/images)
  --no-charts           do not write charts
  --json                print the full reports as JSON instead of tables
  --backends N          fleet: backends (default 1000)
  --size N              fleet: target subset size (default 20)
  -h, --help            show this help

Examples:
  npm run simulate                        # Linkerd's "Beyond Round Robin" experiment
  npm run simulate -- all --no-charts
  npm run simulate -- heavy-tail --algorithms round-robin,power-of-two-choices --seed 7
  npm run simulate -- fleet               # 500 clients × 1,000 backends, subsets of 20
`;

function fail(message: string): never {
  console.error(`${message}\n\nRun "npm run simulate -- --help" for usage.`);
  process.exit(2);
}

function positiveNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) fail(`--${flag} must be a number > 0, got "${value}"`);
  return n;
}

let parsed: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      algorithms: { type: 'string' },
      seed: { type: 'string' },
      rate: { type: 'string' },
      clients: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string', default: 'docs/images' },
      'no-charts': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      backends: { type: 'string' },
      size: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}
try {
  parsed = parse();
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const { values, positionals } = parsed;
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const known = new Map(BUILT_IN_SCENARIOS.map((s) => [s.name, s]));
const wantFleet = positionals.includes('fleet') || positionals.includes('all');
const wanted =
  positionals.length === 0
    ? ['linkerd']
    : positionals.includes('all')
      ? [...known.keys()]
      : positionals.filter((p) => p !== 'fleet');
for (const name of wanted) {
  if (!known.has(name))
    fail(`Unknown scenario "${name}". Known: ${[...known.keys()].join(', ')}, fleet, all`);
}
let seed = 1;
if (values.seed !== undefined) {
  seed = Number(values.seed);
  if (!Number.isInteger(seed)) fail(`--seed must be an integer, got "${values.seed}"`);
}
const rate = positiveNumber('rate', values.rate);
const clients = positiveNumber('clients', values.clients);
const durationMs = positiveNumber('duration', values.duration);
const algorithmNames = values.algorithms
  ?.split(',')
  .map((a) => a.trim())
  .filter(Boolean);
for (const a of algorithmNames ?? []) {
  if (!SIMULATION_ALGORITHMS.includes(a)) {
    fail(`Unknown algorithm "${a}". Known: ${SIMULATION_ALGORITHMS.join(', ')}`);
  }
}

const reports: SimulationReport[] = [];
const written: string[] = [];
for (const name of wanted) {
  const builtIn = known.get(name)!;
  let scenario: ReturnType<typeof builtIn.create>;
  try {
    scenario = builtIn.create({
      seed,
      ...(rate === undefined ? {} : { rate }),
      ...(clients === undefined ? {} : { clients }),
      ...(durationMs === undefined ? {} : { durationMs }),
    });
  } catch (error) {
    fail(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const started = performance.now();
  const report = await simulate(scenario, {
    algorithms: simulationCandidates(algorithmNames ?? builtIn.algorithms),
  });
  const elapsed = performance.now() - started;
  reports.push(report);
  if (!values.json) {
    const calls = report.results[0]?.requests ?? 0;
    console.log(
      `${formatReport(report)}\n\n(${calls} calls × ${report.results.length} algorithms in ${(elapsed / 1000).toFixed(1)} s)\n`,
    );
  }
  if (!values['no-charts']) {
    await mkdir(values.out, { recursive: true });
    for (const chart of reportCharts(report)) {
      const file = join(values.out, `simulator-${chart.name}.svg`);
      await writeFile(file, chart.svg);
      written.push(file);
    }
  }
}
const fleetReports: FleetReport[] = [];
if (wantFleet) {
  const count = (flag: 'clients' | 'backends' | 'size'): number | undefined => {
    const n = positiveNumber(flag, values[flag]);
    if (n !== undefined && !Number.isInteger(n)) fail(`--${flag} must be an integer`);
    return n;
  };
  const clients = count('clients');
  const backends = count('backends');
  const size = count('size');
  const started = performance.now();
  const report = simulateFleet({
    seed,
    ...(clients === undefined ? {} : { clients }),
    ...(backends === undefined ? {} : { backends }),
    ...(size === undefined ? {} : { size }),
  });
  fleetReports.push(report);
  if (!values.json) {
    console.log(
      `${formatFleetReport(report)}\n\n(${report.clients} pools in ${((performance.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  }
  if (!values['no-charts']) {
    await mkdir(values.out, { recursive: true });
    for (const chart of fleetCharts(report)) {
      const file = join(values.out, `${chart.name}.svg`);
      await writeFile(file, chart.svg);
      written.push(file);
    }
  }
}
if (values.json) console.log(JSON.stringify([...reports, ...fleetReports], null, 2));
else if (written.length > 0)
  console.log(`Charts written:\n${written.map((f) => `  ${f}`).join('\n')}`);
