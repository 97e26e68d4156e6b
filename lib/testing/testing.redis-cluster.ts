import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { RedisPatternsError } from '../core/errors.js';
import type { ClusterConnectionOptions, SentinelConnectionOptions } from '../core/core.options.js';
import { clusterStateOk, command, HOST, isMaster, isMasterOrSyncedReplica, waitFor, type Address } from './testing.probes.js';
import { assertInstalled, RedisTestServer } from './testing.redis-server.js';

export interface RedisTestClusterOptions {
  /** How many masters share the 16384 slots. Default 3 (the fewest a Cluster accepts). */
  masters?: number;
  /** Replicas of each master, for failover tests. Default 0. */
  replicasPerMaster?: number;
  /** Extra `redis-server` arguments for every node. */
  args?: readonly string[];
  /** The redis-server to run; `redis-cli` is taken from beside it on PATH. Default `redis-server`. */
  binary?: string;
}

/**
 * A real Redis Cluster for tests: `masters` masters (3 by default), each with `replicasPerMaster`
 * replicas, on free loopback ports, every slot assigned; resolves once the cluster reports
 * `cluster_state:ok` and every replica is in sync.
 *
 * @example
 * const cluster = await RedisTestCluster.start();
 * RedisPatternsModule.forRoot({ connection: cluster.connection });
 * afterEach(() => cluster.flush());
 * afterAll(() => cluster.destroy());
 */
export class RedisTestCluster {
  private constructor(readonly servers: readonly RedisTestServer[]) {}

  static async start(options: RedisTestClusterOptions = {}): Promise<RedisTestCluster> {
    assertInstalled('redis-cli');
    const masters = options.masters ?? 3;
    const replicas = options.replicasPerMaster ?? 0;
    // validity factor 0: a replica always takes over, however stale it thinks it is (a loaded test machine delays replication pings).
    const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'];
    const args = [...clusterArgs, '--cluster-replica-validity-factor', '0', ...(options.args ?? [])];
    const servers: RedisTestServer[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++)
      servers.push(await RedisTestServer.start({ args, withBus: true, binary: options.binary }));
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...servers.map((s) => `${s.host}:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (create.status !== 0) {
      await Promise.all(servers.map((server) => server.destroy()));
      throw new RedisPatternsError(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    }
    await waitFor(
      async () => (await Promise.all(servers.map((s) => clusterStateOk(s.port)))).every(Boolean),
      'the cluster to report cluster_state:ok',
    );
    // A replica that has not finished its first sync would take over with no data.
    if (replicas > 0)
      await waitFor(
        async () => (await Promise.all(servers.map((s) => isMasterOrSyncedReplica(s.port)))).every(Boolean),
        'every replica to be in sync with its master',
        60_000,
      );
    return new RedisTestCluster(servers);
  }

  get nodes(): Address[] {
    return this.servers.map((server) => server.address);
  }

  /** The `connection` option for `RedisPatternsModule.forRoot()`. */
  get connection(): ClusterConnectionOptions {
    return { cluster: { nodes: this.nodes } };
  }

  /** Deletes every key on every master (FLUSHALL; replicas follow), e.g. between tests. */
  async flush(): Promise<void> {
    for (const server of this.servers) if (await isMaster(server.port)) await server.flush();
  }

  /** Stops every node and removes their directories. */
  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.destroy()));
  }
}

/**
 * A master, one replica, and one Sentinel watching them under `name`, for tests of failover
 * through Sentinel.
 *
 * @example
 * const redis = await RedisTestSentinel.start();
 * RedisPatternsModule.forRoot({ connection: redis.connection });
 */
export class RedisTestSentinel {
  private constructor(
    readonly name: string,
    readonly master: RedisTestServer,
    readonly replica: RedisTestServer,
    readonly sentinel: RedisTestServer,
  ) {}

  static async start(name = 'nrp-master'): Promise<RedisTestSentinel> {
    const master = await RedisTestServer.start();
    const replica = await RedisTestServer.start({ args: ['--replicaof', HOST, String(master.port)] });
    const sentinel = await RedisTestServer.startSentinel([
      `sentinel monitor ${name} ${HOST} ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 1000`,
      `sentinel failover-timeout ${name} 5000`,
    ]);
    await waitFor(
      async () => (await command(sentinel.port, `SENTINEL get-master-addr-by-name ${name}`)).includes(String(master.port)),
      'Sentinel to know the master',
    );
    return new RedisTestSentinel(name, master, replica, sentinel);
  }

  /** The `connection` option for `RedisPatternsModule.forRoot()`: the master, found through the Sentinel. */
  get connection(): SentinelConnectionOptions {
    return { sentinel: { sentinels: [`${this.sentinel.host}:${this.sentinel.port}`], name: this.name } };
  }

  async destroy(): Promise<void> {
    await this.sentinel.destroy();
    await Promise.all([this.replica.destroy(), this.master.destroy()]);
  }
}

/** Waits (up to 10 s) until the master on `port` has a replica that acknowledged every write so far; resolves with how many did. */
export async function waitForReplica(port: number): Promise<number> {
  const client = new Redis({ host: HOST, port });
  try {
    return (await client.call('WAIT', '1', '10000')) as number;
  } finally {
    client.disconnect();
  }
}
