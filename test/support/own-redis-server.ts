import { afterAll, beforeAll } from 'vitest';
import type { RedisConnectionOptions } from '../../lib/index.js';
import { RedisTestSentinel, RedisTestServer } from './redis-server.js';

/**
 * A redis-server of the suite's own, for suites that stop, restart or reconfigure it: started
 * before the suite's tests and destroyed after them. Read `.server` inside tests and hooks.
 */
export function ownRedisServer(): { readonly server: RedisTestServer } {
  const holder = {} as { server: RedisTestServer };
  beforeAll(async () => {
    holder.server = await RedisTestServer.start();
  });
  afterAll(() => holder.server?.destroy());
  return holder;
}

/**
 * A master, its replica and a Sentinel of the suite's own, started before the suite's tests and
 * destroyed after them. `connection()` finds the master through the Sentinel (given as "host:port").
 */
export function ownSentinelServers(): { readonly servers: RedisTestSentinel; connection(): RedisConnectionOptions } {
  const holder = {
    servers: undefined as unknown as RedisTestSentinel,
    connection(): RedisConnectionOptions {
      const { host, port } = holder.servers.sentinel.address;
      return { sentinel: { sentinels: [`${host}:${port}`], name: holder.servers.name } };
    },
  };
  beforeAll(async () => {
    holder.servers = await RedisTestSentinel.start();
  });
  afterAll(() => holder.servers?.destroy());
  return holder;
}
