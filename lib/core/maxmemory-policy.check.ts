import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { RESOLVED_OPTIONS } from './redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from './redis-patterns.options.js';
import { masterNodes, type RedisClient } from './redis-client.js';
import { RedisConnections } from './redis-connections.service.js';

/**
 * How a feature's keys may be treated under memory pressure: `evictable` keys (a cache) may be
 * dropped by Redis; `durable` keys (locks, sessions, leaderboards) must not be.
 */
export type KeyDurability = 'evictable' | 'durable';

/**
 * Features declare here what their keys need. After startup, the module reads Redis's
 * `maxmemory` and `maxmemory-policy` once and warns when they do not suit them:
 *
 * - durable keys (locks, sessions, leaderboards) under any policy but `noeviction`. They carry
 *   TTLs, so `volatile-*` policies evict them as readily as `allkeys-*` ones;
 * - a pure cache under `noeviction`: once memory is full, cache writes fail with OOM.
 *
 * Without a `maxmemory` limit Redis never evicts, and nothing is said.
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
    // CONFIG may be disallowed (managed services, ACLs); then there is nothing to check.
    const settings = await this.readSettings(this.connections.get()).catch(() => undefined);
    const advice = settings && settings.maxmemory !== '0' ? this.advise(settings.policy) : undefined;
    if (advice) this.logger.warn(advice);
  }

  /** The warning for this policy and the declared features, or undefined when they suit. */
  advise(policy: string): string | undefined {
    const durable = [...this.declared].filter(([, durability]) => durability === 'durable').map(([feature]) => feature);
    if (durable.length > 0 && policy !== 'noeviction') {
      return (
        `Redis maxmemory-policy is "${policy}": under memory pressure Redis may evict keys of ${durable.join(', ')}, which must not be lost ` +
        '(volatile-* policies evict keys with a TTL, as locks and sessions have). Use noeviction, and keep a cache that needs eviction on a separate Redis.'
      );
    }
    if (durable.length === 0 && policy === 'noeviction') {
      return 'Redis maxmemory-policy is "noeviction": once maxmemory is reached, cache writes fail with OOM. Consider allkeys-lru or allkeys-lfu for a cache-only Redis.';
    }
    return undefined;
  }

  /** On a Cluster, the first master is taken as representative. */
  private async readSettings(client: RedisClient): Promise<{ maxmemory: string; policy: string } | undefined> {
    const [node] = masterNodes(client);
    if (!node) return undefined;
    const [[, maxmemory], [, policy]] = (await Promise.all([node.config('GET', 'maxmemory'), node.config('GET', 'maxmemory-policy')])) as string[][];
    return { maxmemory, policy };
  }
}
