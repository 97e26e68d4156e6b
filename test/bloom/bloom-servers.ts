import { RedisTestCluster, RedisTestServer } from '../support/redis-server.js';
import { clusterConnection, standaloneConnection } from '../support/testing-app.js';
import type { RedisPatternsModuleOptions } from '../../lib/index.js';

/** The RedisBloom module to load, when REDIS_BLOOM_MODULE names one. */
export const REDIS_BLOOM_MODULE = process.env.REDIS_BLOOM_MODULE;
export const REDIS_BLOOM_SKIP_REASON = 'REDIS_BLOOM_MODULE does not name a RedisBloom module to load (redis-server --loadmodule)';

/** Where a suite runs: a topology, with the backend it expects 'auto' to pick there. */
export interface BloomTarget {
  name: string;
  backend: 'bitmap' | 'redisbloom';
  connection(): RedisPatternsModuleOptions['connection'];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The shared servers (plain Redis: the bitmap backend). */
const shared = (topology: 'standalone' | 'cluster'): BloomTarget => ({
  name: `bitmap on ${topology}`,
  backend: 'bitmap',
  connection: topology === 'standalone' ? standaloneConnection : clusterConnection,
  start: async () => undefined,
  stop: async () => undefined,
});

/** Own servers that load the RedisBloom module. */
function withModule(topology: 'standalone' | 'cluster', module: string): BloomTarget {
  let server: RedisTestServer | undefined;
  let cluster: RedisTestCluster | undefined;
  const args = ['--loadmodule', module];
  return {
    name: `redisbloom on ${topology}`,
    backend: 'redisbloom',
    connection: () => (topology === 'standalone' ? server!.address : { cluster: { nodes: cluster!.nodes } }),
    start: async () => {
      if (topology === 'standalone') server = await RedisTestServer.start({ args });
      else cluster = await RedisTestCluster.start({ masters: 3, args });
    },
    stop: async () => {
      await server?.destroy();
      await cluster?.destroy();
    },
  };
}

/** Every target the Bloom suites run on: the bitmap always, RedisBloom when the module is given. */
export const bloomTargets: BloomTarget[] = [
  shared('standalone'),
  shared('cluster'),
  ...(REDIS_BLOOM_MODULE ? [withModule('standalone', REDIS_BLOOM_MODULE), withModule('cluster', REDIS_BLOOM_MODULE)] : []),
];
