import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { RedisMetrics, type CollectedMetric, type HistogramDefinition, type MetricLabels } from '../core/metrics.js';
import { METRICS_OPTIONS } from './metrics.options.js';
import { loadPeer } from './metrics.peers.js';
import type { ResolvedMetricsOptions } from './metrics.options-validator.js';

type PromClient = typeof import('prom-client');

/**
 * Registers the library's metrics with prom-client when `metrics.prometheus` is set: counters and
 * gauges read the features' own numbers when the registry is scraped, histograms are observed as
 * events happen. The metrics leave the registry when the app closes.
 */
@Injectable()
export class PrometheusExporter implements OnModuleInit, OnModuleDestroy {
  private registry?: Registry;
  private readonly names: string[] = [];

  constructor(
    private readonly metrics: RedisMetrics,
    @Inject(METRICS_OPTIONS) private readonly settings: ResolvedMetricsOptions,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.settings.prometheus) return;
    const prom = await loadPeer('metrics.prometheus', 'prom-client', () => import('prom-client'));
    const registry = (this.registry = this.settings.prometheus.registry ?? prom.register);
    this.metrics.attach(
      {
        collected: (metric) => this.register(prom, registry, metric),
        histogram: (definition) => this.histogram(prom, registry, definition),
      },
      { perCommand: this.settings.commands },
    );
  }

  onModuleDestroy(): void {
    for (const name of this.names) this.registry?.removeSingleMetric(name);
  }

  private register(prom: PromClient, registry: Registry, metric: CollectedMetric): void {
    const common = { name: this.named(metric.name), help: metric.help, labelNames: [...metric.labelNames], registers: [registry] };
    if (metric.type === 'counter') {
      new prom.Counter({
        ...common,
        collect() {
          this.reset();
          for (const [labels, value] of metric.collect()) this.inc(labels, value);
        },
      });
    } else {
      new prom.Gauge({
        ...common,
        collect() {
          this.reset();
          for (const [labels, value] of metric.collect()) this.set(labels, value);
        },
      });
    }
  }

  private histogram(
    prom: PromClient,
    registry: Registry,
    definition: HistogramDefinition,
  ): (labels: MetricLabels, seconds: number) => void {
    const histogram = new prom.Histogram({
      name: this.named(definition.name),
      help: definition.help,
      labelNames: [...definition.labelNames],
      buckets: [...definition.buckets],
      registers: [registry],
    });
    return (labels, seconds) => histogram.observe(labels, seconds);
  }

  private named(name: string): string {
    const full = this.settings.prefix + name;
    this.names.push(full);
    return full;
  }
}
