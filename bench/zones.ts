/**
 * Zones: where zone-aware routing sends a pool's calls as its local zone loses backends (the
 * split the pool computes, Envoy's, next to the share measured over picks), and the simulator's
 * zone-outage scenario against the same algorithm with zone-aware routing off.
 *
 * `npx tsx bench/index.ts zones --write-svg` also writes docs/images/zone-spillover.svg.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type AlgorithmResult,
  BackendPool,
  barChart,
  PowerOfTwoChoices,
  simulate,
  simulationCandidates,
  type ZoneAwareOptions,
  zoneOutageScenario,
} from '../src/index.js';
import { ManualClock, seededRandom } from '../src/testing/index.js';
import { fmt, type Section, table } from './harness.js';

const SVG_PATH = fileURLToPath(new URL('../docs/images/zone-spillover.svg', import.meta.url));
const PICKS = 100_000;
const ZONES = ['a', 'b', 'c'] as const;

interface Row {
  label: string;
  mode: string;
  split: Record<string, number>;
  measured: Record<string, number>;
}

/** A pool over `perZone` backends per zone, `down` of them unhealthy per zone, in zone a. */
function measure(
  label: string,
  perZone: Record<string, number>,
  down: Record<string, number>,
  zoneAware: ZoneAwareOptions,
): Row {
  const backends = Object.entries(perZone).flatMap(([zone, n]) =>
    Array.from({ length: n }, (_, i) => ({ url: `http://${zone}${i}.test:80`, zone })),
  );
  const pool = new BackendPool({
    backends,
    algorithm: new PowerOfTwoChoices(),
    clock: new ManualClock(),
    random: seededRandom(1),
    skew: false,
    zoneAware,
  });
  for (const [zone, n] of Object.entries(down)) {
    pool
      .backends()
      .filter((b) => b.zone === zone)
      .slice(0, n)
      .forEach((b) => {
        pool.setHealthy(b.id, false);
      });
  }
  const counts: Record<string, number> = {};
  for (let i = 0; i < PICKS; i++) {
    const lease = pool.acquire();
    counts[lease.backend.zone!] = (counts[lease.backend.zone!] ?? 0) + 1;
    lease.release();
  }
  const tier = pool.explain().zones[0]!;
  const split: Record<string, number> = {};
  const measured: Record<string, number> = {};
  for (const z of tier.zones) {
    split[z.zone!] = z.load ?? Number.NaN;
    measured[z.zone!] = (100 * (counts[z.zone!] ?? 0)) / PICKS;
  }
  void pool.close();
  return { label, mode: tier.mode, split, measured };
}

function zoneShares(r: AlgorithmResult, window: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, share] of Object.entries(r.windows[window]!.share)) {
    out[id[0]!] = (out[id[0]!] ?? 0) + share;
  }
  return out;
}

/** `a 60.00%, b 20.00%, c 20.00%`, or `-` for a split that is off. */
const shares = (byZone: Record<string, number>): string =>
  Object.entries(byZone)
    .map(([zone, x]) => (Number.isNaN(x) ? '' : `${zone} ${x.toFixed(2)}%`))
    .filter(Boolean)
    .join(', ') || '- (every zone alike)';

export default async function zones(): Promise<Section> {
  const even = { a: 4, b: 4, c: 4 };
  const local: ZoneAwareOptions = { localZone: 'a' };
  const rows: Row[] = [
    measure('4 of 4', even, {}, local),
    measure('3 of 4', even, { a: 1 }, local),
    measure('2 of 4', even, { a: 2 }, local),
    measure('1 of 4', even, { a: 3 }, local),
    measure('0 of 4', even, { a: 4 }, local),
  ];
  const others: Row[] = [
    measure('a 2 of 4, b 3 of 4', even, { a: 2, b: 1 }, local),
    measure('a 4 of 4, b 2 of 4', even, { b: 2 }, local),
    // Envoy's ZoneAwareResidualsMismatched: upstream A1 C3 D3 E1, callers A2 B2 C1 D1.
    measure(
      'Envoy test: backends a 1, c 3, d 3, e 1; callers a 2, b 2, c 1, d 1',
      { a: 1, c: 3, d: 3, e: 1 },
      {},
      { localZone: 'a', callerZones: { a: 2, b: 2, c: 1, d: 1 } },
    ),
  ];
  const shareTable = (list: Row[], first: string) =>
    table(
      [first, 'mode', 'split (pool.explain().zones)', 'measured'],
      list.map((r) => [r.label, r.mode, shares(r.split), shares(r.measured)]),
    );

  // The simulator: zone-outage at its default size.
  const report = await simulate(zoneOutageScenario(), {
    algorithms: simulationCandidates([
      'power-of-two-choices',
      'peak-ewma+outlier',
      'power-of-two-choices+all-zones',
    ]),
  });
  const simRows = report.results.map((r) => [
    r.name,
    ...[0, 1, 2].map((w) => {
      const s = zoneShares(r, w);
      return ZONES.map((z) => `${fmt(100 * (s[z] ?? 0), 1)}`).join(' / ');
    }),
    `${fmt(100 * r.windows[1]!.successRate, 2)}%`,
    fmt(r.latency.p50, 1),
    fmt(r.latency.p99, 1),
  ]);

  if (process.argv.includes('--write-svg')) {
    writeFileSync(
      SVG_PATH,
      barChart({
        title: 'Zone-aware routing: where a pool in zone a sends its calls',
        subtitle:
          'Three zones of 4 backends, callers spread like the backends; measured over 100,000 picks',
        categories: rows.map((r) => `${r.label} healthy in a`),
        series: ZONES.map((z) => ({
          name: `to zone ${z}`,
          values: rows.map((r) => r.measured[z]!),
        })),
        yLabel: 'share of calls (%)',
        format: (v) => `${fmt(v, 1)}`,
        tickFormat: (v) => String(Math.round(v)),
        yMax: 100,
        width: 760,
      }),
    );
  }

  const body = [
    `\`npx tsx bench/index.ts zones --write-svg\` (bench/zones.ts). Pools of PowerOfTwoChoices on a ManualClock with \`seededRandom(1)\`, in zone a (\`zoneAware: { localZone: 'a' }\`); the split is what \`pool.explain().zones\` reports (Envoy's zone-aware split, in basis points), the measured share is over ${PICKS.toLocaleString('en-US')} \`acquire()\` calls. Without \`callerZones\`, the callers are taken to be spread over the zones like the backends.`,
    '',
    '**The local zone losing backends** (three zones of 4):',
    '',
    shareTable(rows, 'healthy in a'),
    '',
    '**Other cases:**',
    '',
    shareTable(others, 'backends'),
    '',
    `**The zone-outage scenario** (\`npm run simulate -- zone-outage\`, ${report.results[0]!.requests.toLocaleString('en-US')} calls, seed ${report.seed}): share of calls per zone (a / b / c, %) before, during and after a0 and a1 are down; success and latency (ms) over the run.`,
    '',
    table(
      ['algorithm', 'before', 'a0, a1 down', 'after', 'success while down', 'p50', 'p99'],
      simRows,
    ),
  ].join('\n');
  return { title: 'Zone-aware routing', body };
}
