import { Inject, Injectable, Logger } from '@nestjs/common';
// Types only: @nestjs/throttler is an optional peer, and nothing of it is loaded at run time.
import type { ThrottlerStorage } from '@nestjs/throttler';
import { InvalidOptionError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisScript } from '../core/redis-script.js';
import type { OutageKind } from '../core/store-failure.js';
import { RateLimitCounts } from './ratelimit.metrics.js';
import { RATE_LIMIT_OPTIONS } from './ratelimit.options.js';
import type { ResolvedRateLimitOptions } from './ratelimit.options-validator.js';
import { RateLimitUnavailableError } from './ratelimit.service.js';

/** What `increment` resolves with (throttler's `ThrottlerStorageRecord`, which its index does not export). */
export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

const script = RedisScript.fromFile(new URL('./ratelimit-throttler.lua', import.meta.url));

/** What the storage answers, hit admitted unchecked, while Redis is away and `rateLimit.onStoreError` is `'open'`. */
const UNCHECKED: Readonly<ThrottlerStorageRecord> = Object.freeze({
  totalHits: 0,
  timeToExpire: 0,
  isBlocked: false,
  timeToBlockExpire: 0,
});

/**
 * @nestjs/throttler's storage on Redis: `ThrottlerGuard`, `@Throttle`, `@SkipThrottle` and named
 * throttlers work as they do with throttler's in-memory storage, counted in Redis, so exactly
 * `limit` hits pass across every instance of the app (and on a Cluster).
 *
 * Each `increment` is one script (one round trip), with the in-memory storage's answers: a hit
 * counts for `ttl` milliseconds from when it was made; the window of `timeToExpire` starts at the
 * first hit; the hit that passes the limit starts a block of `blockDuration`, during which hits are
 * refused and not counted, and after which the count starts afresh. Times come from the server's
 * clock. Keys are `<prefix>{th:<key>:<throttler>}` and `...:hits`, the parts encoded.
 *
 * When Redis fails, `rateLimit.onStoreError` decides: `'open'` (the default) admits the hit
 * unchecked (`totalHits` 0), `'closed'` throws `RateLimitUnavailableError` (503). The outage is
 * logged once. Override `whenUnavailable` in a subclass (provided in your module) to decide
 * otherwise, per throttler.
 *
 * @example
 * ThrottlerModule.forRootAsync({
 *   inject: [RedisThrottlerStorage],
 *   useFactory: (storage: RedisThrottlerStorage) => ({ throttlers: [{ ttl: 60_000, limit: 10 }], storage }),
 * })
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage {
  private readonly logger = new Logger('RedisPatterns:Throttler');
  private readonly outage: OutageLog;
  private readonly redis: RedisClient;

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(RATE_LIMIT_OPTIONS) private readonly settings: ResolvedRateLimitOptions,
    private readonly counts: RateLimitCounts,
  ) {
    this.redis = connections.get();
    this.outage = new OutageLog(
      this.logger,
      'the throttler storage',
      settings.onStoreError === 'open' ? 'ThrottlerGuard admits every request' : 'ThrottlerGuard answers 503',
    );
  }

  /**
   * Counts one hit of `throttlerName` for `key` (what the guard's `generateKey` made), as
   * `ThrottlerGuard` calls it: `ttl` and `blockDuration` in milliseconds (a `blockDuration` of 0:
   * a hit over the limit is only refused), `timeToExpire` and `timeToBlockExpire` answered in
   * seconds, rounded up (`timeToBlockExpire` is 0 when not blocked).
   * @example
   * const { isBlocked, timeToBlockExpire } = await storage.increment(`login:${username}`, 60_000, 5, 900_000, 'login');
   */
  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    const args = [
      toMilliseconds(throttlerName, 'ttl', ttl),
      toNonNegative(throttlerName, 'limit', limit),
      toMilliseconds(throttlerName, 'blockDuration', blockDuration),
    ];
    const record = this.keyOf(key, throttlerName);
    // Never queued: a connection that is not ready decides at once.
    if (this.redis.status !== 'ready') {
      this.outage.noteOutage('disconnected');
      return this.unavailable(throttlerName, 'disconnected');
    }
    let reply: [number, number, number, number];
    try {
      reply = await script.run<[number, number, number, number]>(this.redis, [record, `${record}:hits`], args);
    } catch (error) {
      const outage = this.outage.failed(error);
      if (outage === undefined) throw error;
      return this.unavailable(throttlerName, outage, error);
    }
    this.outage.succeeded();
    const isBlocked = reply[2] === 1;
    this.counts.throttled(throttlerName, isBlocked ? 'limited' : 'allowed');
    return { totalHits: reply[0], timeToExpire: reply[1], isBlocked, timeToBlockExpire: reply[3] };
  }

  /** The key of the record of `key` for one throttler; its hits are under the same key plus `:hits`. */
  keyOf(key: string, throttlerName: string): string {
    if (typeof key !== 'string') throw new InvalidOptionError('key', "a string (what the guard's generateKey returns)", key);
    if (typeof throttlerName !== 'string') throw new InvalidOptionError('throttlerName', 'a string', throttlerName);
    return this.keys.tagged(['th', key, throttlerName]);
  }

  /**
   * The answer while Redis cannot count a hit, per `rateLimit.onStoreError`: `'open'` admits it
   * unchecked, `'closed'` throws `RateLimitUnavailableError` (503).
   * @example
   * protected override whenUnavailable(throttlerName: string, outage: OutageKind, cause?: unknown) {
   *   if (throttlerName === 'login') throw new RateLimitUnavailableError(throttlerName, outage, { cause });
   *   return super.whenUnavailable(throttlerName, outage, cause);
   * }
   */
  protected whenUnavailable(throttlerName: string, outage: OutageKind, cause?: unknown): ThrottlerStorageRecord {
    if (this.settings.onStoreError === 'closed') throw new RateLimitUnavailableError(throttlerName, outage, { cause });
    return { ...UNCHECKED };
  }

  private unavailable(throttlerName: string, outage: OutageKind, cause?: unknown): ThrottlerStorageRecord {
    try {
      const answer = this.whenUnavailable(throttlerName, outage, cause);
      this.counts.throttled(throttlerName, 'unchecked');
      return answer;
    } catch (error) {
      this.counts.throttled(throttlerName, 'unavailable');
      throw error;
    }
  }
}

/** A time of the guard's, in milliseconds: finite and not negative; a fraction is rounded up. */
function toMilliseconds(throttlerName: string, argument: string, value: unknown): number {
  return Math.ceil(toNonNegative(throttlerName, argument, value));
}

function toNonNegative(throttlerName: string, argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new InvalidOptionError(`throttler "${throttlerName}" ${argument}`, 'a finite number of at least 0', value);
  return value;
}
