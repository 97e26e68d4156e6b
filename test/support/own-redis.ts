import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import type { RedisPatternsModuleOptions } from '../../lib/index.js';
import { RedisTestCluster, RedisTestServer } from './redis-server.js';

/** Redis of a suite's own, which its tests may stop, pause or reconfigure without disturbing other suites. */
export interface OwnRedis {
  connection: RedisPatternsModuleOptions['connection'];
  /** The server that holds `key` (on a Cluster, the master of its slot). */
  serverOf(key: string): Promise<RedisTestServer>;
  destroy(): Promise<void>;
}

/** A standalone server and a 3-master Cluster, each started with the extra `--name value` arguments. */
export function ownRedisSetups(args: readonly string[]): { topology: string; start: () => Promise<OwnRedis> }[] {
  return [
    {
      topology: 'standalone',
      start: async () => {
        const server = await RedisTestServer.start({ args });
        return { connection: server.address, serverOf: async () => server, destroy: () => server.destroy() };
      },
    },
    {
      topology: 'cluster',
      start: async () => {
        const cluster = await RedisTestCluster.start({ masters: 3, args });
        return {
          connection: { cluster: { nodes: cluster.nodes } },
          serverOf: (key) => masterOf(cluster, key),
          destroy: () => cluster.destroy(),
        };
      },
    },
  ];
}

async function masterOf(cluster: RedisTestCluster, key: string): Promise<RedisTestServer> {
  const probe = new Redis({ ...cluster.servers[0].address, maxRetriesPerRequest: 1 });
  try {
    const slots = (await probe.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const slot = calculateSlot(key);
    const port = slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
    return cluster.servers.find((server) => server.port === port)!;
  } finally {
    probe.disconnect();
  }
}

/** Clients of the test's own, one per server, to look at it directly (they ride out the server's outages). */
export class Observers {
  private readonly clients = new Map<number, Redis>();

  of(server: RedisTestServer): Redis {
    let client = this.clients.get(server.port);
    if (!client) {
      client = new Redis({ ...server.address, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
      client.on('error', () => undefined); // down on purpose in these tests
      this.clients.set(server.port, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.clients.values()) client.disconnect();
    this.clients.clear();
  }
}

/**
 * How many times a server ran `commands` (summed; inside scripts too), from its `INFO commandstats`
 * since the last `CONFIG RESETSTAT`.
 * @example
 * commandCalls(await server.info('commandstats'), 'eval', 'evalsha');
 */
export function commandCalls(info: string, ...commands: string[]): number {
  let calls = 0;
  for (const command of commands) calls += Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return calls;
}
