import type { Meter } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import { InvalidOptionError } from '../core/errors.js';
import { isRecord, knownRecord, toBoolean } from '../core/validation.js';
import type { MetricsOptions } from './metrics.options.js';

/** The `metrics` section after validation. */
export interface ResolvedMetricsOptions {
  /** The registry to fill (undefined: prom-client's default), or false when Prometheus is not used. */
  prometheus: false | { registry: Registry | undefined };
  /** The meter to report to (undefined: the global MeterProvider's), or false when OpenTelemetry is not used. */
  openTelemetry: false | { meter: Meter | undefined };
  prefix: string;
  commands: boolean;
}

export const DEFAULT_METRICS_OPTIONS = { prefix: 'redis_patterns_', commands: false } as const;

/** What Prometheus accepts as the start of a metric name. */
const METRIC_NAME_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** What the exporter asks of a meter. */
const METER_METHODS = ['createHistogram', 'createObservableCounter', 'createObservableGauge'];

/** Validates `metrics` of the module options, once, at startup. */
export function resolveMetricsOptions(given: MetricsOptions | undefined): ResolvedMetricsOptions {
  const options = knownRecord('metrics', given, ['prometheus', 'openTelemetry', 'prefix', 'commands']) as MetricsOptions;
  const commands = toBoolean('metrics.commands', options.commands ?? DEFAULT_METRICS_OPTIONS.commands);
  const prefix = options.prefix ?? DEFAULT_METRICS_OPTIONS.prefix;
  if (typeof prefix !== 'string' || !METRIC_NAME_PREFIX.test(prefix))
    throw new InvalidOptionError('metrics.prefix', 'letters, digits, _ and : not starting with a digit, such as "shop_redis_"', prefix);
  const prometheus = exporterOption('metrics.prometheus', options.prometheus, 'registry');
  const registry = prometheus?.setting;
  if (registry !== undefined && !(isRecord(registry) && typeof registry.registerMetric === 'function'))
    throw new InvalidOptionError('metrics.prometheus.registry', "a prom-client Registry (new Registry() of 'prom-client')", registry);
  const openTelemetry = exporterOption('metrics.openTelemetry', options.openTelemetry, 'meter');
  const meter = openTelemetry?.setting;
  if (meter !== undefined && !(isRecord(meter) && METER_METHODS.every((method) => typeof meter[method] === 'function')))
    throw new InvalidOptionError(
      'metrics.openTelemetry.meter',
      "an OpenTelemetry Meter (metrics.getMeter() of '@opentelemetry/api')",
      meter,
    );
  return {
    prometheus: prometheus !== undefined && { registry: registry as Registry | undefined },
    openTelemetry: openTelemetry !== undefined && { meter: meter as Meter | undefined },
    prefix,
    commands,
  };
}

/**
 * An exporter's option (`true`, `false` or `{ [setting]?: ... }`): undefined when it is off, else
 * its one setting as given (undefined for `true`, or when left out).
 */
function exporterOption(option: string, value: unknown, setting: string): { setting: unknown } | undefined {
  if (value === undefined || value === false) return undefined;
  return { setting: value === true ? undefined : knownRecord(option, value, [setting])[setting] };
}
