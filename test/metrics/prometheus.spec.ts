import type { INestApplicationContext } from '@nestjs/common';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, LockService, RateLimitService, RedisMetrics } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';
import { cacheTraffic, lockTraffic, rateLimitTraffic } from './traffic.js';

/** The value of one series in Prometheus text (`name{labels} value`), or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.each(topologies)('Prometheus metrics on $topology', ({ connection }) => {
  const registry = new Registry();
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), cache: { l1: { ttl: '1m' } }, metrics: { prometheus: { registry } } });
  });
  afterAll(() => app?.close());

  it("counts the cache's lookups by tier, its loader calls and their durations, the numbers stats() returns", async () => {
    await cacheTraffic(app);
    const text = await registry.metrics();
    const stats = app.get(CacheService).stats();
    for (const tier of ['redis', 'l1'] as const) {
      expect(sample(text, `redis_patterns_cache_requests_total{tier="${tier}",result="hit"}`)).toBe(stats[tier].hits);
      expect(sample(text, `redis_patterns_cache_requests_total{tier="${tier}",result="miss"}`)).toBe(stats[tier].misses);
    }
    expect(stats.redis.hits).toBeGreaterThanOrEqual(1);
    expect(stats.redis.misses).toBe(2);
    expect(sample(text, 'redis_patterns_cache_loader_calls_total')).toBe(2);
    expect(sample(text, 'redis_patterns_cache_loader_duration_seconds_count{outcome="ok"}')).toBe(1);
    expect(sample(text, 'redis_patterns_cache_loader_duration_seconds_count{outcome="error"}')).toBe(1);
    expect(sample(text, 'redis_patterns_cache_l1_entries')).toBeGreaterThanOrEqual(1);
    expect(text).toContain('# HELP redis_patterns_cache_requests_total Cache lookups by tier');
  });

  it('counts rate-limit decisions by policy and outcome', async () => {
    await rateLimitTraffic(app, 'metrics-api', `caller-${connection.name}`);
    const text = await registry.metrics();
    expect(sample(text, 'redis_patterns_ratelimit_decisions_total{policy="metrics-api",outcome="allowed"}')).toBe(2);
    expect(sample(text, 'redis_patterns_ratelimit_decisions_total{policy="metrics-api",outcome="limited"}')).toBe(1);
  });

  it('counts lock acquisitions by outcome, times the waits, and gauges the locks held', async () => {
    const lock = await lockTraffic(app, 'metrics-lock');
    let text = await registry.metrics();
    expect(sample(text, 'redis_patterns_lock_acquisitions_total{outcome="acquired"}')).toBe(1);
    expect(sample(text, 'redis_patterns_lock_acquisitions_total{outcome="held"}')).toBe(1);
    expect(sample(text, 'redis_patterns_lock_acquisitions_total{outcome="timeout"}')).toBe(1);
    expect(sample(text, 'redis_patterns_locks_held')).toBe(1);
    // The timed-out wait took at least its 60 ms: it is not in the 50 ms bucket.
    expect(sample(text, 'redis_patterns_lock_wait_seconds_bucket{le="0.05",outcome="timeout"}')).toBe(0);
    expect(sample(text, 'redis_patterns_lock_wait_seconds_bucket{le="+Inf",outcome="timeout"}')).toBe(1);
    await lock.release();
    text = await registry.metrics();
    expect(sample(text, 'redis_patterns_locks_held')).toBe(0);
    expect(sample(text, 'redis_patterns_lock_hold_seconds_count{outcome="released"}')).toBe(1);
    // A lease that runs out unrenewed is lost while held.
    const short = await app.get(LockService).acquire('metrics-short', { ttl: '50ms' });
    await expect.poll(() => short.lost).toBe(true);
    text = await registry.metrics();
    expect(sample(text, 'redis_patterns_locks_lost_total')).toBe(1);
    expect(sample(text, 'redis_patterns_lock_hold_seconds_count{outcome="lost"}')).toBe(1);
    expect(sample(text, 'redis_patterns_locks_held')).toBe(0);
  });
});

describe('the metrics section', () => {
  it('uses its prefix, and takes its metrics out of the registry when the app closes', async () => {
    const registry = new Registry();
    const app = await startContext({
      connection: topologies[0].connection(),
      metrics: { prometheus: { registry }, prefix: 'shop_redis_' },
    });
    await app.get(CacheService).set('k', 1);
    expect(sample(await registry.metrics(), 'shop_redis_cache_loader_calls_total')).toBe(0);
    expect(registry.getSingleMetric('shop_redis_lock_wait_seconds')).toBeDefined();
    await app.close();
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('gives two apps in one process their own registries', async () => {
    const registries = [new Registry(), new Registry()];
    const apps = await Promise.all(
      registries.map((registry) => startContext({ connection: topologies[0].connection(), metrics: { prometheus: { registry } } })),
    );
    await apps[0].get(RateLimitService).consume('one', { name: 'only-first', limit: 5, window: '1m' });
    const [first, second] = await Promise.all(registries.map((registry) => registry.metrics()));
    expect(sample(first, 'redis_patterns_ratelimit_decisions_total{policy="only-first",outcome="allowed"}')).toBe(1);
    expect(second).not.toContain('only-first');
    await Promise.all(apps.map((app) => app.close()));
  });

  it('without an exporter, histograms are inactive: nothing is timed', async () => {
    const app = await startContext({ connection: topologies[0].connection() });
    const histogram = app.get(RedisMetrics).histogram({ name: 'x_seconds', help: 'x', labelNames: [], buckets: [1] });
    expect(histogram.active).toBe(false);
    await app.close();
  });

  it.each([
    [{ prefix: '1bad' }, 'Invalid option "metrics.prefix": expected letters, digits, _ and : not starting with a digit'],
    [{ prometheus: { registry: {} } }, 'Invalid option "metrics.prometheus.registry": expected a prom-client Registry'],
    [{ prometheus: 'yes' }, 'Invalid option "metrics.prometheus": expected an object, got "yes"'],
    [
      { exporter: 'otel' },
      'Invalid option "metrics.exporter": expected one of the known options (prometheus, openTelemetry, prefix, commands)',
    ],
    [{ commands: 'yes' }, 'Invalid option "metrics.commands": expected true or false, got "yes"'],
  ])('refuses %j at startup, naming the option', async (metrics, message) => {
    await expect(startContext({ connection: topologies[0].connection(), metrics: metrics as never })).rejects.toThrow(message);
  });
});
