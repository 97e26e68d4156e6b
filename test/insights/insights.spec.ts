import type { INestApplicationContext } from '@nestjs/common';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheService,
  GeoService,
  isCluster,
  LeaderboardService,
  LockService,
  RateLimitService,
  RedisConnections,
  RedisHealthIndicator,
  RedisInsightsService,
  RedisKeys,
  type RedisClient,
  type RedisNodeSnapshot,
  type RedisServerSnapshot,
} from '../../lib/index.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { scanKeys } from '../support/scan.js';
import { startContext } from '../support/testing-app.js';

/** Every master of the client (the client itself when standalone). */
function mastersOf(client: RedisClient) {
  return isCluster(client) ? client.nodes('master') : [client];
}

function available(snapshot: RedisServerSnapshot): RedisNodeSnapshot[] {
  return snapshot.nodes.filter((node): node is RedisNodeSnapshot => node.available);
}

const sum = (nodes: RedisNodeSnapshot[], value: (node: RedisNodeSnapshot) => number) =>
  nodes.reduce((total, node) => total + value(node), 0);

/** The value of `name{labels}` in Prometheus text, whatever the order of the labels. */
function series(text: string, name: string, labels: Record<string, string>): number | undefined {
  const line = text
    .split('\n')
    .find(
      (candidate) =>
        candidate.startsWith(`${name}{`) && Object.entries(labels).every(([label, value]) => candidate.includes(`${label}="${value}"`)),
    );
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Servers of the suite's own: other suites' GETs would move the keyspace counters of shared ones. */
describe.each(ownRedisSetups([]))('RedisInsightsService on $topology', ({ topology, start }) => {
  const masters = topology === 'cluster' ? 3 : 1;
  const registry = new Registry();
  let redis: OwnRedis;
  let app: INestApplicationContext;
  let insights: RedisInsightsService;
  let client: RedisClient;
  let prefix: string;
  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, metrics: { prometheus: { registry } } });
    insights = app.get(RedisInsightsService);
    client = app.get(RedisConnections).get();
    prefix = app.get(RedisKeys).prefix;
  });
  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  it("reads each master's numbers from INFO, as numbers", async () => {
    await client.set(`${prefix}plain`, 'x');
    const snapshot = await insights.snapshot();
    expect(snapshot.connection).toBe('default');
    expect(snapshot.nodes.map((node) => node.node).sort()).toEqual(
      mastersOf(client)
        .map((node) => `127.0.0.1:${node.options.port}`)
        .sort(),
    );
    for (const node of available(snapshot)) {
      expect(node.role).toBe('master');
      expect(node.memory.usedBytes).toBeGreaterThan(100_000);
      expect(node.memory.peakBytes).toBeGreaterThanOrEqual(node.memory.usedBytes);
      expect(node.memory.maxBytes).toBe(0);
      expect(node.memory.fragmentationRatio).toBeGreaterThan(0);
      expect(node.connectedClients).toBeGreaterThanOrEqual(1);
      expect(node.opsPerSecond).toBeGreaterThanOrEqual(0);
      expect(node.keyspace.evictedKeys).toBe(0);
      expect(Number.isInteger(node.keyspace.expiredKeys)).toBe(true);
    }
    expect(available(snapshot)).toHaveLength(masters);
    expect(sum(available(snapshot), (node) => node.keyspace.keys)).toBe((await scanKeys(client, '*')).length);
  });

  it('counts keyspace hits and misses as the GETs made move them', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `${prefix}hit:${i}`);
    for (const key of keys) await client.set(key, 'v');
    const before = available(await insights.snapshot());
    for (const key of keys) await client.get(key);
    for (let i = 0; i < 4; i++) await client.get(`${prefix}missing:${i}`);
    const after = available(await insights.snapshot());
    expect(sum(after, (node) => node.keyspace.hits) - sum(before, (node) => node.keyspace.hits)).toBe(6);
    expect(sum(after, (node) => node.keyspace.misses) - sum(before, (node) => node.keyspace.misses)).toBe(4);
    for (const node of after)
      expect(node.keyspace.hitRatio).toBeCloseTo(node.keyspace.hits / (node.keyspace.hits + node.keyspace.misses), 10);
  });

  it('reports the snapshot as redis_* series per node, with the values snapshot() answered', async () => {
    const snapshot = await insights.snapshot();
    const text = await registry.metrics();
    for (const node of available(snapshot)) {
      const labels = { connection: 'default', node: node.node };
      expect(series(text, 'redis_patterns_redis_memory_used_bytes', labels)).toBe(node.memory.usedBytes);
      expect(series(text, 'redis_patterns_redis_ops_per_second', labels)).toBe(node.opsPerSecond);
      expect(series(text, 'redis_patterns_redis_connected_clients', labels)).toBe(node.connectedClients);
      expect(series(text, 'redis_patterns_redis_evicted_keys_total', labels)).toBe(node.keyspace.evictedKeys);
      expect(series(text, 'redis_patterns_redis_keyspace_hits_total', labels)).toBe(node.keyspace.hits);
      expect(series(text, 'redis_patterns_redis_keyspace_misses_total', labels)).toBe(node.keyspace.misses);
      expect(series(text, 'redis_patterns_redis_memory_fragmentation_ratio', labels)).toBe(node.memory.fragmentationRatio);
      const ratio = series(text, 'redis_patterns_redis_keyspace_hit_ratio', labels);
      if (node.keyspace.hitRatio === null) expect(ratio).toBeUndefined();
      else expect(ratio).toBeCloseTo(node.keyspace.hitRatio, 10);
    }
    expect(text).toContain('# TYPE redis_patterns_redis_evicted_keys_total counter');
    expect(text).toContain('# TYPE redis_patterns_redis_memory_used_bytes gauge');
  });

  it("adds a summary of the server to the health indicator's up reports", async () => {
    const result = await app.get(RedisHealthIndicator).isHealthy('redis');
    expect(result.redis).toMatchObject({
      status: 'up',
      connection: 'default',
      responseTimeMs: expect.any(Number),
      server: {
        available: true,
        nodes: masters,
        unavailableNodes: 0,
        memoryUsedBytes: expect.any(Number),
        connectedClients: expect.any(Number),
      },
    });
    expect((result.redis.server as { memoryUsedBytes: number }).memoryUsedBytes).toBeGreaterThan(100_000 * masters);
  });

  describe('with every command in the slow log', () => {
    let thresholds: string[];
    beforeAll(async () => {
      thresholds = await Promise.all(
        mastersOf(client).map(async (node) => ((await node.config('GET', 'slowlog-log-slower-than')) as string[])[1]),
      );
      await Promise.all(
        mastersOf(client).map((node) => node.config('SET', 'slowlog-log-slower-than', '0').then(() => node.slowlog('RESET'))),
      );
    });
    afterAll(() => Promise.all(mastersOf(client).map((node, i) => node.config('SET', 'slowlog-log-slower-than', thresholds[i]))));

    it('lists the last commands of each node without their arguments: the name, how many arguments, how many keys', async () => {
      const secretKey = `${prefix}user:ann@example.com`;
      await client.set(secretKey, 'her-secret-value');
      await client.sadd(`${prefix}many`, ...Array.from({ length: 40 }, (_, i) => `member-${i}`));
      await app.get(RateLimitService).consume('ann@example.com', { name: 'slow', limit: 5, window: '1m' });
      const log = await insights.slowlog(50);
      expect(log.nodes).toHaveLength(masters);
      const entries = log.nodes.flatMap((node) => (node.available ? node.entries : []));
      expect(entries).toContainEqual(expect.objectContaining({ command: 'SET', argumentCount: 2, keyCount: 1 }));
      // The slow log keeps 32 arguments: the rest is counted, and the keys cannot be told.
      expect(entries.find((entry) => entry.command === 'SADD')).toMatchObject({ argumentCount: 41, keyCount: null });
      expect(entries.find((entry) => entry.command === 'EVALSHA')).toMatchObject({ script: 'ratelimit', keyCount: 1 });
      expect(entries.find((entry) => entry.command === 'SLOWLOG RESET')).toMatchObject({ argumentCount: 0, keyCount: 0 });
      const set = entries.find((entry) => entry.command === 'SET' && entry.argumentCount === 2)!;
      expect(set.time.getTime()).toBeGreaterThan(Date.now() - 60_000);
      expect(set.durationMicros).toBeGreaterThanOrEqual(0);
      expect(set.client.address).toMatch(/^127\.0\.0\.1:\d+$/);
      const json = JSON.stringify(log);
      for (const secret of ['ann@example.com', 'her-secret-value', 'member-1']) expect(json).not.toContain(secret);
      // Newest first, at most n per node.
      for (const node of log.nodes)
        if (node.available)
          expect(node.entries.map((entry) => entry.id)).toEqual([...node.entries.map((entry) => entry.id)].sort((a, b) => b - a));
      expect((await insights.slowlog(2)).nodes.every((node) => node.available && node.entries.length === 2)).toBe(true);
    });
  });

  it('finds the largest keys under the prefix per feature, sized by MEMORY USAGE, and no key without a feature', async () => {
    const payload = 'x'.repeat(10_000);
    const cache = app.get(CacheService);
    for (let i = 0; i < 5; i++) await cache.set(`report:${i}`, payload);
    await app.get(LeaderboardService).board('insights').submit('ada', 10);
    await app.get(GeoService).index('shops').add('louvre', { longitude: 2.3376, latitude: 48.8606 });
    await app.get(RateLimitService).consume('bob', { name: 'big', limit: 5, window: '1m' });
    const lock = await app.get(LockService).acquire('big-keys');
    const scratch = [
      ...(await scanKeys(client, `${prefix}plain`)),
      ...(await scanKeys(client, `${prefix}hit:*`)),
      `${prefix}many`,
      `${prefix}user:ann@example.com`,
    ];
    for (const key of scratch) await client.del(key);
    await client.set(`${prefix}mine:1`, 'own key');

    const report = await insights.bigKeys({ sample: 1_000, top: 5 });
    const all = await scanKeys(client, `${prefix}*`);
    await lock.release();
    expect(report).toMatchObject({ connection: 'default', scanned: all.length, complete: true, unavailable: [] });
    const byFeature = Object.fromEntries(report.features.map((feature) => [feature.feature, feature]));
    expect(Object.keys(byFeature).sort()).toEqual(['cache', 'geo', 'leaderboards', 'locks', 'other', 'rate limiting']);
    expect(byFeature.other).toMatchObject({ keys: 1, largest: [{ key: `${prefix}mine:1` }] });
    expect(report.features[0].feature).toBe('cache');
    const largest = byFeature.cache.largest;
    expect(largest).toHaveLength(5);
    for (const big of largest) {
      expect(big.key).toMatch(new RegExp(`^${prefix}\\{c:report:\\d\\}$`));
      expect(big.bytes).toBeGreaterThan(10_000);
      expect(big.node).toMatch(/^127\.0\.0\.1:\d+$/);
    }
    expect(largest.map((big) => big.bytes)).toEqual([...largest.map((big) => big.bytes)].sort((a, b) => b - a));
    expect(byFeature.cache.bytes).toBeGreaterThan(50_000);
    expect(byFeature.locks.keys).toBe(2); // the lock and its fence
    if (topology === 'cluster') expect(new Set(largest.map((big) => big.node)).size).toBeGreaterThan(1);
  });

  it('looks at no more keys than the sample, and says the answer is not complete', async () => {
    const report = await insights.bigKeys({ sample: 3 });
    expect(report.scanned).toBe(3);
    expect(report.complete).toBe(false);
    expect(report.features.reduce((total, feature) => total + feature.keys, 0)).toBe(3);
  });

  it('refuses bad arguments, naming them', async () => {
    await expect(insights.bigKeys({ sample: 0 })).rejects.toThrow('Invalid option "sample": expected a positive integer, got 0.');
    await expect(insights.bigKeys({ top: 1.5 })).rejects.toThrow('Invalid option "top"');
    await expect(insights.slowlog(5_000)).rejects.toThrow('Invalid option "count": expected an integer from 1 to 1000');
    await expect(insights.snapshot({ connection: 'nope' })).rejects.toThrow('No Redis connection named "nope"');
  });
});
