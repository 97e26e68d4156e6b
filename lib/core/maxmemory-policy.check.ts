import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { RESOLVED_OPTIONS } from './redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from './redis-patterns.options.js';
import { RedisConnections, type RedisClient } from './redis-connections.service.js';

/**
 * How a feature's keys may be treated under memory pressure: `evictable` keys (a cache) may be
 * dropped by Redis; `durable` keys (locks, sessions, leaderboards) must not be.
 */
export type KeyDurability = 'evictable' | 'durable';

/**
 * Features declare here what their keys need. After startup, the module reads Redis's
 * `maxmemory-policy` once and warns when it does not suit them: `allkeys-*` while durable keys
 * share the instance (Redis may evict a lock or a session), or `noeviction` for a pure cache
 * (writes fail with OOM once memory is full).
 */
@Injectable()
export class MaxmemoryPolicyCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger('RedisPatterns');
  private readonly declared = new Map<string, KeyDurability>();

  constructor(
    private readonly connections: RedisConnections,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedRedisPatternsOptions,
  ) {}

  /** Called by a feature when it is set up. */
  declare(feature: string, durability: KeyDurability): void {
    this.declared.set(feature, durability);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.options.checkMaxmemoryPolicy || this.declared.size === 0) return;
    const policy = await this.readPolicy(this.connections.get()).catch(() => undefined);
    const advice = policy === undefined ? undefined : this.advise(policy);
    if (advice) this.logger.warn(advice);
  }

  /** The warning for this policy and the declared features, or undefined when they suit. */
  advise(policy: string): string | undefined {
    const durable = [...this.declared].filter(([, durability]) => durability === 'durable').map(([feature]) => feature);
    if (policy.startsWith('allkeys-') && durable.length > 0) {
      return (
        `Redis maxmemory-policy is "${policy}": under memory pressure Redis may evict keys of ${durable.join(', ')}. ` +
        'Use a volatile-* policy or noeviction, or a separate Redis for the cache.'
      );
    }
    if (policy === 'noeviction' && durable.length === 0) {
      return 'Redis maxmemory-policy is "noeviction": once maxmemory is reached, cache writes fail with OOM. Consider allkeys-lru or allkeys-lfu for a cache-only Redis.';
    }
    return undefined;
  }

  /** On a Cluster, the first master that answers is taken as representative. */
  private async readPolicy(client: RedisClient): Promise<string | undefined> {
    const node = client instanceof Cluster ? client.nodes('master')[0] : client;
    if (!node) return undefined;
    const reply = (await node.config('GET', 'maxmemory-policy')) as string[];
    return reply[1];
  }
}
