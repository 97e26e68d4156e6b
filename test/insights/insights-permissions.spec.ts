import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CacheService,
  isCluster,
  RedisConnections,
  RedisHealthIndicator,
  RedisInsightsService,
  type RedisConnectionOptions,
} from '../../lib/index.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { startContext, uniquePrefix } from '../support/testing-app.js';

const PASSWORD = 'insights-secret';

/** The suite's connection, logged in as `username` (no ready check: ioredis's uses INFO). */
function asUser(connection: RedisConnectionOptions, username: string): RedisConnectionOptions {
  const login = { username, password: PASSWORD, enableReadyCheck: false };
  if ('cluster' in connection) return { cluster: { nodes: connection.cluster.nodes, options: { redisOptions: login } } };
  return { ...connection, options: login };
}

/** The lines logged about a refused command. */
function refusalLines(warn: { mock: { calls: unknown[][] } }, command: string): string[] {
  return warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes(`refuses ${command},`));
}

/** Real ACL users on the suite's own servers (on a Cluster, on every master), not mocks. */
describe.each(ownRedisSetups([]))('RedisInsightsService for an ACL user on $topology', ({ topology, start }) => {
  const masters = topology === 'cluster' ? 3 : 1;
  let redis: OwnRedis;
  let admin: INestApplicationContext;
  const apps: INestApplicationContext[] = [];
  beforeAll(async () => {
    redis = await start();
    admin = await startContext({ connection: redis.connection });
    const client = admin.get(RedisConnections).get();
    const rules = { 'no-insights': ['-info', '-slowlog', '-memory'], 'no-getkeys': ['-command'] };
    for (const node of isCluster(client) ? client.nodes('master') : [client])
      for (const [user, denied] of Object.entries(rules))
        await node.acl('SETUSER', user, 'on', `>${PASSWORD}`, '~*', '&*', '+@all', ...denied);
  });
  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
    await admin?.close();
    await redis?.destroy();
  });
  afterEach(() => vi.restoreAllMocks());

  async function startAs(username: string): Promise<INestApplicationContext> {
    const app = await startContext({ connection: asUser(redis.connection as RedisConnectionOptions, username), keyPrefix: uniquePrefix() });
    apps.push(app);
    return app;
  }

  it('without INFO, SLOWLOG and MEMORY: answers what it can, marks the rest unavailable, and says so once per command', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startAs('no-insights');
    const insights = app.get(RedisInsightsService);
    for (let i = 0; i < 4; i++) await app.get(CacheService).set(`k${i}`, 'x'.repeat(1_000));

    for (let call = 0; call < 2; call++) {
      const snapshot = await insights.snapshot();
      expect(snapshot.nodes).toHaveLength(masters);
      for (const node of snapshot.nodes)
        expect(node).toEqual({
          node: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          available: false,
          reason: 'INFO is not allowed for this user (NOPERM)',
        });
      const slowlog = await insights.slowlog(5);
      for (const node of slowlog.nodes)
        expect(node).toMatchObject({ available: false, reason: 'SLOWLOG is not allowed for this user (NOPERM)' });
    }

    const report = await insights.bigKeys();
    expect(report).toMatchObject({ complete: true, features: [{ feature: 'cache', bytes: 0, largest: [] }] });
    expect(report.features[0].keys).toBeGreaterThanOrEqual(4);
    expect(report.unavailable).toHaveLength(masters);
    for (const part of report.unavailable)
      expect(part).toMatchObject({ command: 'MEMORY', reason: 'MEMORY is not allowed for this user (NOPERM)' });

    const health = await app.get(RedisHealthIndicator).isHealthy('redis');
    expect(health.redis).toMatchObject({
      status: 'up',
      server: { available: false, nodes: masters, reason: 'INFO is not allowed for this user (NOPERM)' },
    });

    for (const command of ['INFO', 'SLOWLOG', 'MEMORY']) expect(refusalLines(warn, command)).toHaveLength(1);
    expect(refusalLines(warn, 'INFO')[0]).toBe(
      'Redis connection "default" refuses INFO, not allowed for this user (NOPERM): snapshot() reports its nodes as unavailable, ' +
        'and the gauges and health summary have no numbers. Grant the user +info to have it.',
    );
    expect(refusalLines(warn, 'SCAN')).toEqual([]);
  });

  it('without COMMAND: slow log entries without key counts, said once', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const client = admin.get(RedisConnections).get();
    const nodes = isCluster(client) ? client.nodes('master') : [client];
    await Promise.all(nodes.map((node) => node.config('SET', 'slowlog-log-slower-than', '0')));
    try {
      const app = await startAs('no-getkeys');
      await app.get(RedisConnections).get().set('some-key', 'v');
      for (let call = 0; call < 2; call++) {
        const entries = (await app.get(RedisInsightsService).slowlog(128)).nodes.flatMap((node) => (node.available ? node.entries : []));
        expect(entries).toContainEqual(expect.objectContaining({ command: 'SET', argumentCount: 2, keyCount: null }));
        expect(entries.filter((entry) => (entry.keyCount ?? 0) > 0)).toEqual([]);
      }
      expect(refusalLines(warn, 'COMMAND')).toHaveLength(1);
    } finally {
      await Promise.all(nodes.map((node) => node.config('SET', 'slowlog-log-slower-than', '10000')));
    }
  });
});
