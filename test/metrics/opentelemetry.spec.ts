import { isDeepStrictEqual } from 'node:util';
import type { INestApplicationContext } from '@nestjs/common';
import { metrics as otelMetrics, type Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIBRARY_NAME, LIBRARY_VERSION } from '../../lib/core/core.constants.js';
import { CacheService, DURATION_BUCKETS, RedisTracing, type MetricsOptions } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';
import { cacheTraffic, lockTraffic, rateLimitTraffic } from './traffic.js';

/** A reader the test collects from when it wants: what a Prometheus scrape or a periodic export would read. */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** A meter of its own, and a function that collects what it holds, by metric name. */
function testMeter(temporality = AggregationTemporality.CUMULATIVE) {
  const reader = new TestReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({ readers: [reader] });
  return { reader, provider, meter: provider.getMeter('test'), collect: () => collectFrom(reader) };
}

async function collectFrom(reader: MetricReader): Promise<{ resource: ResourceMetrics; byName: Map<string, MetricData> }> {
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  const all = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics);
  return { resource: resourceMetrics, byName: new Map(all.map((metric) => [metric.descriptor.name, metric])) };
}

/** The value of the data point of `name` with exactly `attributes`, or undefined when there is none. */
function point<T = number>(byName: Map<string, MetricData>, name: string, attributes: Attributes = {}): T | undefined {
  const points = byName.get(name)?.dataPoints as DataPoint<T>[] | undefined;
  return points?.find((candidate) => isDeepStrictEqual({ ...candidate.attributes }, attributes))?.value;
}

describe.each(topologies)('OpenTelemetry metrics on $topology', ({ connection }) => {
  const { meter, collect, provider } = testMeter();
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), cache: { l1: { ttl: '1m' } }, metrics: { openTelemetry: { meter } } });
  });
  afterAll(async () => {
    await app?.close();
    await provider.shutdown();
  });

  it("reports the cache's lookups by tier, its loader calls and their durations, the numbers stats() returns", async () => {
    await cacheTraffic(app);
    const { byName } = await collect();
    const stats = app.get(CacheService).stats();
    for (const tier of ['redis', 'l1'] as const) {
      expect(point(byName, 'redis_patterns_cache_requests', { tier, result: 'hit' })).toBe(stats[tier].hits);
      expect(point(byName, 'redis_patterns_cache_requests', { tier, result: 'miss' })).toBe(stats[tier].misses);
    }
    expect(stats.redis.misses).toBe(2);
    expect(point(byName, 'redis_patterns_cache_loader_calls')).toBe(2);
    expect(byName.get('redis_patterns_cache_requests')).toMatchObject({
      dataPointType: DataPointType.SUM,
      isMonotonic: true,
      descriptor: { description: 'Cache lookups by tier (l1, redis) and result (hit, miss)' },
    });
    const durations = byName.get('redis_patterns_cache_loader_duration');
    expect(durations).toMatchObject({ dataPointType: DataPointType.HISTOGRAM, descriptor: { unit: 's' } });
    expect(point<Histogram>(byName, 'redis_patterns_cache_loader_duration', { outcome: 'ok' })?.count).toBe(1);
    expect(point<Histogram>(byName, 'redis_patterns_cache_loader_duration', { outcome: 'error' })?.count).toBe(1);
    expect(byName.get('redis_patterns_cache_l1_entries')?.dataPointType).toBe(DataPointType.GAUGE);
    expect(point(byName, 'redis_patterns_cache_l1_entries')).toBeGreaterThanOrEqual(1);
  });

  it('reports rate-limit decisions by policy and outcome', async () => {
    await rateLimitTraffic(app, 'otel-api', `caller-${connection.name}`);
    const { byName } = await collect();
    expect(point(byName, 'redis_patterns_ratelimit_decisions', { policy: 'otel-api', outcome: 'allowed' })).toBe(2);
    expect(point(byName, 'redis_patterns_ratelimit_decisions', { policy: 'otel-api', outcome: 'limited' })).toBe(1);
  });

  it('reports lock acquisitions by outcome, the waits in the library buckets, and the locks held', async () => {
    const lock = await lockTraffic(app, 'otel-lock');
    let { byName } = await collect();
    for (const outcome of ['acquired', 'held', 'timeout']) expect(point(byName, 'redis_patterns_lock_acquisitions', { outcome })).toBe(1);
    expect(point(byName, 'redis_patterns_locks_held')).toBe(1);
    const waited = point<Histogram>(byName, 'redis_patterns_lock_wait', { outcome: 'timeout' });
    expect(waited?.count).toBe(1);
    expect(waited?.min).toBeGreaterThanOrEqual(0.06);
    expect(waited?.buckets.boundaries).toEqual(DURATION_BUCKETS);
    await lock.release();
    ({ byName } = await collect());
    expect(point(byName, 'redis_patterns_locks_held')).toBe(0);
  });
});

describe('the metrics section with OpenTelemetry', () => {
  afterAll(() => otelMetrics.disable());

  it('by default reports to the global MeterProvider, with the meter of the library and its version', async () => {
    const reader = new TestReader();
    expect(otelMetrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))).toBe(true);
    const app = await startContext({ connection: topologies[0].connection(), metrics: { openTelemetry: true } });
    await app.get(CacheService).getOrSet('k', () => 1);
    const { resource, byName } = await collectFrom(reader);
    expect(resource.scopeMetrics.map((scope) => scope.scope)).toEqual([
      { name: LIBRARY_NAME, version: LIBRARY_VERSION, schemaUrl: undefined },
    ]);
    expect(point(byName, 'redis_patterns_cache_loader_calls')).toBe(1);
    await app.close();
  });

  it('uses the prefix, and stops reporting when the app closes', async () => {
    // Each collection reports what was observed since the last: nothing, once the callbacks are gone.
    const { meter, collect, provider } = testMeter(AggregationTemporality.DELTA);
    const app = await startContext({
      connection: topologies[0].connection(),
      metrics: { openTelemetry: { meter }, prefix: 'shop_redis_' },
    });
    expect(point((await collect()).byName, 'shop_redis_cache_loader_calls')).toBe(0);
    await app.close();
    expect(point((await collect()).byName, 'shop_redis_cache_loader_calls')).toBeUndefined();
    await provider.shutdown();
  });

  it('goes beside Prometheus: both exporters get every metric', async () => {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const { meter, collect, provider } = testMeter();
    const app = await startContext({
      connection: topologies[0].connection(),
      metrics: { prometheus: { registry }, openTelemetry: { meter } },
    });
    await app.get(CacheService).getOrSet('k', () => 1);
    expect(point((await collect()).byName, 'redis_patterns_cache_loader_calls')).toBe(1);
    expect(await registry.metrics()).toContain('redis_patterns_cache_loader_calls_total 1');
    await app.close();
    await provider.shutdown();
  });

  it('without it, nothing is traced', async () => {
    const app = await startContext({
      connection: topologies[0].connection(),
      metrics: { prometheus: { registry: new (await import('prom-client')).Registry() } },
    });
    expect(app.get(RedisTracing).active).toBe(false);
    await app.close();
  });

  it.each([
    [
      { openTelemetry: { meter: {} } },
      `Invalid option "metrics.openTelemetry.meter": expected an OpenTelemetry Meter (metrics.getMeter() of '@opentelemetry/api'), got an object (Object)`,
    ],
    [{ openTelemetry: { meter: 'shop' } }, 'Invalid option "metrics.openTelemetry.meter": expected an OpenTelemetry Meter'],
    [
      { openTelemetry: { tracer: {} } },
      'Invalid option "metrics.openTelemetry.tracer": expected one of the known options (meter), got an unknown option',
    ],
    [{ openTelemetry: 'yes' }, 'Invalid option "metrics.openTelemetry": expected an object, got "yes"'],
    [
      { exporter: 'otel' },
      'Invalid option "metrics.exporter": expected one of the known options (prometheus, openTelemetry, prefix, commands)',
    ],
  ])('refuses %j at startup, naming the option', async (metrics, message) => {
    await expect(startContext({ connection: topologies[0].connection(), metrics: metrics as MetricsOptions })).rejects.toThrow(message);
  });
});
