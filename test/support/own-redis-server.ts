import { afterAll, beforeAll } from 'vitest';
import { RedisServer } from './redis-server.js';

/**
 * A redis-server of the suite's own, for suites that stop, restart or reconfigure it: started
 * before the suite's tests and destroyed after them. Read `.server` inside tests and hooks.
 */
export function ownRedisServer(): { readonly server: RedisServer } {
  const holder = {} as { server: RedisServer };
  beforeAll(async () => {
    holder.server = await RedisServer.start();
  });
  afterAll(() => holder.server?.destroy());
  return holder;
}
