/**
 * Checks of what the renderers take: chart specs (`barChart`, `lineChart`) and simulation
 * reports (`formatReport`, `reportCharts`). A report may come back from JSON (a saved run), so
 * its shape is checked field by field rather than trusted; each check throws a
 * {@link LoadBalancerConfigError} naming the field.
 * @internal
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import {
  checkBoolean,
  checkFunction,
  checkNumber,
  checkOptions,
  checkString,
  isPlainObject,
} from '../validate.js';
import type { BarChartSpec, LineChartSpec, ReferenceLine, SimulationReport } from './types.js';

/** Chart sizes in px: any finite size above 0 (a small one crops, it never fails). */
const SIZE = { min: 0, minExclusive: true };

const BAR_KEYS = [
  'title',
  'subtitle',
  'categories',
  'series',
  'yLabel',
  'format',
  'tickFormat',
  'yMin',
  'yMax',
  'refLines',
  'valueLabels',
  'width',
  'height',
] as const;

const LINE_KEYS = [
  'title',
  'subtitle',
  'series',
  'xLabel',
  'yLabel',
  'formatX',
  'formatY',
  'bands',
  'refLines',
  'yMin',
  'yMax',
  'width',
  'height',
] as const;

const text = (field: string, value: unknown): string =>
  checkString(field, value, { nonEmpty: false });

function list<T>(field: string, value: unknown, each: (x: unknown, field: string) => T): T[] {
  if (!Array.isArray(value)) throw new LoadBalancerConfigError(field, value, 'an array');
  return value.map((x, i) => each(x, `${field}[${i}]`));
}

function record(field: string, value: unknown): Record<string, unknown> {
  if (!isPlainObject(value)) throw new LoadBalancerConfigError(field, value, 'an object');
  return value;
}

/** Any number: charts skip NaN and infinite values, tables print them as a dash. */
function anyNumber(field: string, value: unknown): number {
  if (typeof value !== 'number') throw new LoadBalancerConfigError(field, value, 'a number');
  return value;
}

/** A label formatter, checked on each call: its result goes into the SVG as text. */
function formatter(field: string, value: unknown): ((x: number) => string) | undefined {
  if (value === undefined) return undefined;
  const f = checkFunction<(x: number) => unknown>(field, value);
  return (x) => text(`${field}(value)`, f(x));
}

function size(field: string, value: unknown): number | undefined {
  return value === undefined ? undefined : checkNumber(field, value, SIZE);
}

function axis(
  field: string,
  o: { yMin?: unknown; yMax?: unknown },
): { yMin?: number; yMax?: number } {
  const out: { yMin?: number; yMax?: number } = {};
  if (o.yMin !== undefined) out.yMin = checkNumber(`${field}.yMin`, o.yMin);
  if (o.yMax !== undefined) out.yMax = checkNumber(`${field}.yMax`, o.yMax);
  if (out.yMax !== undefined && out.yMax <= (out.yMin ?? 0)) {
    throw new LoadBalancerConfigError(
      `${field}.yMax`,
      out.yMax,
      `more than yMin (${out.yMin ?? 0})`,
    );
  }
  return out;
}

function refLines(field: string, value: unknown) {
  return list(field, value, (x, f) => {
    const r = checkOptions(f, record(f, x), ['value', 'label']);
    return { value: checkNumber(`${f}.value`, r['value']), label: text(`${f}.label`, r['label']) };
  });
}

/** The fields both chart kinds share around the plot: subtitle, reference lines and size. */
function checkFrame(
  field: string,
  o: { subtitle?: unknown; refLines?: unknown; width?: unknown; height?: unknown },
): { subtitle?: string; refLines?: ReferenceLine[]; width?: number; height?: number } {
  const out: { subtitle?: string; refLines?: ReferenceLine[]; width?: number; height?: number } =
    {};
  if (o.subtitle !== undefined) out.subtitle = text(`${field}.subtitle`, o.subtitle);
  if (o.refLines !== undefined) out.refLines = refLines(`${field}.refLines`, o.refLines);
  const width = size(`${field}.width`, o.width);
  if (width !== undefined) out.width = width;
  const height = size(`${field}.height`, o.height);
  if (height !== undefined) out.height = height;
  return out;
}

/** Checks a bar chart spec; returns it with checked formatters. @internal */
export function checkBarChartSpec(spec: unknown): BarChartSpec {
  const s = checkOptions('BarChartSpec', record('BarChartSpec', spec), BAR_KEYS);
  const out: { -readonly [K in keyof BarChartSpec]: BarChartSpec[K] } = {
    title: text('BarChartSpec.title', s['title']),
    categories: list('BarChartSpec.categories', s['categories'], (x, f) => text(f, x)),
    series: list('BarChartSpec.series', s['series'], (x, f) => {
      const r = checkOptions(f, record(f, x), ['name', 'values']);
      return {
        name: text(`${f}.name`, r['name']),
        values: list(`${f}.values`, r['values'], (v, g) => anyNumber(g, v)),
      };
    }),
    yLabel: text('BarChartSpec.yLabel', s['yLabel']),
    ...axis('BarChartSpec', s),
    ...checkFrame('BarChartSpec', s),
  };
  const format = formatter('BarChartSpec.format', s['format']);
  if (format !== undefined) out.format = format;
  const tickFormat = formatter('BarChartSpec.tickFormat', s['tickFormat']);
  if (tickFormat !== undefined) out.tickFormat = tickFormat;
  if (s['valueLabels'] !== undefined) {
    out.valueLabels = checkBoolean('BarChartSpec.valueLabels', s['valueLabels']);
  }
  return out;
}

/** Checks a line chart spec; returns it with checked formatters. @internal */
export function checkLineChartSpec(spec: unknown): LineChartSpec {
  const s = checkOptions('LineChartSpec', record('LineChartSpec', spec), LINE_KEYS);
  const out: { -readonly [K in keyof LineChartSpec]: LineChartSpec[K] } = {
    title: text('LineChartSpec.title', s['title']),
    series: list('LineChartSpec.series', s['series'], (x, f) => {
      const r = checkOptions(f, record(f, x), ['name', 'points']);
      return {
        name: text(`${f}.name`, r['name']),
        points: list(`${f}.points`, r['points'], (p, g) => {
          if (!Array.isArray(p) || p.length !== 2) {
            throw new LoadBalancerConfigError(g, p, 'a point [x, y]');
          }
          return [checkNumber(`${g}[0]`, p[0]), checkNumber(`${g}[1]`, p[1])] as const;
        }),
      };
    }),
    xLabel: text('LineChartSpec.xLabel', s['xLabel']),
    yLabel: text('LineChartSpec.yLabel', s['yLabel']),
    ...axis('LineChartSpec', s),
    ...checkFrame('LineChartSpec', s),
  };
  const formatX = formatter('LineChartSpec.formatX', s['formatX']);
  if (formatX !== undefined) out.formatX = formatX;
  const formatY = formatter('LineChartSpec.formatY', s['formatY']);
  if (formatY !== undefined) out.formatY = formatY;
  if (s['bands'] !== undefined) {
    out.bands = list('LineChartSpec.bands', s['bands'], (x, f) => {
      const r = checkOptions(f, record(f, x), ['from', 'to', 'label']);
      return {
        from: checkNumber(`${f}.from`, r['from']),
        to: checkNumber(`${f}.to`, r['to']),
        label: text(`${f}.label`, r['label']),
      };
    });
  }
  return out;
}

/**
 * Checks the fields of a report that the renderers read (a report of `simulate()`, possibly
 * saved as JSON and read back). Extra fields are allowed: a report grows with the simulator.
 * @internal
 */
export function checkReport(value: unknown): SimulationReport {
  const r = record('report', value);
  text('report.scenario', r['scenario']);
  text('report.description', r['description']);
  anyNumber('report.seed', r['seed']);
  anyNumber('report.deadlineMs', r['deadlineMs']);
  checkNumber('report.timelineBucketMs', r['timelineBucketMs'], { min: 0, minExclusive: true });
  list('report.backendIds', r['backendIds'], (x, f) => text(f, x));
  if (r['focus'] !== undefined) text('report.focus', r['focus']);
  list('report.focusPhases', r['focusPhases'], (x, f) => {
    const p = record(f, x);
    anyNumber(`${f}.from`, p['from']);
    anyNumber(`${f}.to`, p['to']);
    text(`${f}.label`, p['label']);
  });
  list('report.results', r['results'], (x, f) => {
    const a = record(f, x);
    text(`${f}.name`, a['name']);
    anyNumber(`${f}.successRate`, a['successRate']);
    const latency = record(`${f}.latency`, a['latency']);
    for (const k of ['p50', 'p99', 'p999', 'max']) anyNumber(`${f}.latency.${k}`, latency[k]);
    const skew = record(`${f}.skew`, a['skew']);
    for (const k of ['requests', 'peakInFlight']) anyNumber(`${f}.skew.${k}`, skew[k]);
    list(`${f}.backends`, a['backends'], (b, g) => anyNumber(`${g}.share`, record(g, b)['share']));
    if (a['keyChurn'] !== undefined) anyNumber(`${f}.keyChurn`, a['keyChurn']);
    list(`${f}.windows`, a['windows'], (w, g) => {
      const win = record(g, w);
      text(`${g}.label`, win['label']);
      anyNumber(`${g}.successRate`, win['successRate']);
      anyNumber(`${g}.moved`, win['moved']);
      for (const [k, v] of Object.entries(record(`${g}.share`, win['share']))) {
        anyNumber(`${g}.share.${k}`, v);
      }
      if (win['keysMoved'] !== undefined) anyNumber(`${g}.keysMoved`, win['keysMoved']);
    });
    list(`${f}.timeline`, a['timeline'], (b, g) => {
      const bucket = record(g, b);
      anyNumber(`${g}.from`, bucket['from']);
      list(`${g}.byBackend`, bucket['byBackend'], (n, h) => anyNumber(h, n));
    });
  });
  return value as SimulationReport;
}
