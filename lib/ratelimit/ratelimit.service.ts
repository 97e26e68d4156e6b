import { Inject, Injectable, Logger } from '@nestjs/common';
import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RESOLVED_OPTIONS } from '../core/redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from '../core/redis-patterns.options.js';
import { RedisScript } from '../core/redis-script.js';
import type { RateLimitDecision, RateLimitPolicy } from './ratelimit.options.js';
import { resolvePolicy, toCost, type ResolvedPolicy } from './ratelimit.options-validator.js';

const script = RedisScript.fromFile(new URL('./ratelimit.lua', import.meta.url));

/** One policy to check for one caller: its Redis key (hash-tagged by the caller) and the cost. */
export interface RateLimitCheck {
  key: string;
  policy: ResolvedPolicy;
  cost: number;
}

/** Redis failed while deciding, and a policy of the call is `onStoreError: 'closed'`. */
export class RateLimitUnavailableError extends RedisPatternsError {}

/**
 * Decides rate limits in Redis: one script per caller checks all of a call's policies against the
 * server's clock, and debits them only if all allow it.
 *
 * @example
 * const decision = await this.rateLimits.consume(`tenant:${tenantId}`, { limit: 100, window: '1m' });
 * if (!decision.allowed) throw new TooManyRequests(decision.retryAfterMs);
 */
@Injectable()
export class RateLimitService {
  private readonly logger = new Logger('RedisPatterns:RateLimit');
  private readonly redis: RedisClient;
  private readonly resolvedPolicies = new WeakMap<RateLimitPolicy, ResolvedPolicy>();
  private storeDown = false;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedRedisPatternsOptions,
  ) {
    this.redis = connections.get();
  }

  /**
   * Spends `cost` units of `policy` for `key` (any string naming the caller: it is encoded, so it
   * cannot reach another caller's keys). A rejected call spends nothing.
   * When Redis fails, `onStoreError: 'open'` (the default) answers `allowed` with `unavailable`
   * set, and `'closed'` throws a `RateLimitUnavailableError`.
   * @example
   * const { allowed, retryAfterMs } = await this.rateLimits.consume(`sms:${phone}`, { limit: 3, window: '1h', algorithm: 'fixed-window' });
   */
  async consume(key: string, policy: RateLimitPolicy, cost = 1): Promise<RateLimitDecision> {
    if (typeof key !== 'string' || key.length === 0) throw new InvalidOptionError('key', 'a non-empty string', key);
    const resolved = this.resolve(policy);
    const [decision] = await this.decide([{ key: this.keys.tagged(['rl', key], resolved.name), policy: resolved, cost: toCost(cost, 'cost') }]);
    return decision;
  }

  /**
   * Decides several policies for one call. Checks whose keys share a hash tag go in one script;
   * if a caller's checks pass but another caller's fail, the passed ones are refunded, so a
   * rejected call spends nothing.
   */
  async decide(checks: readonly RateLimitCheck[]): Promise<RateLimitDecision[]> {
    // A cost above the capacity can never pass: rejected without asking Redis.
    const tooCostly = checks.find((check) => check.cost > check.policy.capacity);
    if (tooCostly) return [neverFits(tooCostly)];
    const groups = groupByTag(checks);
    try {
      this.assertConnected();
      const results = await Promise.all(groups.map((group) => this.run('consume', group)));
      if (this.storeDown) this.storeBack();
      if (groups.length === 1) return results[0];
      const passed = results.map((decisions) => decisions.every((decision) => decision.allowed));
      if (passed.includes(false)) await Promise.all(groups.filter((_, index) => passed[index]).map((group) => this.run('refund', group)));
      const decisionOf = new Map(groups.flatMap((group, index) => group.map((check, at) => [check, results[index][at]] as const)));
      return checks.map((check) => decisionOf.get(check)!);
    } catch (error) {
      return this.onStoreError(checks, error);
    }
  }

  /** The key of one policy for one caller: `<prefix>{rl:<tracker>}:<scope>:<policy>`, the caller encoded. */
  keyOf(tracker: string, scope: string, policy: ResolvedPolicy): string {
    return this.keys.tagged(['rl', tracker], scope, policy.name);
  }

  /** Validates a policy once per policy object. */
  resolve(policy: RateLimitPolicy): ResolvedPolicy {
    let resolved = this.resolvedPolicies.get(policy);
    if (!resolved) {
      resolved = resolvePolicy(policy, 'policy');
      this.resolvedPolicies.set(policy, resolved);
    }
    return resolved;
  }

  private async run(mode: 'consume' | 'refund', group: readonly RateLimitCheck[]): Promise<RateLimitDecision[]> {
    const args: (string | number)[] = [mode];
    for (const { policy, cost } of group) args.push(policy.algorithm, policy.limit, policy.windowMs, policy.burst, cost, policy.blockMs);
    const reply = await script.run<number[]>(this.redis, group.map((check) => check.key), args);
    return group.map(({ policy }, index) => {
      const at = index * 4;
      const retryAfterMs = reply[at + 3];
      return { policy: policy.name, allowed: reply[at] === 1, limit: policy.limit, remaining: reply[at + 1], resetMs: reply[at + 2], retryAfterMs: retryAfterMs < 0 ? undefined : retryAfterMs, windowMs: policy.windowMs };
    });
  }

  /** Never send a decision to a connection that is not ready: a queued debit could land twice, or late. */
  private assertConnected(): void {
    if (this.redis.status !== 'ready') throw new RedisPatternsError(`the Redis connection is ${this.redis.status}`);
  }

  private onStoreError(checks: readonly RateLimitCheck[], error: unknown): RateLimitDecision[] {
    const reason = (error as Error)?.message ?? String(error);
    if (!this.storeDown) {
      this.storeDown = true;
      this.logger.warn(`Redis is unavailable to rate limiting (${reason}); 'open' policies admit and 'closed' ones reject until it is back`);
    }
    const closed = checks.find((check) => (check.policy.onStoreError ?? this.options.rateLimit.onStoreError) === 'closed');
    if (closed) throw new RateLimitUnavailableError(`Rate limit "${closed.policy.name}" cannot be checked: ${reason}`, { cause: error });
    return checks.map(({ policy, cost }) => ({ policy: policy.name, allowed: true, limit: policy.limit, remaining: Math.max(0, policy.limit - cost), resetMs: 0, retryAfterMs: 0, windowMs: policy.windowMs, unavailable: true }));
  }

  private storeBack(): void {
    this.storeDown = false;
    this.logger.log('Redis is available to rate limiting again');
  }
}

/** Checks grouped by hash tag (the caller), in first-seen order. */
function groupByTag(checks: readonly RateLimitCheck[]): RateLimitCheck[][] {
  if (checks.length < 2) return [checks as RateLimitCheck[]];
  const groups = new Map<string, RateLimitCheck[]>();
  for (const check of checks) {
    const tag = check.key.slice(check.key.indexOf('{'), check.key.indexOf('}') + 1);
    const group = groups.get(tag);
    if (group) group.push(check);
    else groups.set(tag, [check]);
  }
  return [...groups.values()];
}

function neverFits({ policy }: RateLimitCheck): RateLimitDecision {
  return { policy: policy.name, allowed: false, limit: policy.limit, remaining: 0, resetMs: 0, retryAfterMs: undefined, windowMs: policy.windowMs };
}
