import type { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError, REDIS_CLIENT, RedisConnections, RedisKeys } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

type Client = Redis | Cluster;

/** The ioredis option on the client itself: a Cluster's own options, a server connection's otherwise. */
function autoPipeliningOf(client: Client): boolean | undefined {
  return client.options.enableAutoPipelining;
}

describe.each(topologies)('autoPipelining ($topology)', ({ topology, connection }) => {
  it('is off by default', async () => {
    const app = await startContext({ connection: connection() });
    const redis = app.get<Client>(REDIS_CLIENT);
    expect(autoPipeliningOf(redis)).toBe(false);
    await app.close();
  });

  it('reaches ioredis when on: commands of one tick are queued as one pipeline, and every reply is right', async () => {
    const app = await startContext({ connection: connection(), autoPipelining: true });
    const redis = app.get<Client>(REDIS_CLIENT);
    const keys = app.get(RedisKeys);
    expect(autoPipeliningOf(redis)).toBe(true);
    if (topology === 'cluster') {
      // The Cluster pipelines per node itself; its node connections are not pipelined twice.
      expect((redis as Cluster).options.redisOptions?.enableAutoPipelining).toBe(false);
    }
    const names = Array.from({ length: 200 }, (_, i) => keys.key('ap', i));
    await Promise.all(names.map((key, i) => redis.set(key, String(i))));
    const reads = names.map((key) => redis.get(key));
    // Issued in one tick: they wait in ioredis's auto-pipeline queue rather than being written one by one.
    expect(redis.autoPipelineQueueSize).toBeGreaterThan(0);
    expect(await Promise.all(reads)).toEqual(names.map((_, i) => String(i)));
    await app.close();
  });

  it('is not passed to subscriber connections', async () => {
    const app = await startContext({ connection: connection(), autoPipelining: true });
    const subscriber = app.get(RedisConnections).subscriber();
    expect(autoPipeliningOf(subscriber)).toBe(false);
    await app.close();
  });
});

describe('autoPipelining validation', () => {
  it('must be true or false', async () => {
    await expect(startContext({ connection: { host: '127.0.0.1' }, autoPipelining: 'yes' as unknown as boolean })).rejects.toThrow(
      InvalidOptionError,
    );
    await expect(startContext({ connection: { host: '127.0.0.1' }, autoPipelining: 'yes' as unknown as boolean })).rejects.toThrow(
      /"autoPipelining": expected true or false/,
    );
  });
});
