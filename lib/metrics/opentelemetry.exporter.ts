import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Meter, Observable, ObservableCallback, Span, Tracer } from '@opentelemetry/api';
import { LIBRARY_NAME, LIBRARY_VERSION } from '../core/core.constants.js';
import { RedisMetrics, type CollectedMetric, type HistogramDefinition, type MetricLabels } from '../core/metrics.js';
import { RedisTracing, type SpanOptions, type SpanRunner } from '../core/tracing.js';
import { METRICS_OPTIONS } from './metrics.options.js';
import type { ResolvedMetricsOptions } from './metrics.options-validator.js';
import { loadPeer } from './metrics.peers.js';

type OpenTelemetryApi = typeof import('@opentelemetry/api');

/**
 * The name of a metric in OpenTelemetry: its Prometheus name with the prefix, less what
 * OpenTelemetry says elsewhere: a counter's `_total` (it is a sum), a histogram's `_seconds` (its
 * unit is `s`). `cache_requests_total` is `redis_patterns_cache_requests`.
 */
export function openTelemetryName(prefix: string, name: string, kind: CollectedMetric['type'] | 'histogram'): string {
  const suffix = kind === 'counter' ? '_total' : kind === 'histogram' ? '_seconds' : '';
  return prefix + (suffix !== '' && name.endsWith(suffix) ? name.slice(0, -suffix.length) : name);
}

/**
 * Reports the library's metrics to OpenTelemetry when `metrics.openTelemetry` is set: counters
 * and gauges become observable instruments whose callbacks read the features' own numbers when
 * the meter's reader collects, histograms are recorded as events happen. It also attaches a
 * tracer to `RedisTracing`, so the slow paths run in spans. The callbacks are removed when the app
 * closes.
 */
@Injectable()
export class OpenTelemetryExporter implements OnModuleInit, OnModuleDestroy {
  private readonly observed: [Observable, ObservableCallback][] = [];

  constructor(
    private readonly metrics: RedisMetrics,
    private readonly tracing: RedisTracing,
    @Inject(METRICS_OPTIONS) private readonly settings: ResolvedMetricsOptions,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.settings.openTelemetry) return;
    const api = await loadPeer('metrics.openTelemetry', '@opentelemetry/api', () => import('@opentelemetry/api'));
    const meter = this.settings.openTelemetry.meter ?? api.metrics.getMeter(LIBRARY_NAME, LIBRARY_VERSION);
    this.metrics.attach(
      {
        collected: (metric) => this.observe(meter, metric),
        histogram: (definition) => this.histogram(meter, definition),
      },
      { perCommand: this.settings.commands },
    );
    this.tracing.attach(new OpenTelemetrySpans(api, api.trace.getTracer(LIBRARY_NAME, LIBRARY_VERSION)));
  }

  onModuleDestroy(): void {
    for (const [instrument, callback] of this.observed.splice(0)) instrument.removeCallback(callback);
  }

  private observe(meter: Meter, metric: CollectedMetric): void {
    const name = openTelemetryName(this.settings.prefix, metric.name, metric.type);
    const options = { description: metric.help };
    const instrument =
      metric.type === 'counter' ? meter.createObservableCounter(name, options) : meter.createObservableGauge(name, options);
    const callback: ObservableCallback = (result) => {
      for (const [labels, value] of metric.collect()) result.observe(value, labels);
    };
    instrument.addCallback(callback);
    this.observed.push([instrument, callback]);
  }

  private histogram(meter: Meter, definition: HistogramDefinition): (labels: MetricLabels, seconds: number) => void {
    const histogram = meter.createHistogram(openTelemetryName(this.settings.prefix, definition.name, 'histogram'), {
      description: definition.help,
      unit: 's',
      advice: { explicitBucketBoundaries: [...definition.buckets] },
    });
    return (labels, seconds) => histogram.record(seconds, labels);
  }
}

/**
 * Spans of OpenTelemetry: the active one, so what the work does (a loader's database query) is
 * its child; a child of the caller's active span, or a trace of its own for a consumer.
 */
class OpenTelemetrySpans implements SpanRunner {
  constructor(
    private readonly api: OpenTelemetryApi,
    private readonly tracer: Tracer,
  ) {}

  run<T>(name: string, options: SpanOptions, work: () => Promise<T>): Promise<T> {
    const consumer = options.kind === 'consumer';
    const { SpanKind } = this.api;
    const started = { kind: consumer ? SpanKind.CONSUMER : SpanKind.INTERNAL, attributes: options.attributes, root: consumer };
    return this.tracer.startActiveSpan(name, started, async (span) => {
      try {
        return await work();
      } catch (error) {
        this.failed(span, error, options);
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** Status ERROR, with the exception recorded (described by `describeError` when the span has it). */
  private failed(span: Span, error: unknown, { describeError }: SpanOptions): void {
    const name = error instanceof Error ? error.name : typeof error;
    const message = describeError?.(error) ?? (error instanceof Error ? error.message : String(error));
    span.recordException(error instanceof Error && describeError === undefined ? error : { name, message });
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message });
  }
}
