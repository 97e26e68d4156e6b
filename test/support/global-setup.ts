import type { TestProject } from 'vitest/node';
import { RedisClusterServers, RedisServer, type Address } from './redis-server.js';

/** The servers every suite shares; suites that stop or reconfigure a server start their own. */
export interface SharedRedis {
  standalone: Address;
  cluster: Address[];
}

declare module 'vitest' {
  export interface ProvidedContext {
    redis: SharedRedis;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [standalone, cluster] = await Promise.all([RedisServer.start(), RedisClusterServers.start({ masters: 3 })]);
  project.provide('redis', { standalone: standalone.address, cluster: cluster.nodes });
  return async () => {
    await Promise.all([standalone.destroy(), cluster.destroy()]);
  };
}
