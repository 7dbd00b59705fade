export {
  type InstrumentOptions,
  type InstrumentTargets,
  instrument,
  instrumentFetch,
  instrumentPool,
} from './instrument.js';
export {
  DEFAULT_DURATION_BUCKETS,
  LOADWISE_METRICS,
  METRIC_ATTRIBUTES,
  type MetricDescriptor,
  type MetricKind,
  SPAN_ATTRIBUTES,
} from './metrics.js';
export type * from './types.js';
