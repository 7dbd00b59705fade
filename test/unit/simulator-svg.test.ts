import { describe, expect, it } from 'vitest';
import {
  barChart,
  formatReport,
  lineChart,
  linkerdScenario,
  reportCharts,
  type SimulationReport,
  simulate,
  simulationCandidates,
} from '../../src/simulator/index.js';

/** Checks that every element opened is closed, in order (a small well-formedness check). */
function wellFormed(svg: string): boolean {
  const stack: string[] = [];
  for (const m of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing === '/') continue;
    if (closing === '/') {
      if (stack.pop() !== name) return false;
    } else {
      stack.push(name!);
    }
  }
  return stack.length === 0;
}

let report: SimulationReport | undefined;
async function smallReport(): Promise<SimulationReport> {
  report ??= await simulate(linkerdScenario({ rate: 100, durationMs: 12_000 }), {
    algorithms: simulationCandidates(['round-robin', 'peak-ewma']),
  });
  return report;
}

describe('simulator: SVG charts', () => {
  it('draws one bar per value, escapes text, and is well formed', () => {
    const svg = barChart({
      title: 'A <b> & "c"',
      categories: ['x', 'y', 'z'],
      series: [
        { name: 'p50', values: [1, 2, 3] },
        { name: 'p99', values: [4, 5, Number.NaN] },
      ],
      yLabel: 'ms',
      refLines: [{ value: 4.5, label: 'limit' }],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('A &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg).not.toContain('<b>');
    // 5 finite values: 5 bars (plus the background and 2 legend swatches).
    expect(svg.match(/<rect [^>]*><title>/g)?.length).toBe(5);
    expect(svg).toContain('stroke-dasharray');
    expect(wellFormed(svg)).toBe(true);
  });

  it('draws lines, bands and a legend that wraps', () => {
    const names = ['round-robin', 'least-connections', 'power-of-two-choices', 'peak-ewma'];
    const svg = lineChart({
      title: 'share',
      series: [...names, ...names.map((n) => `${n}+outlier`)].map((name, i) => ({
        name,
        points: [
          [0, i / 10],
          [1, i / 20],
        ] as const,
      })),
      xLabel: 's',
      yLabel: 'share',
      bands: [
        { from: 0.2, to: 0.4, label: 'down' },
        { from: 0.6, to: 0.8, label: 'down' },
      ],
    });
    expect(svg.match(/<polyline /g)?.length).toBe(8);
    // Repeated bands are labelled once.
    expect(svg.match(/>down<\/text>/g)?.length).toBe(1);
    // Eight long names do not fit on one row.
    const swatches = [
      ...svg.matchAll(
        /<line x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)" y2="\1" stroke="#\w+" stroke-width="3"\/>/g,
      ),
    ];
    expect(swatches.length).toBe(8);
    const legendRows = new Set(swatches.map((m) => m[1]));
    expect(legendRows.size).toBeGreaterThan(1);
    expect(wellFormed(svg)).toBe(true);
  });

  it('renders a report as latency, success, skew and share charts, byte for byte the same', async () => {
    const r = await smallReport();
    const charts = reportCharts(r);
    expect(charts.map((c) => c.name)).toEqual([
      'linkerd-latency',
      'linkerd-success',
      'linkerd-skew',
      'linkerd-share',
    ]);
    for (const c of charts) expect(wellFormed(c.svg)).toBe(true);
    expect(charts[0]!.svg).toContain('deadline 1000 ms');
    expect(charts[3]!.svg).toContain('b0 at 2 s');
    expect(reportCharts(r)).toEqual(charts);
  });

  it('formats a report as tables with every algorithm and window', async () => {
    const r = await smallReport();
    const text = formatReport(r);
    expect(text).toContain('| round-robin');
    expect(text).toContain('| peak-ewma');
    expect(text).toContain('success ≤ 1000 ms');
    expect(text).toContain('b0 share');
    expect(text).toContain('0–3 s');
    expect(text).toContain(`${(r.results[0]!.successRate * 100).toFixed(2)}%`);
  });

  it('renders a report saved as JSON and read back', async () => {
    const r = JSON.parse(JSON.stringify(await smallReport())) as SimulationReport;
    expect(formatReport(r)).toBe(formatReport(await smallReport()));
    expect(reportCharts(r).map((c) => c.svg)).toEqual(
      reportCharts(await smallReport()).map((c) => c.svg),
    );
  });

  // Found by the property suite: each threw a plain TypeError before.
  it.each([
    ['no spec at all', () => barChart(undefined as never), 'BarChartSpec'],
    [
      'a title that is not a string',
      () => barChart({ title: Number.NaN as never, categories: [], series: [], yLabel: 'y' }),
      'BarChartSpec.title',
    ],
    [
      'a format that returns a number',
      () =>
        barChart({
          title: 't',
          categories: ['a'],
          series: [{ name: 's', values: [1] }],
          yLabel: 'y',
          format: (() => 42) as never,
        }),
      'BarChartSpec.format(value)',
    ],
    [
      'a point that is not a pair',
      () =>
        lineChart({
          title: 't',
          series: [{ name: 'a', points: [1 as never] }],
          xLabel: 'x',
          yLabel: 'y',
        }),
      'LineChartSpec.series[0].points[0]',
    ],
    ['a title that is an object', () => lineChart({ title: {} } as never), 'LineChartSpec.title'],
    ['a report that is not one', () => formatReport({} as never), 'report.scenario'],
    ['a date as a report', () => reportCharts(new Date(0) as never), 'report'],
  ])('refuses %s with a config error naming it', (_, call, field) => {
    expect(call).toThrow(expect.objectContaining({ code: 'LB_CONFIG', field }));
  });
});
