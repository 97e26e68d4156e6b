import { defineFeature } from '../core/feature.js';
import { METRICS_OPTIONS, type MetricsOptions } from './metrics.options.js';
import { resolveMetricsOptions } from './metrics.options-validator.js';
import { OpenTelemetryExporter } from './opentelemetry.exporter.js';
import { PrometheusExporter } from './prometheus.exporter.js';

/**
 * Metrics: the `metrics` section chooses the exporters of what every feature reports to
 * `RedisMetrics` (a core provider), and OpenTelemetry's also traces what they put in spans with
 * `RedisTracing`. It has no keys of its own.
 */
export const metricsFeature = defineFeature({
  name: 'metrics',
  section: { name: 'metrics', token: METRICS_OPTIONS, resolve: (given: MetricsOptions | undefined) => resolveMetricsOptions(given) },
  providers: [PrometheusExporter, OpenTelemetryExporter],
  exports: [],
});
