import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { CORE_OPTIONS } from './core.constants.js';
import type { ResolvedCoreOptions } from './core.options.js';
import { masterNodes, type RedisClient } from './redis-client.js';
import { RedisConnections } from './redis-connections.service.js';

/**
 * How a feature's keys may be treated under memory pressure: `evictable` keys (a cache) may be
 * dropped by Redis; `durable` keys (locks, sessions, leaderboards) must not be.
 */
export type KeyDurability = 'evictable' | 'durable';

/** Injection token of the features' key needs (`KeyUser[]`), from their definitions. */
export const KEY_USERS = Symbol('RedisPatterns:KeyUsers');

/** A feature's key needs, and whether the app uses the feature (asked once, after startup). */
export interface KeyUser {
  feature: string;
  durability: KeyDurability;
  inUse(moduleRef: ModuleRef): boolean;
}

/**
 * Features declare what their keys need (in their definitions; other code with `declare`). After
 * startup, for the features in use, the module reads Redis's
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
    @Inject(CORE_OPTIONS) private readonly options: ResolvedCoreOptions,
    @Inject(KEY_USERS) private readonly users: readonly KeyUser[],
    private readonly moduleRef: ModuleRef,
  ) {}

  /**
   * Declares keys of something other than the module's features (the features declare theirs).
   * @example
   * this.maxmemoryPolicy.declare('audit log', 'durable');
   */
  declare(feature: string, durability: KeyDurability): void {
    this.declared.set(feature, durability);
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const user of this.users) if (user.inUse(this.moduleRef)) this.declare(user.feature, user.durability);
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
  private async readSettings(client: RedisClient): Promise<{ maxmemory: string; policy: string }> {
    const [node] = masterNodes(client);
    const [[, maxmemory], [, policy]] = (await Promise.all([
      node.config('GET', 'maxmemory'),
      node.config('GET', 'maxmemory-policy'),
    ])) as string[][];
    return { maxmemory, policy };
  }
}
