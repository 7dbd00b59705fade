import { checkReport } from './check-render.js';
import type { AlgorithmResult, SimulationReport } from './types.js';

/** Formats a share in [0, 1] as a percentage with enough digits to tell 99.9% from 99.95%. */
export function percent(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return '–';
  return `${(x * 100).toFixed(digits)}%`;
}

function ms(x: number): string {
  if (!Number.isFinite(x)) return '–';
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function ratio(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : '–';
}

/** A Markdown table: the first column left-aligned, the others right-aligned. @internal */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function largestMove(r: AlgorithmResult): number {
  let max = 0;
  for (const w of r.windows) if (w.moved > max) max = w.moved;
  return max;
}

/**
 * Renders a report as Markdown tables (readable as plain text too): one row per algorithm with
 * success within the deadline, latency percentiles, load skew, the focus backend's share and
 * traffic movement, then success and focus share per window.
 *
 * @example
 * ```ts
 * console.log(formatReport(await simulate(linkerdScenario())));
 * ```
 */
export function formatReport(report: SimulationReport): string {
  checkReport(report);
  const focus = report.focus;
  const focusIndex = focus === undefined ? -1 : report.backendIds.indexOf(focus);
  const keyed = report.results.some((r) => r.keyChurn !== undefined);
  const header = [
    'algorithm',
    `success ≤ ${report.deadlineMs} ms`,
    'p50 ms',
    'p99 ms',
    'p99.9 ms',
    'max ms',
    'skew req',
    'skew peak',
    ...(focusIndex >= 0 ? [`${focus} share`] : []),
    'moved',
    ...(keyed ? ['key churn'] : []),
  ];
  const rows = report.results.map((r) => [
    r.name,
    percent(r.successRate),
    ms(r.latency.p50),
    ms(r.latency.p99),
    ms(r.latency.p999),
    ms(r.latency.max),
    ratio(r.skew.requests),
    ratio(r.skew.peakInFlight),
    ...(focusIndex >= 0 ? [percent(r.backends[focusIndex]!.share)] : []),
    percent(largestMove(r), 1),
    ...(keyed ? [r.keyChurn === undefined ? '–' : percent(r.keyChurn, 1)] : []),
  ]);
  const parts = [
    `Scenario ${report.scenario} (seed ${report.seed}): ${report.description}`,
    '',
    table(header, rows),
  ];
  const windows = report.results[0]?.windows ?? [];
  if (windows.length > 1) {
    const wHeader = ['algorithm', ...windows.map((w) => w.label)];
    const success = report.results.map((r) => [
      r.name,
      ...r.windows.map((w) => percent(w.successRate)),
    ]);
    parts.push('', 'Success per window:', '', table(wHeader, success));
    if (focusIndex >= 0) {
      const share = report.results.map((r) => [
        r.name,
        ...r.windows.map((w) => percent(w.share[focus!] ?? 0)),
      ]);
      parts.push('', `Share of ${focus} per window:`, '', table(wHeader, share));
    }
    if (keyed) {
      const moved = report.results.map((r) => [
        r.name,
        ...r.windows.map((w) => (w.keysMoved === undefined ? '–' : percent(w.keysMoved, 1))),
      ]);
      parts.push('', 'Keys moved since the previous window:', '', table(wHeader, moved));
    }
  }
  return parts.join('\n');
}
