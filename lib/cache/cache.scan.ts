import type { Redis } from 'ioredis';
import { masterNodes, type RedisClient } from '../core/redis-client.js';
import { BULK_CHUNK } from './cache.bulk-delete.js';

/** SCAN of one server with `MATCH`, a thousand keys a step: each step's keys (maybe none), until the cursor comes back to 0. */
export async function* scanSteps(node: Redis, match: string): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', BULK_CHUNK);
    cursor = next;
    yield keys;
  } while (cursor !== '0');
}

/** The keys matching `match` on every master, one master after the other: each step that found some. */
export async function* scanMasters(redis: RedisClient, match: string): AsyncGenerator<string[]> {
  for (const node of masterNodes(redis)) {
    for await (const keys of scanSteps(node, match)) if (keys.length > 0) yield keys;
  }
}
