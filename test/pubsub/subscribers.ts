import type { INestApplicationContext } from '@nestjs/common';
import { masterNodes } from '../../lib/core/redis-client.js';
import { RedisConnections, RedisKeys } from '../../lib/index.js';

/** How many Redis subscriptions exist for a channel, summed over every master. */
export async function redisSubscribers(app: INestApplicationContext, redisChannel: string, sharded: boolean): Promise<number> {
  const nodes = masterNodes(app.get(RedisConnections).get());
  const counts = await Promise.all(
    nodes.map((node) => node.call('PUBSUB', sharded ? 'SHARDNUMSUB' : 'NUMSUB', redisChannel) as Promise<[string, number]>),
  );
  return counts.reduce((sum, [, count]) => sum + Number(count), 0);
}

/** The key prefix of an app's module (channels carry it too). */
export const prefixOf = (app: INestApplicationContext): string => app.get(RedisKeys).prefix;
