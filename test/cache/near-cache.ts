import type { INestApplicationContext } from '@nestjs/common';
import { Cluster, Redis } from 'ioredis';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, expect, vi } from 'vitest';
import { CacheService, type CacheOptions, type RedisConnectionOptions } from '../../lib/index.js';
import { RedisTestCluster, RedisTestServer } from '../support/redis-server.js';
import { startContext, uniquePrefix } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';

/** L1 kept by Redis's tracking, with a short heartbeat so a stall shows within a second. */
export const TRACKING: CacheOptions = { l1: { invalidation: 'tracking', ttl: '1m', default: true, heartbeat: '200ms' } };

/** What one instance answers to a read: the value, and whether L1 answered it. */
export interface Peek {
  value: unknown;
  fromL1: boolean;
}

/** A cache user: in this process, or the worker in a child process. */
export interface Instance {
  name: string;
  peek(key: string): Promise<Peek>;
  flushes(): Promise<number>;
}

/** Redis of the suite's own (it is flushed, reconfigured, failed over), with a plain client that writes behind the library's back. */
export interface OwnTopology {
  connection: RedisConnectionOptions;
  plain: Redis | Cluster;
  /** Every master: a client to each (the server itself when standalone). */
  masters(): Redis[];
  cluster?: RedisTestCluster;
  destroy(): Promise<void>;
}

/** A standalone server, or a 3-master Cluster with `replicasPerMaster` replicas each. */
export async function startOwnTopology(topology: 'standalone' | 'cluster', replicasPerMaster = 0): Promise<OwnTopology> {
  if (topology === 'standalone') {
    const server = await RedisTestServer.start();
    const plain = new Redis(server.address);
    return {
      connection: server.address,
      plain,
      masters: () => [plain],
      destroy: async () => (plain.disconnect(), await server.destroy()),
    };
  }
  const cluster = await RedisTestCluster.start({ masters: 3, replicasPerMaster });
  const plain = new Cluster(cluster.nodes);
  plain.on('error', () => undefined); // a master is killed on purpose
  await plain.ping();
  return {
    connection: cluster.connection,
    plain,
    cluster,
    masters: () => plain.nodes('master'),
    destroy: async () => (plain.disconnect(), await cluster.destroy()),
  };
}

/** Three app instances sharing a key prefix. */
export interface Instances {
  keyPrefix: string;
  /** The two in this process. */
  apps: INestApplicationContext[];
  worker: WorkerProcess;
  /** All three, the one in the child process last. */
  all: Instance[];
  close(): Promise<void>;
}

/**
 * Redis of the suite's own and three instances with tracking on it (one in a child process),
 * started before the suite's tests and stopped after them. Warnings (a killed connection, a
 * failover) are silenced. Read `.redis` and `.instances` inside tests; `key(name)` is the Redis
 * key of the cache entry `name`.
 */
export function trackedInstances(
  topology: 'standalone' | 'cluster',
  replicasPerMaster = 0,
): { readonly redis: OwnTopology; readonly instances: Instances; key(name: string): string } {
  const holder = {
    redis: undefined as unknown as OwnTopology,
    instances: undefined as unknown as Instances,
    key: (name: string) => valueKey(holder.instances.keyPrefix, name),
  };
  beforeAll(async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    holder.redis = await startOwnTopology(topology, replicasPerMaster);
    holder.instances = await startInstances(holder.redis.connection, TRACKING);
  }, 180_000);
  afterAll(async () => {
    await holder.instances?.close();
    await holder.redis?.destroy();
    vi.restoreAllMocks();
  });
  return holder;
}

/** Two instances in this process and one in a child process, sharing a key prefix. */
export async function startInstances(connection: RedisConnectionOptions, cache: CacheOptions): Promise<Instances> {
  const keyPrefix = uniquePrefix();
  const [apps, worker] = await Promise.all([
    Promise.all([1, 2].map(() => startContext({ connection, keyPrefix, reconnect: { minDelay: '20ms', maxDelay: '200ms' }, cache }))),
    WorkerProcess.start('cache-worker', { connection, keyPrefix, cache }),
  ]);
  const local = apps.map((app, i): Instance => ({
    name: `instance ${i + 1}`,
    peek: async (key) => {
      const cacheService = app.get(CacheService);
      const hits = cacheService.stats().l1.hits;
      const value = await cacheService.get(key, { l1: true });
      return { value, fromL1: cacheService.stats().l1.hits > hits };
    },
    flushes: async () => app.get(CacheService).stats().l1.flushes,
  }));
  const child: Instance = {
    name: 'the child process',
    peek: (key) => worker.request<Peek>({ op: 'peek', key }),
    flushes: async () => (await worker.request<{ l1: { flushes: number } }>({ op: 'stats' })).l1.flushes,
  };
  return {
    keyPrefix,
    apps,
    worker,
    all: [...local, child],
    async close() {
      worker.endInput();
      await worker.exited;
      await Promise.all(apps.map((app) => app.close()));
    },
  };
}

/** The Redis key of a cache entry, and what the library stores there for `value` (fresh for a minute). */
export const valueKey = (keyPrefix: string, key: string) => `${keyPrefix}{c:${key}}`;
export const storedEntry = (value: unknown) => `${Date.now() + 60_000}|${JSON.stringify(value)}`;

/** Waits until every instance answers `key` from its L1 with `value`. */
export async function primed(instances: readonly Instance[], key: string, value: unknown): Promise<void> {
  for (const instance of instances)
    await expect
      .poll(() => instance.peek(key), { timeout: 10_000, message: `${instance.name} to hold ${key} in L1` })
      .toEqual({
        value,
        fromL1: true,
      });
}

/**
 * Waits until no instance answers `key` with anything but `value`: the write reached every L1.
 * The deadline is generous (a loaded CI machine); the bound measured is in the README.
 */
export async function allSee(instances: readonly Instance[], key: string, value: unknown): Promise<void> {
  for (const instance of instances)
    await expect
      .poll(async () => (await instance.peek(key)).value, { timeout: 10_000, message: `${instance.name} to see the new ${key}` })
      .toEqual(value);
}
