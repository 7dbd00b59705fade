/**
 * Small hand-written SVG charts (grouped bars and lines) with no dependency, so reports can be
 * drawn anywhere the library runs. The output is deterministic: the same data gives the same
 * bytes, so charts kept in a repository change only when results do.
 */
import { checkBarChartSpec, checkLineChartSpec, checkReport } from './check-render.js';
import type { BarChartSpec, LineChartSpec, ReferenceLine, SimulationReport } from './types.js';

/** Okabe–Ito colours: distinguishable with the common forms of colour blindness. */
const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#D55E00',
  '#CC79A7',
  '#56B4E9',
  '#F0E442',
  '#000000',
];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
/** A white outline behind labels drawn over lines, so they stay readable. */
const HALO = 'paint-order="stroke" stroke="#ffffff" stroke-width="3" stroke-linejoin="round"';

/** A rendered chart. */
export interface Chart {
  /** A file-name-friendly name, e.g. `linkerd-latency`. */
  readonly name: string;
  readonly title: string;
  /** The SVG document. */
  readonly svg: string;
}

const MARGIN = { top: 64, right: 24, left: 72 };
/** A rough width of one character at 12 px, enough to lay out these short labels. */
const CHAR_PX = 6.8;
const LEGEND_ROW = 18;

function num(x: number): string {
  const r = Math.round(x * 10) / 10;
  return Object.is(r, -0) ? '0' : String(r);
}

function escapeXml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function defaultFormat(x: number): string {
  if (Math.abs(x) >= 100 || Number.isInteger(x)) return String(Math.round(x));
  return x.toFixed(1);
}

/** A round step giving about `target` intervals over `span` (1, 2 or 5 × 10^k). */
function niceStep(span: number, target = 5): number {
  if (!(span > 0)) return 1;
  const raw = span / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  const factor = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return factor * magnitude;
}

function ticksOf(min: number, max: number, step = niceStep(max - min)): number[] {
  const ticks: number[] = [];
  for (let k = Math.ceil(min / step - 1e-9); k * step <= max + step * 1e-9; k++) {
    ticks.push(Math.round(k * step * 1e9) / 1e9);
  }
  return ticks;
}

/**
 * The value axis: from `min` to a multiple of a round step above `largest`, with some headroom
 * for the labels over the bars.
 */
function valueScale(
  min: number,
  largest: number,
  fixedMax: number | undefined,
): { max: number; step: number } {
  if (fixedMax !== undefined) return { max: fixedMax, step: niceStep(fixedMax - min) };
  if (!(largest > min)) return { max: min + 1, step: niceStep(1) };
  const top = largest + (largest - min) * 0.08;
  const step = niceStep(top - min);
  return { max: min + Math.ceil((top - min) / step - 1e-9) * step, step };
}

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly x0: number;
  readonly x1: number;
  readonly y0: number;
  readonly y1: number;
}

function frameOf(width: number, height: number, bottom: number): Frame {
  return {
    width,
    height,
    x0: MARGIN.left,
    x1: width - MARGIN.right,
    y0: height - bottom,
    y1: MARGIN.top,
  };
}

/** Splits a label after '-' or '+' into lines of at most `maxPx`, so category names fit. */
function wrapLabel(label: string, maxPx: number): string[] {
  const tokens = label.match(/[^-+]+[-+]?|[-+]/g) ?? [label];
  const maxChars = Math.max(4, Math.floor(maxPx / CHAR_PX));
  const lines: string[] = [];
  let line = '';
  for (const token of tokens) {
    if (line !== '' && (line + token).length > maxChars) {
      lines.push(line);
      line = token;
    } else {
      line += token;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Positions of legend entries, wrapped onto rows that fit between `x0` and `x1`. */
function legendLayout(
  names: readonly string[],
  x0: number,
  x1: number,
): { readonly at: { x: number; row: number }[]; readonly rows: number } {
  const at: { x: number; row: number }[] = [];
  let x = x0;
  let row = 0;
  for (const name of names) {
    const w = 20 + name.length * CHAR_PX + 18;
    if (x > x0 && x + w > x1) {
      row++;
      x = x0;
    }
    at.push({ x, row });
    x += w;
  }
  return { at, rows: names.length === 0 ? 0 : row + 1 };
}

function open(f: Frame, title: string, subtitle: string | undefined): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" role="img" aria-labelledby="title">`,
    `<title id="title">${escapeXml(title)}</title>`,
    `<rect width="${f.width}" height="${f.height}" fill="#ffffff"/>`,
    `<text x="${f.x0}" y="26" ${FONT} font-size="16" font-weight="600" fill="#222">${escapeXml(title)}</text>`,
  ];
  if (subtitle !== undefined) {
    out.push(
      `<text x="${f.x0}" y="46" ${FONT} font-size="12" fill="#555">${escapeXml(subtitle)}</text>`,
    );
  }
  return out;
}

function yAxis(
  f: Frame,
  ticks: readonly number[],
  y: (v: number) => number,
  format: (v: number) => string,
  label: string,
): string[] {
  const out: string[] = [];
  for (const t of ticks) {
    const ty = num(y(t));
    out.push(
      `<line x1="${f.x0}" x2="${f.x1}" y1="${ty}" y2="${ty}" stroke="#e4e4e4" stroke-width="1"/>`,
      `<text x="${f.x0 - 8}" y="${ty}" ${FONT} font-size="11" fill="#444" text-anchor="end" dominant-baseline="middle">${escapeXml(format(t))}</text>`,
    );
  }
  const cy = num((f.y0 + f.y1) / 2);
  out.push(
    `<line x1="${f.x0}" x2="${f.x0}" y1="${f.y1}" y2="${f.y0}" stroke="#888" stroke-width="1"/>`,
    `<line x1="${f.x0}" x2="${f.x1}" y1="${f.y0}" y2="${f.y0}" stroke="#888" stroke-width="1"/>`,
    `<text x="16" y="${cy}" ${FONT} font-size="12" fill="#444" text-anchor="middle" transform="rotate(-90 16 ${cy})">${escapeXml(label)}</text>`,
  );
  return out;
}

const REF_COLOR = '#B00020';

function refLinesOf(
  f: Frame,
  lines: readonly ReferenceLine[],
  y: (v: number) => number,
  yMin: number,
  yMax: number,
): string[] {
  const out: string[] = [];
  for (const line of lines) {
    if (line.value < yMin || line.value > yMax) continue;
    const ly = num(y(line.value));
    // Labelled in the legend, so the label never sits on a bar or a line.
    out.push(
      `<line x1="${f.x0}" x2="${f.x1}" y1="${ly}" y2="${ly}" stroke="${REF_COLOR}" stroke-width="1.5" stroke-dasharray="6 4"><title>${escapeXml(line.label)}</title></line>`,
    );
  }
  return out;
}

/** One entry of a legend: a series (a box or a line in its colour) or a reference line. */
interface LegendEntry {
  readonly name: string;
  readonly kind: 'box' | 'line' | 'ref';
  readonly color: string;
}

function legendEntries(
  names: readonly string[],
  kind: 'box' | 'line',
  refs: readonly ReferenceLine[],
): LegendEntry[] {
  return [
    ...names.map((name, i) => ({ name, kind, color: PALETTE[i % PALETTE.length]! })),
    ...refs.map((r) => ({ name: r.label, kind: 'ref' as const, color: REF_COLOR })),
  ];
}

function legend(
  f: Frame,
  entries: readonly LegendEntry[],
  layout: ReturnType<typeof legendLayout>,
): string[] {
  const out: string[] = [];
  for (const [i, entry] of entries.entries()) {
    const { x, row } = layout.at[i]!;
    const y = f.height - 12 - LEGEND_ROW * (layout.rows - 1 - row);
    const swatch =
      entry.kind === 'box'
        ? `<rect x="${num(x)}" y="${y - 10}" width="12" height="12" fill="${entry.color}"/>`
        : `<line x1="${num(x)}" x2="${num(x + 16)}" y1="${y - 4}" y2="${y - 4}" stroke="${entry.color}" ${
            entry.kind === 'ref' ? 'stroke-width="1.5" stroke-dasharray="4 2"' : 'stroke-width="3"'
          }/>`;
    out.push(
      swatch,
      `<text x="${num(x + 20)}" y="${y}" ${FONT} font-size="12" fill="#333">${escapeXml(entry.name)}</text>`,
    );
  }
  return out;
}

/**
 * A grouped bar chart as an SVG document.
 *
 * @example
 * ```ts
 * const svg = barChart({
 *   title: 'Latency',
 *   categories: ['round-robin', 'peak-ewma'],
 *   series: [{ name: 'p99', values: [2000, 185] }],
 *   yLabel: 'ms',
 * });
 * ```
 */
export function barChart(spec: BarChartSpec): string {
  const chart = checkBarChartSpec(spec);
  const width = chart.width ?? 720;
  const height = chart.height ?? 380;
  const plotWidth = width - MARGIN.left - MARGIN.right;
  const groupWidth = plotWidth / Math.max(chart.categories.length, 1);
  const labels = chart.categories.map((c) => wrapLabel(c, groupWidth - 6));
  const labelLines = Math.max(1, ...labels.map((l) => l.length));
  const entries = legendEntries(
    chart.series.length > 1 ? chart.series.map((s) => s.name) : [],
    'box',
    chart.refLines ?? [],
  );
  const layout = legendLayout(
    entries.map((e) => e.name),
    MARGIN.left,
    width - MARGIN.right,
  );
  const f = frameOf(width, height, 30 + 14 * labelLines + LEGEND_ROW * layout.rows);
  const format = chart.format ?? defaultFormat;
  const yMin = chart.yMin ?? 0;
  let largest = yMin;
  for (const s of chart.series) for (const v of s.values) if (v > largest) largest = v;
  for (const line of chart.refLines ?? []) if (line.value > largest) largest = line.value;
  const { max: yMax, step } = valueScale(yMin, largest, chart.yMax);
  const y = (v: number): number =>
    f.y0 - ((Math.min(Math.max(v, yMin), yMax) - yMin) / (yMax - yMin)) * (f.y0 - f.y1);
  const out = open(f, chart.title, chart.subtitle);
  out.push(...yAxis(f, ticksOf(yMin, yMax, step), y, chart.tickFormat ?? format, chart.yLabel));
  const barWidth = (groupWidth * 0.8) / Math.max(chart.series.length, 1);
  for (const [g, category] of chart.categories.entries()) {
    const gx = f.x0 + g * groupWidth + groupWidth * 0.1;
    for (const [s, series] of chart.series.entries()) {
      const value = series.values[g];
      if (value === undefined || !Number.isFinite(value)) continue;
      const x = gx + s * barWidth;
      const top = y(value);
      out.push(
        `<rect x="${num(x)}" y="${num(top)}" width="${num(barWidth - 2)}" height="${num(f.y0 - top)}" fill="${PALETTE[s % PALETTE.length]}"><title>${escapeXml(`${category}, ${series.name}: ${format(value)}`)}</title></rect>`,
      );
      if (chart.valueLabels ?? true) {
        out.push(
          `<text x="${num(x + (barWidth - 2) / 2)}" y="${num(top - 4)}" ${FONT} font-size="10" fill="#333" text-anchor="middle" ${HALO}>${escapeXml(format(value))}</text>`,
        );
      }
    }
    const cx = num(f.x0 + (g + 0.5) * groupWidth);
    const lines = labels[g]!;
    out.push(
      `<text x="${cx}" y="${f.y0 + 18}" ${FONT} font-size="12" fill="#222" text-anchor="middle">${lines
        .map((l, k) => `<tspan x="${cx}" dy="${k === 0 ? 0 : 14}">${escapeXml(l)}</tspan>`)
        .join('')}</text>`,
    );
  }
  out.push(...refLinesOf(f, chart.refLines ?? [], y, yMin, yMax));
  out.push(...legend(f, entries, layout));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/**
 * A line chart as an SVG document, with optional shaded bands (incidents) and reference lines.
 *
 * @example
 * ```ts
 * const svg = lineChart({
 *   title: 'Share of b0',
 *   series: [{ name: 'round-robin', points: [[0, 0.09], [1, 0.09]] }],
 *   xLabel: 's',
 *   yLabel: 'share',
 * });
 * ```
 */
export function lineChart(spec: LineChartSpec): string {
  const chart = checkLineChartSpec(spec);
  const width = chart.width ?? 720;
  const entries = legendEntries(
    chart.series.map((s) => s.name),
    'line',
    chart.refLines ?? [],
  );
  const layout = legendLayout(
    entries.map((e) => e.name),
    MARGIN.left,
    width - MARGIN.right,
  );
  const f = frameOf(width, chart.height ?? 380, 62 + LEGEND_ROW * layout.rows);
  const formatX = chart.formatX ?? defaultFormat;
  const formatY = chart.formatY ?? defaultFormat;
  let xMin = Number.POSITIVE_INFINITY;
  let xMax = Number.NEGATIVE_INFINITY;
  const yMin = chart.yMin ?? 0;
  let largest = yMin;
  for (const s of chart.series) {
    for (const [px, py] of s.points) {
      if (px < xMin) xMin = px;
      if (px > xMax) xMax = px;
      if (py > largest) largest = py;
    }
  }
  for (const b of chart.bands ?? []) {
    if (b.to > xMax) xMax = b.to;
    if (b.from < xMin) xMin = b.from;
  }
  if (!Number.isFinite(xMin)) {
    xMin = 0;
    xMax = 1;
  }
  if (xMax <= xMin) xMax = xMin + 1;
  for (const line of chart.refLines ?? []) if (line.value > largest) largest = line.value;
  const { max: yMax, step } = valueScale(yMin, largest, chart.yMax);
  const x = (v: number): number => f.x0 + ((v - xMin) / (xMax - xMin)) * (f.x1 - f.x0);
  const y = (v: number): number =>
    f.y0 - ((Math.min(Math.max(v, yMin), yMax) - yMin) / (yMax - yMin)) * (f.y0 - f.y1);
  const out = open(f, chart.title, chart.subtitle);
  let previousLabel: string | undefined;
  for (const band of chart.bands ?? []) {
    const bx = x(Math.max(band.from, xMin));
    const bw = x(Math.min(band.to, xMax)) - bx;
    out.push(
      `<rect x="${num(bx)}" y="${f.y1}" width="${num(bw)}" height="${f.y0 - f.y1}" fill="#f3e3e3"><title>${escapeXml(band.label)}</title></rect>`,
    );
    // Repeated bands (a flapping backend) are labelled once.
    if (band.label !== previousLabel) {
      out.push(
        `<text x="${num(bx + 4)}" y="${f.y1 + 14}" ${FONT} font-size="11" fill="#8a3b3b" ${HALO}>${escapeXml(band.label)}</text>`,
      );
    }
    previousLabel = band.label;
  }
  out.push(...yAxis(f, ticksOf(yMin, yMax, step), y, formatY, chart.yLabel));
  for (const t of ticksOf(xMin, xMax)) {
    out.push(
      `<text x="${num(x(t))}" y="${f.y0 + 18}" ${FONT} font-size="11" fill="#444" text-anchor="middle">${escapeXml(formatX(t))}</text>`,
    );
  }
  out.push(
    `<text x="${num((f.x0 + f.x1) / 2)}" y="${f.y0 + 38}" ${FONT} font-size="12" fill="#444" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
  );
  out.push(...refLinesOf(f, chart.refLines ?? [], y, yMin, yMax));
  for (const [i, s] of chart.series.entries()) {
    if (s.points.length === 0) continue;
    const d = s.points.map(([px, py]) => `${num(x(px))},${num(y(py))}`).join(' ');
    out.push(
      `<polyline points="${d}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="2" stroke-linejoin="round"><title>${escapeXml(s.name)}</title></polyline>`,
    );
  }
  out.push(...legend(f, entries, layout));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function pct(digits: number): (x: number) => string {
  return (x) => `${(x * 100).toFixed(digits)}%`;
}

/**
 * The charts of a report: latency percentiles per algorithm, success within the deadline, load
 * skew, and (when the scenario has a focus backend) that backend's share of traffic over time.
 *
 * @example
 * ```ts
 * for (const chart of reportCharts(report)) await writeFile(`${chart.name}.svg`, chart.svg);
 * ```
 */
export function reportCharts(report: SimulationReport): Chart[] {
  checkReport(report);
  const names = report.results.map((r) => r.name);
  const charts: Chart[] = [];
  const runLine = `${report.scenario}, seed ${report.seed}`;

  const latencyTitle = 'Latency percentiles per algorithm';
  charts.push({
    name: `${report.scenario}-latency`,
    title: latencyTitle,
    svg: barChart({
      title: latencyTitle,
      subtitle: `${runLine}; the client's view, in ms`,
      categories: names,
      series: [
        { name: 'p50', values: report.results.map((r) => r.latency.p50) },
        { name: 'p99', values: report.results.map((r) => r.latency.p99) },
        { name: 'p99.9', values: report.results.map((r) => r.latency.p999) },
      ],
      yLabel: 'latency (ms)',
      refLines: [{ value: report.deadlineMs, label: `deadline ${report.deadlineMs} ms` }],
    }),
  });

  const lowest = Math.min(...report.results.map((r) => r.successRate));
  // Start the axis below the worst result, on a multiple of 5%, so differences of a tenth of a
  // percent stay visible; the subtitle says so.
  const floor = Math.max(0, Math.floor((lowest * 100 - 1) / 5) * 5) / 100;
  const successTitle = `Success within the ${report.deadlineMs} ms deadline`;
  charts.push({
    name: `${report.scenario}-success`,
    title: successTitle,
    svg: barChart({
      title: successTitle,
      subtitle: `${runLine}${floor > 0 ? `; the axis starts at ${Math.round(floor * 100)}%` : ''}`,
      categories: names,
      series: [{ name: 'success', values: report.results.map((r) => r.successRate) }],
      yLabel: 'calls that succeeded',
      format: pct(2),
      tickFormat: pct(floor > 0.9 ? 1 : 0),
      yMin: floor,
      yMax: 1,
    }),
  });

  const skewTitle = 'Load skew (max / mean over backends)';
  charts.push({
    name: `${report.scenario}-skew`,
    title: skewTitle,
    svg: barChart({
      title: skewTitle,
      subtitle: `${runLine}; 1 is perfectly even`,
      categories: names,
      series: [
        { name: 'request rate', values: report.results.map((r) => r.skew.requests) },
        { name: 'peak in-flight', values: report.results.map((r) => r.skew.peakInFlight) },
      ],
      yLabel: 'max / mean',
      format: (x) => x.toFixed(2),
      refLines: [{ value: 1, label: 'even' }],
    }),
  });

  const focus = report.focus;
  const fi = focus === undefined ? -1 : report.backendIds.indexOf(focus);
  if (fi >= 0) {
    const bucket = report.timelineBucketMs;
    const shareTitle = `Share of traffic sent to ${focus} over time`;
    const initial = report.backendIds.length;
    charts.push({
      name: `${report.scenario}-share`,
      title: shareTitle,
      svg: lineChart({
        title: shareTitle,
        subtitle: `${runLine}; buckets of ${bucket} ms`,
        series: report.results.map((r) => ({
          name: r.name,
          points: r.timeline.map((b): [number, number] => {
            const placed = b.byBackend.reduce((s, c) => s + c, 0);
            return [(b.from + bucket / 2) / 1000, placed === 0 ? 0 : b.byBackend[fi]! / placed];
          }),
        })),
        xLabel: 'time (s)',
        yLabel: `share of calls to ${focus}`,
        formatY: pct(0),
        bands: report.focusPhases.map((p) => ({
          from: p.from / 1000,
          to: p.to / 1000,
          label: p.label,
        })),
        refLines: [{ value: 1 / initial, label: `fair share 1/${initial}` }],
      }),
    });
  }
  return charts;
}
