import type { Meter } from '@opentelemetry/api';
import type { Registry } from 'prom-client';

/** Injection token of the resolved `metrics` section. */
export const METRICS_OPTIONS = Symbol('redis-patterns:metrics-options');

/**
 * The `metrics` section: where the library's metrics go. Without it nothing is exported, and
 * reporting costs nothing.
 * @example
 * RedisPatternsModule.forRoot({ connection, metrics: { prometheus: true } }); // prom-client's default registry
 * RedisPatternsModule.forRoot({ connection, metrics: { prometheus: { registry: myRegistry }, prefix: 'shop_redis_' } });
 * RedisPatternsModule.forRoot({ connection, metrics: { openTelemetry: true } }); // the global MeterProvider, and spans
 */
export interface MetricsOptions {
  /** Registers every metric with prom-client (an optional peer): `true` for its default registry, or a registry of the app's. */
  prometheus?: boolean | { registry?: Registry };
  /**
   * Reports every metric to OpenTelemetry (`@opentelemetry/api`, an optional peer), and puts the
   * slow paths (loader calls, lock waits, stream and queue handlers) in spans of the global
   * tracer provider. `true` uses the meter `nestjs-redis-patterns` of the global MeterProvider;
   * `{ meter }` one of the app's.
   * @example
   * metrics: { openTelemetry: { meter: meterProvider.getMeter('shop') } }
   */
  openTelemetry?: boolean | { meter?: Meter };
  /** Put before every metric name. @default 'redis_patterns_' */
  prefix?: string;
  /**
   * Also time every command of the module's connections and count their errors
   * (`redis_command_duration_seconds`, `redis_command_errors_total`): a promise reaction per
   * command, about 10% of throughput on a hot path at 64 callers, so off unless asked. @default false
   */
  commands?: boolean;
}
