import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { trace } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { CacheService, LockService, RateLimitService, RedisPatternsModule, type RedisPatternsModuleOptions } from '../lib/index.js';
import { KEY_COUNT } from './core.scenarios.js';
import type { Scenario } from './harness.js';

/** A reader nobody collects from during the run, as a Prometheus registry nobody scrapes. */
class IdleReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/**
 * What reporting metrics costs (`BENCH_FILTER=metrics`): the same calls on three apps, one without
 * a `metrics` section (the baseline of each group), one exporting to a prom-client registry, and
 * one to OpenTelemetry (a MeterProvider of the SDK, and its tracer provider registered globally,
 * batching the spans to an exporter that drops them; no context manager, which would slow every
 * other group of the run): a cache hit from Redis (`getOrSet`), a rate-limit decision, and a lock
 * acquire + release (whose wait is timed while an exporter listens, and in a span with OpenTelemetry).
 */
export async function metricsScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const start = async (options: Partial<RedisPatternsModuleOptions>) => {
    @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-metrics:', ...options })] })
    class MetricsBenchModule {}
    return NestFactory.createApplicationContext(MetricsBenchModule, { logger: false });
  };
  const meterProvider = new MeterProvider({ readers: [new IdleReader()] });
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor({ export: (_spans, done) => done({ code: 0 }), shutdown: async () => undefined })],
  });
  trace.setGlobalTracerProvider(tracerProvider);
  const apps: INestApplicationContext[] = [
    await start({}),
    await start({ metrics: { prometheus: { registry: new Registry() } } }),
    await start({ metrics: { openTelemetry: { meter: meterProvider.getMeter('bench') } } }),
  ];
  const [off, prometheus, openTelemetry] = apps;
  const keyOf = (i: number) => `m:${i % KEY_COUNT}`;
  await Promise.all(Array.from({ length: KEY_COUNT }, (_, i) => off.get(CacheService).set(keyOf(i), { i }, { ttl: '1h' })));
  const missing = () => Promise.reject(new Error('a miss in a hit benchmark'));
  const policy = { name: 'bench', limit: 1_000_000_000, window: '1h' } as const;
  const variants = [
    { label: 'metrics off', app: off, baseline: true },
    { label: 'Prometheus on', app: prometheus, baseline: false },
    { label: 'OpenTelemetry on', app: openTelemetry, baseline: false },
  ];
  const scenarios: Scenario[] = variants.flatMap(({ label, app, baseline }) => [
    {
      group: 'metrics: cache hit',
      name: `CacheService.getOrSet, ${label}`,
      baseline,
      run: (i) => app.get(CacheService).getOrSet(keyOf(i), missing),
    },
    {
      group: 'metrics: rate limit',
      name: `RateLimitService.consume, ${label}`,
      baseline,
      run: (i) => app.get(RateLimitService).consume(`c${i % KEY_COUNT}`, policy),
    },
    {
      group: 'metrics: lock',
      name: `LockService.acquire + release, ${label}`,
      baseline,
      run: async (i) => (await app.get(LockService).acquire(`metrics-${label}-${i}`)).release(),
    },
  ]);
  const close = async () => {
    await Promise.all(apps.map((app) => app.close()));
    await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
    trace.disable();
  };
  return { scenarios, close };
}
