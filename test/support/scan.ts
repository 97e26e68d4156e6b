import { isCluster, type RedisClient } from '../../lib/index.js';

/** Every key that matches `match`, on every master of a Cluster (a whole SCAN, COUNT 1000). */
export async function scanKeys(redis: RedisClient, match: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of isCluster(redis) ? redis.nodes('master') : [redis]) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
  }
  return found;
}
