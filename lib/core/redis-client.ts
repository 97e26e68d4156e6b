import type { Cluster, Redis } from 'ioredis';
import { RedisPatternsError } from './errors.js';

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
  const info = await node.info('server');
  return Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
}

/** One promise per client that is not ready yet, however many wait for it: one 'ready' listener each. */
const readiness = new WeakMap<RedisClient, Promise<void>>();

/**
 * Resolves once the client is ready (at once if it is), or once `signal` aborts. Never times out:
 * use it only where waiting is the point.
 */
export function untilReady(client: RedisClient, signal?: AbortSignal): Promise<void> {
  if (client.status === 'ready' || signal?.aborted) return Promise.resolve();
  let ready = readiness.get(client);
  if (!ready) {
    ready = new Promise<void>((resolve) => client.once('ready', () => resolve())).finally(() => readiness.delete(client));
    readiness.set(client, ready);
  }
  if (!signal) return ready;
  return new Promise((resolve) => {
    const aborted = () => resolve();
    signal.addEventListener('abort', aborted, { once: true });
    void ready.then(() => {
      signal.removeEventListener('abort', aborted);
      resolve();
    });
  });
}

/** A Cluster that knows no master (it has not connected, or lost every node), or not the master of a slot. An outage ('disconnected'). */
export class ClusterNotConnectedError extends RedisPatternsError {
  constructor(detail = 'it knows no master node') {
    super(`The Redis Cluster cannot be reached: ${detail}.`);
  }
}

/**
 * Every master of a Cluster, or the client itself, for work that must reach every node (SCAN).
 * @throws ClusterNotConnectedError when a Cluster knows no master, rather than doing nothing.
 */
export function masterNodes(client: RedisClient): Redis[] {
  if (!isCluster(client)) return [client];
  const masters = client.nodes('master');
  if (masters.length === 0) throw new ClusterNotConnectedError();
  return masters;
}
