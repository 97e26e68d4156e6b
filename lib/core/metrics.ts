import { Injectable } from '@nestjs/common';

/**
 * The labels of one series: a bounded set of values (a feature, a tier, a policy name, an
 * outcome), never a key, an id or anything a request carries.
 */
export type MetricLabels = Readonly<Record<string, string>>;

/**
 * A counter or a gauge whose values are read when an exporter collects them: the feature keeps
 * its own plain numbers (the ones its `stats()` returns) and nothing is done per event.
 */
export interface CollectedMetric {
  /** Without the exporter's prefix, in Prometheus style: `cache_hits_total`. */
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  labelNames: readonly string[];
  /** Every series, as labels and value. */
  collect(): Iterable<readonly [MetricLabels, number]>;
}

/** A distribution of durations in seconds, observed per event while an exporter listens. */
export interface HistogramDefinition {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** Upper bounds of the buckets, in seconds. */
  buckets: readonly number[];
  /** Per-command detail: exporters receive it only when asked for (`metrics.commands`). */
  perCommand?: true;
}

export interface MetricsHistogram {
  /** Whether an exporter listens: time the event only then (otherwise observing costs nothing). */
  readonly active: boolean;
  observe(labels: MetricLabels, seconds: number): void;
}

/** What an exporter (Prometheus, OpenTelemetry) implements to receive the library's metrics. */
export interface MetricsExporter {
  collected(metric: CollectedMetric): void;
  /** Answers the function that records one observation of `definition`. */
  histogram(definition: HistogramDefinition): (labels: MetricLabels, seconds: number) => void;
}

/** Bucket bounds (seconds) for waits and calls that take from a millisecond to tens of seconds. */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

class FannedHistogram implements MetricsHistogram {
  readonly sinks: ((labels: MetricLabels, seconds: number) => void)[] = [];

  constructor(readonly definition: HistogramDefinition) {}

  get active(): boolean {
    return this.sinks.length > 0;
  }

  observe(labels: MetricLabels, seconds: number): void {
    for (const sink of this.sinks) sink(labels, seconds);
  }
}

/**
 * The one surface every feature reports its metrics to; exporters attach to it. With no exporter,
 * a collected metric is never read and a histogram is inactive, so reporting costs nothing.
 *
 * @example
 * // in a feature's service
 * metrics.collect({ name: 'cache_loader_calls_total', help: 'Loader calls', type: 'counter', labelNames: [], collect: () => [[{}, this.stats.loaderCalls]] });
 * const waits = metrics.histogram({ name: 'lock_wait_seconds', help: 'Time to acquire', labelNames: ['outcome'], buckets: DURATION_BUCKETS });
 */
@Injectable()
export class RedisMetrics {
  private readonly collectedMetrics: CollectedMetric[] = [];
  private readonly histograms: FannedHistogram[] = [];
  private readonly exporters: { exporter: MetricsExporter; perCommand: boolean }[] = [];

  /** Adds a metric read at collection time. */
  collect(metric: CollectedMetric): void {
    this.collectedMetrics.push(metric);
    for (const { exporter } of this.exporters) exporter.collected(metric);
  }

  /** A histogram; observe into it only while it is {@link MetricsHistogram.active}. */
  histogram(definition: HistogramDefinition): MetricsHistogram {
    const histogram = new FannedHistogram(definition);
    this.histograms.push(histogram);
    for (const { exporter, perCommand } of this.exporters) this.connect(histogram, exporter, perCommand);
    return histogram;
  }

  /**
   * Attaches an exporter: it receives every metric, those added before and after (per-command
   * histograms only with `perCommand`).
   */
  attach(exporter: MetricsExporter, { perCommand = false }: { perCommand?: boolean } = {}): void {
    this.exporters.push({ exporter, perCommand });
    for (const metric of this.collectedMetrics) exporter.collected(metric);
    for (const histogram of this.histograms) this.connect(histogram, exporter, perCommand);
  }

  private connect(histogram: FannedHistogram, exporter: MetricsExporter, perCommand: boolean): void {
    if (perCommand || !histogram.definition.perCommand) histogram.sinks.push(exporter.histogram(histogram.definition));
  }
}

/**
 * A counter a feature keeps by bounded labels, read when collected: `add()` is a map update, the
 * same with or without an exporter.
 * @example
 * const decisions = new CountedMetric(metrics, { name: 'ratelimit_decisions_total', help: 'Decisions', labelNames: ['policy', 'outcome'] });
 * decisions.add({ policy: 'api', outcome: 'limited' });
 */
export class CountedMetric {
  private readonly counts = new Map<string, { labels: MetricLabels; value: number }>();

  constructor(
    metrics: RedisMetrics,
    private readonly definition: Pick<CollectedMetric, 'name' | 'help' | 'labelNames'>,
  ) {
    metrics.collect({
      ...definition,
      type: 'counter',
      collect: () => [...this.counts.values()].map(({ labels, value }) => [labels, value] as const),
    });
  }

  add(labels: MetricLabels, value = 1): void {
    // Called per decision or message: the series' id is built without an array.
    let id = '';
    for (const name of this.definition.labelNames) id += `${labels[name]}\u0000`;
    const counted = this.counts.get(id);
    if (counted) counted.value += value;
    else this.counts.set(id, { labels, value });
  }
}
