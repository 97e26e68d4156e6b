import { Cluster, Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { REDIS_CLIENT, RedisConnections, RedisHealthIndicator, RedisKeys } from '../../lib/index.js';
import { ownSentinelServers } from '../support/own-redis-server.js';
import { clusterConnection, standaloneConnection, startContext } from '../support/testing-app.js';

describe('connections', () => {
  it('connects by URL', async () => {
    const { host, port } = inject('redis').standalone;
    const app = await startContext({ connection: { url: `redis://${host}:${port}/3` } });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await redis.set('db-check', '3');
    expect(await redis.client('INFO')).toMatch(/ db=3 /);
    expect(await redis.client('GETNAME')).toBe('nrp:default');
    await app.close();
  });

  it('connects by host and port, passing ioredis options through', async () => {
    const app = await startContext({ connection: { ...standaloneConnection(), db: 2, options: { connectionName: 'custom-name' } } });
    const redis = app.get<Redis>(REDIS_CLIENT);
    expect(await redis.client('GETNAME')).toBe('custom-name');
    expect(await redis.client('INFO')).toMatch(/ db=2 /);
    await app.close();
  });

  it('runs commands on keys in every slot range of a real 3-master cluster', async () => {
    const app = await startContext({ connection: clusterConnection() });
    const cluster = app.get<Cluster>(REDIS_CLIENT);
    const keys = app.get(RedisKeys);
    expect(cluster).toBeInstanceOf(Cluster);
    const names = Array.from({ length: 300 }, (_, i) => keys.key('slots', i));
    await Promise.all(names.map((key, i) => cluster.set(key, String(i))));
    expect(await Promise.all(names.map((key) => cluster.get(key)))).toEqual(names.map((_, i) => String(i)));
    // The keys really are spread over all three masters.
    const perMaster = await Promise.all(cluster.nodes('master').map(async (node) => (await node.keys(`${keys.prefix}slots:*`)).length));
    expect(perMaster).toHaveLength(3);
    expect(perMaster.every((count) => count > 0)).toBe(true);
    expect(perMaster.reduce((a, b) => a + b)).toBe(300);
    await app.close();
  });

  describe('through Sentinel', () => {
    const own = ownSentinelServers();

    it('finds the master through Sentinel (given as "host:port"), writes to it, and closes on shutdown', async () => {
      const app = await startContext({ connection: own.connection() });
      const redis = app.get<Redis>(REDIS_CLIENT);
      await redis.set('sentinel-key', 'on-master');
      const direct = new Redis(own.servers.master.address);
      expect(await direct.get('sentinel-key')).toBe('on-master');
      expect((await direct.info('replication')).includes('role:master')).toBe(true);
      await direct.quit();
      const health = await app.get(RedisHealthIndicator).isHealthy('redis');
      expect(health.redis).toMatchObject({ status: 'up', mode: 'sentinel' });
      await app.close();
      expect(redis.status).toBe('end');
    });
  });

  describe('an existing client', () => {
    it('is used as it is and left open at shutdown', async () => {
      const client = new Redis(inject('redis').standalone);
      expect(await client.ping()).toBe('PONG');
      const app = await startContext({ connection: { client } });
      expect(app.get(REDIS_CLIENT)).toBe(client);
      const listenersBefore = client.listenerCount('ready');
      const subscriber = app.get(RedisConnections).subscriber();
      await app.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
      await expect.poll(() => subscriber.status).toBe('end');
      expect(client.listenerCount('ready')).toBe(listenersBefore - 1);
      await client.quit();
    });

    it('may be a Cluster', async () => {
      const client = new Cluster(inject('redis').cluster);
      const app = await startContext({ connection: { client } });
      await app.get<Cluster>(REDIS_CLIENT).set('existing-cluster', '1');
      await app.close();
      expect(await client.get('existing-cluster')).toBe('1');
      await client.quit();
    });
  });

  describe('shutdown', () => {
    it.each([
      ['standalone', standaloneConnection],
      ['cluster', clusterConnection],
    ] as const)('closes what the module opened, after in-flight commands finish (%s)', async (_topology, connection) => {
      const app = await startContext({ connection: connection(), connections: { second: connection() } });
      const connections = app.get(RedisConnections);
      const main = connections.get();
      const second = connections.get('second');
      const subscriber = connections.subscriber();
      expect(connections.subscriber()).toBe(subscriber);
      // A command that takes 300ms on the server is in flight when shutdown starts.
      const inFlight = main.blpop(app.get(RedisKeys).key('never-pushed'), 0.3);
      await app.close();
      await expect(inFlight).resolves.toBeNull();
      await expect.poll(() => [main.status, second.status, subscriber.status]).toEqual(['end', 'end', 'end']);
    });
  });
});
