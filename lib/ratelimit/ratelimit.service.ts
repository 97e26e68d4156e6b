import { Inject, Injectable, Logger } from '@nestjs/common';
import { RedisKeys } from '../core/keys.js';
import { isCluster, type RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisUnavailableError, type OutageKind } from '../core/store-failure.js';
import { OutageLog } from '../core/outage-log.js';
import { RedisScript } from '../core/redis-script.js';
import { toTextArgument } from '../core/validation.js';
import { RATE_LIMIT_OPTIONS, type RateLimitDecision, type RateLimitPolicy } from './ratelimit.options.js';
import { RateLimitCounts } from './ratelimit.metrics.js';
import { resolvePolicy, toCost, type ResolvedPolicy, type ResolvedRateLimitOptions } from './ratelimit.options-validator.js';

const script = RedisScript.fromFile(new URL('./ratelimit.lua', import.meta.url));

/** One policy to check for one caller: its Redis key (hash-tagged by the caller) and the cost. */
export interface RateLimitCheck {
  key: string;
  policy: ResolvedPolicy;
  cost: number;
}

/**
 * Redis could not decide a call, and one of its policies is `onStoreError: 'closed'`. A
 * {@link RedisUnavailableError}: a controller answers 503.
 */
export class RateLimitUnavailableError extends RedisUnavailableError {
  constructor(
    /** The name of the closed policy. */
    readonly policy: string,
    outage: OutageKind,
    options?: { cause?: unknown },
  ) {
    super(`rate limit "${policy}"`, outage, options);
    this.name = 'RateLimitUnavailableError';
  }
}

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
  private readonly outage = new OutageLog(this.logger, 'rate limiting', "'open' policies admit and 'closed' ones answer 503");
  private readonly redis: RedisClient;
  private readonly resolvedPolicies = new WeakMap<RateLimitPolicy, ResolvedPolicy>();

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(RATE_LIMIT_OPTIONS) private readonly settings: ResolvedRateLimitOptions,
    private readonly counts: RateLimitCounts,
  ) {
    this.redis = connections.get();
  }

  /**
   * Spends `cost` units (default: the policy's numeric `cost`, else 1) of `policy` for `key` (any string naming the caller: it is encoded, so it
   * cannot reach another caller's keys). A rejected call spends nothing.
   * When Redis fails, `onStoreError: 'open'` (the default) answers `allowed` with `unavailable`
   * set, and `'closed'` throws a `RateLimitUnavailableError`.
   * @example
   * const { allowed, retryAfterMs } = await this.rateLimits.consume(`sms:${phone}`, { limit: 3, window: '1h', algorithm: 'fixed-window' });
   */
  async consume(key: string, policy: RateLimitPolicy, cost?: number): Promise<RateLimitDecision> {
    toTextArgument('key', key);
    const resolved = this.resolve(policy);
    const units = cost ?? (typeof resolved.cost === 'number' ? resolved.cost : 1);
    const [decision] = await this.decide([
      { key: this.keys.tagged(['rl', key], resolved.name), policy: resolved, cost: toCost(units, 'cost') },
    ]);
    return decision;
  }

  /**
   * Decides several policies for one call, debiting none unless all allow it. On a Cluster, checks
   * whose keys hash to different slots (different callers) run as one script per caller, in
   * parallel, and the passed ones are refunded if another rejects. When a check's cost can never
   * fit, the answer is that check's decision alone, and Redis is not asked.
   */
  async decide(checks: readonly RateLimitCheck[]): Promise<RateLimitDecision[]> {
    const decisions = await this.decideAll(checks);
    this.counts.decided(decisions);
    return decisions;
  }

  private async decideAll(checks: readonly RateLimitCheck[]): Promise<RateLimitDecision[]> {
    const tooCostly = checks.find((check) => check.cost > check.policy.capacity);
    if (tooCostly) return [neverFits(tooCostly)];
    // Never queued: a connection that is not ready decides at once.
    if (this.redis.status !== 'ready') {
      this.outage.noteOutage('disconnected');
      return this.whenUnavailable(checks, 'disconnected');
    }
    const groups = checks.length > 1 && isCluster(this.redis) ? groupByTag(checks) : undefined;
    if (!groups || groups.length === 1) {
      // The common case: every check in one script, so nothing to refund.
      let reply: number[];
      try {
        reply = await script.run<number[]>(
          this.redis,
          checks.map((check) => check.key),
          scriptArguments('consume', checks),
        );
      } catch (error) {
        return this.failed(checks, error);
      }
      this.outage.succeeded();
      return parseReply(checks, reply).decisions;
    }
    const settled = await Promise.allSettled(groups.map((group) => this.run('marked', group)));
    const failure = settled.find((result) => result.status === 'rejected');
    const consumed = settled.map((result, index) =>
      result.status === 'fulfilled' ? { group: groups[index], ...result.value } : undefined,
    );
    const passed = consumed.filter((result) => result !== undefined && result.decisions.every((decision) => decision.allowed));
    if (failure || passed.length < groups.length) await this.refund(passed);
    if (failure) return this.failed(checks, failure.reason);
    this.outage.succeeded();
    // A passed group was refunded if another rejected: report what it has left without this call.
    const refunded = passed.length < groups.length;
    const decisionOf = new Map(
      consumed.flatMap((result) =>
        result!.group.map(
          (check, at) =>
            [check, refunded && passed.includes(result) ? unspent(result!.decisions[at], check) : result!.decisions[at]] as const,
        ),
      ),
    );
    return checks.map((check) => decisionOf.get(check)!);
  }

  /** A failed decision: a bug is thrown; an outage is logged once and answered by each policy's `onStoreError`. */
  private failed(checks: readonly RateLimitCheck[], error: unknown): RateLimitDecision[] {
    const outage = this.outage.failed(error);
    if (outage === undefined) throw error;
    return this.whenUnavailable(checks, outage, error);
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

  private async run(
    mode: 'marked' | 'refund',
    group: readonly RateLimitCheck[],
    written?: readonly number[],
  ): Promise<{ decisions: RateLimitDecision[]; written: number[] }> {
    return parseReply(
      group,
      await script.run<number[]>(
        this.redis,
        group.map((check) => check.key),
        scriptArguments(mode, group, written),
      ),
      true,
    );
  }

  /** Gives back what passed groups spent when the call as a whole did not pass. Best effort: a failed refund is logged. */
  private async refund(passed: readonly ({ group: readonly RateLimitCheck[]; written: number[] } | undefined)[]): Promise<void> {
    await Promise.all(
      passed.map((result) =>
        this.run('refund', result!.group, result!.written).catch((error: unknown) =>
          this.outage.report(
            error,
            `refund a rejected call's debit of ${result!.group.map((check) => `"${check.policy.name}"`).join(', ')}`,
          ),
        ),
      ),
    );
  }

  /** The answer of each policy's `onStoreError` while Redis is away: 'closed' throws, 'open' admits. */
  private whenUnavailable(checks: readonly RateLimitCheck[], outage: OutageKind, cause?: unknown): RateLimitDecision[] {
    const closed = checks.find((check) => (check.policy.onStoreError ?? this.settings.onStoreError) === 'closed');
    if (closed) {
      this.counts.unavailable(closed.policy.name);
      throw new RateLimitUnavailableError(closed.policy.name, outage, { cause });
    }
    return checks.map(({ policy, cost }) => ({
      policy: policy.name,
      allowed: true,
      limit: policy.limit,
      remaining: Math.max(0, policy.limit - cost),
      resetMs: 0,
      retryAfterMs: 0,
      windowMs: policy.windowMs,
      unavailable: true,
    }));
  }
}

/** Checks grouped by hash tag (the caller), in first-seen order. */
function groupByTag(checks: readonly RateLimitCheck[]): RateLimitCheck[][] {
  const groups = new Map<string, RateLimitCheck[]>();
  for (const check of checks) {
    const tag = check.key.slice(check.key.indexOf('{'), check.key.indexOf('}') + 1);
    const group = groups.get(tag);
    if (group) group.push(check);
    else groups.set(tag, [check]);
  }
  return [...groups.values()];
}

function unspent(decision: RateLimitDecision, check: RateLimitCheck): RateLimitDecision {
  return { ...decision, remaining: Math.min(check.policy.capacity, decision.remaining + check.cost) };
}

/**
 * ARGV of ratelimit.lua: the mode ('marked' for a consume that may be refunded, 'refund'; none
 * for a plain consume), then per policy its configuration and the cost, and for a refund what was written.
 */
function scriptArguments(
  mode: 'consume' | 'marked' | 'refund',
  group: readonly RateLimitCheck[],
  written?: readonly number[],
): (string | number)[] {
  const args: (string | number)[] = mode === 'consume' ? [] : [mode];
  for (let index = 0; index < group.length; index++) {
    args.push(group[index].policy.scriptConfig, group[index].cost);
    if (written) args.push(written[index]);
  }
  return args;
}

/**
 * The script's integers per policy: remaining, reset, and retry-after (0 when the policy allows
 * the call, -1 when its cost never fits), and for a `marked` consume what it wrote (for a refund).
 */
function parseReply(
  group: readonly RateLimitCheck[],
  reply: readonly number[],
  marked = false,
): { decisions: RateLimitDecision[]; written: number[] } {
  const decisions: RateLimitDecision[] = [];
  const written: number[] = [];
  const width = marked ? 4 : 3;
  for (let index = 0, at = 0; index < group.length; index++, at += width) {
    const { policy } = group[index];
    const retryAfterMs = reply[at + 2];
    decisions.push({
      policy: policy.name,
      allowed: retryAfterMs === 0,
      limit: policy.limit,
      remaining: reply[at],
      resetMs: reply[at + 1],
      retryAfterMs: retryAfterMs < 0 ? undefined : retryAfterMs,
      windowMs: policy.windowMs,
    });
    if (marked) written.push(reply[at + 3]);
  }
  return { decisions, written };
}

function neverFits({ policy }: RateLimitCheck): RateLimitDecision {
  return {
    policy: policy.name,
    allowed: false,
    limit: policy.limit,
    remaining: 0,
    resetMs: 0,
    retryAfterMs: undefined,
    windowMs: policy.windowMs,
  };
}
