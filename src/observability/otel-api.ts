/**
 * Finding `@opentelemetry/api` without depending on it: the user passes the module, or it is
 * loaded once with a dynamic import. It is an optional peer dependency, so a failed load only
 * means that nothing is recorded.
 * @internal
 */
import { LoadBalancerConfigError } from '../errors/config-error.js';
import { hasMethods } from '../validate.js';
import type { MeterLike, OpenTelemetryApiLike } from './types.js';

// A variable specifier keeps bundlers from failing the build when the optional peer is absent
// (bundled apps pass `api` explicitly), and keeps TypeScript from requiring its types.
const API_SPECIFIER = '@opentelemetry/api';

let loading: Promise<OpenTelemetryApiLike | undefined> | undefined;

/**
 * Loads `@opentelemetry/api` once per process. Resolves `undefined` when it cannot be imported
 * (not installed, or a runtime without module resolution for it).
 */
export function loadOpenTelemetryApi(): Promise<OpenTelemetryApiLike | undefined> {
  loading ??= (
    import(/* webpackIgnore: true */ /* @vite-ignore */ API_SPECIFIER) as Promise<unknown>
  )
    .then((mod) => asApi(mod))
    .catch(() => undefined);
  return loading;
}

/** The API object in a module namespace (ESM, or CommonJS seen through `default`), if any. */
function asApi(mod: unknown): OpenTelemetryApiLike | undefined {
  if (isApi(mod)) return mod;
  const fallback = (mod as { default?: unknown } | null)?.default;
  return isApi(fallback) ? fallback : undefined;
}

function isApi(x: unknown): x is OpenTelemetryApiLike {
  const o = x as Partial<Record<'metrics' | 'trace', Record<string, unknown>>> | null | undefined;
  return (
    typeof o === 'object' &&
    o !== null &&
    typeof o.metrics?.['getMeter'] === 'function' &&
    typeof o.trace?.['getActiveSpan'] === 'function'
  );
}

/** Validates a user-given API module. */
export function checkApi(field: string, value: unknown): OpenTelemetryApiLike {
  const api = asApi(value);
  if (api === undefined) {
    throw new LoadBalancerConfigError(
      field,
      value,
      "the @opentelemetry/api module (import * as otel from '@opentelemetry/api')",
    );
  }
  return api;
}

const METER_METHODS = [
  'createCounter',
  'createHistogram',
  'createObservableCounter',
  'createObservableGauge',
] as const;

/** Validates a user-given meter. */
export function checkMeter(field: string, value: unknown): MeterLike {
  if (typeof value !== 'object' || !hasMethods(value, METER_METHODS)) {
    throw new LoadBalancerConfigError(
      field,
      value,
      `a Meter from @opentelemetry/api (with ${METER_METHODS.join(', ')})`,
    );
  }
  return value as MeterLike;
}

/**
 * Whether `instrument` came from OpenTelemetry's no-op meter, which `metrics.getMeter()` returns
 * while no SDK is registered. The metrics API has no proxy provider, so such a meter never
 * records, even if an SDK is registered later: skipping it costs nothing and loses nothing.
 */
export function isNoopInstrument(
  api: OpenTelemetryApiLike | undefined,
  instrument: unknown,
): boolean {
  if (api?.createNoopMeter !== undefined) {
    if (instrument === api.createNoopMeter().createHistogram('loadwise.noop-probe')) return true;
  }
  // A meter from another copy of the API: its no-op instruments share the class name (unless
  // minified, in which case recording simply goes through the no-op calls).
  const proto = Object.getPrototypeOf(instrument) as { constructor?: { name?: unknown } } | null;
  return proto?.constructor?.name === 'NoopHistogramMetric';
}
