import type { Cluster, Redis } from 'ioredis';

/** A client of any kind the module supports. */
export type RedisClient = Redis | Cluster;

/**
 * Whether the client is an ioredis Cluster. Reads ioredis's own flag rather than `instanceof`, so
 * a client made by another copy of ioredis is recognised too.
 */
export function isCluster(client: RedisClient): client is Cluster {
  return client.isCluster === true;
}

/** The major version of the Redis server (on a Cluster, of its first master). */
export async function redisMajorVersion(client: RedisClient): Promise<number> {
  const [node] = masterNodes(client);
  if (!node) throw new Error('the Cluster is not connected yet');
  const info = await node.info('server');
  return Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
}

/** Resolves once the client is ready (at once if it is). Never times out: use it only where waiting is the point. */
export function untilReady(client: RedisClient): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => client.once('ready', () => resolve()));
}

/** Every master of a Cluster, or the client itself. */
export function masterNodes(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}
