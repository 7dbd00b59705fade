/**
 * A pool's metrics in Prometheus, with prom-client: three local backends (fast, slow, flaky), a
 * balanced fetch with retries, and a `/metrics` endpoint on a local port. The script runs some
 * calls, scrapes its own `/metrics` once, prints it and exits.
 *
 *   npx tsx examples/prometheus.ts
 *
 * loadwise records through a small "meter" interface (`MeterLike`, a subset of OpenTelemetry's
 * `Meter`). With OpenTelemetry you pass its meter (or nothing: `@opentelemetry/api` is loaded
 * when installed); here a 50-line adapter maps it onto prom-client, using the names
 * OpenTelemetry's Prometheus exporter would give (`loadwise_requests_total`, ...), so the
 * dashboard queries in docs/observability.md work with either.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  type AttributesLike,
  BackendPool,
  createBalancedFetch,
  instrument,
  LeastConnections,
  LOADWISE_METRICS,
  type MeterLike,
  type MetricDescriptor,
  type ObservableCallbackLike,
  type ObservableLike,
} from '../src/index.js';

// ---------------------------------------------------------------- a prom-client "meter"

const descriptors = new Map<string, MetricDescriptor>(
  Object.values(LOADWISE_METRICS).map((d) => [d.name, d]),
);

/** The name OpenTelemetry's Prometheus exporter gives an instrument. */
function prometheusName(d: MetricDescriptor): string {
  const base = d.name.replaceAll('.', '_');
  if (d.unit === 's') return `${base}_seconds`;
  return d.kind === 'counter' || d.kind === 'observableCounter' ? `${base}_total` : base;
}

/** loadwise attributes are strings and numbers, which is what prom-client labels take. */
function labels(attrs: AttributesLike | undefined): Record<string, string | number> {
  return (attrs ?? {}) as Record<string, string | number>;
}

function promMeter(registry: Registry): MeterLike {
  const config = (name: string) => {
    const d = descriptors.get(name);
    if (d === undefined) throw new Error(`unknown loadwise metric ${name}`);
    return {
      name: prometheusName(d),
      help: d.description,
      labelNames: [...d.attributes],
      registers: [registry],
    };
  };
  /** An observable instrument: prom-client calls `collect` on each scrape. */
  const observable = (metric: (collect: () => void) => { reset(): void }): ObservableLike => {
    const callbacks = new Set<ObservableCallbackLike>();
    let target: { reset(): void; set(labels: object, value: number): void } | undefined;
    const collect = (): void => {
      target!.reset();
      for (const cb of callbacks)
        void cb({ observe: (value, attrs) => target!.set(labels(attrs), value) });
    };
    target = metric(collect) as typeof target;
    return {
      addCallback: (cb) => callbacks.add(cb),
      removeCallback: (cb) => callbacks.delete(cb),
    };
  };
  return {
    createCounter(name) {
      const counter = new Counter(config(name));
      return { add: (value, attrs) => counter.inc(labels(attrs), value) };
    },
    createHistogram(name, options) {
      const buckets = options?.advice?.explicitBucketBoundaries;
      const histogram = new Histogram({ ...config(name), ...(buckets ? { buckets } : {}) });
      return { record: (value, attrs) => histogram.observe(labels(attrs), value) };
    },
    createObservableCounter(name) {
      // A cumulative total read at scrape time: reset, then add the current total.
      return observable((collect) => {
        const counter = new Counter({ ...config(name), collect });
        return { reset: () => counter.reset(), set: (l: object, v: number) => counter.inc(l, v) };
      });
    },
    createObservableGauge(name) {
      return observable((collect) => {
        const gauge = new Gauge({ ...config(name), collect });
        return { reset: () => gauge.reset(), set: (l: object, v: number) => gauge.set(l, v) };
      });
    },
  };
}

// ---------------------------------------------------------------- three local backends

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
  });
}

let flakyCalls = 0;
const backends = [
  // fast
  createServer((_req, res) => setTimeout(() => res.end('fast'), 2)),
  // slow
  createServer((_req, res) => setTimeout(() => res.end('slow'), 40)),
  // flaky: every other call answers 503, which the balanced fetch retries elsewhere
  createServer((_req, res) => {
    flakyCalls++;
    res.statusCode = flakyCalls % 2 === 0 ? 503 : 200;
    res.end('flaky');
  }),
];
const urls = await Promise.all(backends.map(listen));

// ---------------------------------------------------------------- pool, fetch, metrics

const pool = new BackendPool({ name: 'users', backends: urls, algorithm: new LeastConnections() });
const balancedFetch = createBalancedFetch(pool, { retries: 2, backoffBaseMs: 5 });

const registry = new Registry();
const telemetry = instrument({ pool, fetch: balancedFetch, meter: promMeter(registry) });

const metricsServer = createServer((req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  registry.metrics().then(
    (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
    (error: unknown) => res.writeHead(500).end(String(error)),
  );
});
const metricsUrl = `${await listen(metricsServer)}/metrics`;

// Some traffic: 60 calls, 6 at a time.
for (let round = 0; round < 10; round++) {
  await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const res = await balancedFetch(`/users/${round * 6 + i}`);
      await res.text();
    }),
  );
  // Halfway, the slow backend fails its health check: a state change, and one fewer healthy.
  if (round === 4) pool.setHealthy(pool.backends()[1]!.id, false, 'health check failed');
}

const scrape = await fetch(metricsUrl);
console.log(`GET ${metricsUrl} -> ${scrape.status}\n`);
console.log(await scrape.text());

telemetry.close();
await pool.close();
await Promise.all(
  [...backends, metricsServer].map(
    (s) =>
      new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      }),
  ),
);
