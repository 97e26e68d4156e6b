export type { CacheOptions, L1Options, StampedeOptions } from './cache/cache.options.js';
export { CacheService, escapeCachePattern, type CacheEntryOptions, type CacheStats, type CacheStatus, type WarmEntry } from './cache/cache.service.js';
export { CacheEvict, type CacheEvictOptions } from './cache/cache-evict.decorator.js';
export { CacheInterceptor } from './cache/cache.interceptor.js';
export { CacheTTL, NoCache } from './cache/cache-ttl.decorator.js';
export { CachePut, type CachePutOptions } from './cache/cache-put.decorator.js';
export { Cacheable, type CacheableOptions, type CacheKeyOption } from './cache/cacheable.decorator.js';
export { JsonCodec, type RedisCodec } from './core/codec.js';
export { toMilliseconds, type Duration, type DurationUnit } from './core/duration.js';
export { CommandTimeoutError } from './core/command-timeout.js';
export { CodecError, CrossSlotError, InvalidOptionError, RedisPatternsError, UnknownConnectionError } from './core/errors.js';
export { encodeKeyPart, RedisKeys } from './core/keys.js';
export { MaxmemoryPolicyCheck, type KeyDurability } from './core/maxmemory-policy.check.js';
export { isCluster, type RedisClient } from './core/redis-client.js';
export { RedisConnections } from './core/redis-connections.service.js';
export { REDIS_CLIENT, REDIS_CODEC } from './core/redis-patterns.constants.js';
export { RedisPatternsModule } from './core/redis-patterns.module.js';
export { REDIS_PATTERNS_ASYNC_OPTIONS_TYPE, REDIS_PATTERNS_OPTIONS_TYPE, type RedisPatternsModuleExtras } from './core/redis-patterns.module-definition.js';
export {
  DEFAULT_CONNECTION,
  type ClientConnectionOptions,
  type ClusterConnectionOptions,
  type HostConnectionOptions,
  type ReconnectOptions,
  type RedisConnectionOptions,
  type RedisPatternsModuleOptions,
  type SentinelConnectionOptions,
  type UrlConnectionOptions,
} from './core/redis-patterns.options.js';
export { RedisScript, type ScriptArgument } from './core/redis-script.js';
export { OnMessage, type OnMessageTarget } from './pubsub/on-message.decorator.js';
export type { PubSubOptions } from './pubsub/pubsub.options.js';
export { PubSubService, type PatternMessage } from './pubsub/pubsub.service.js';
export { OnStreamMessage, type OnStreamMessageTarget } from './stream/on-stream-message.decorator.js';
export type { StreamConsumer } from './stream/stream.consumer.js';
export type { AddOptions, ConsumeOptions, DeadLetter, StreamHandler, StreamMessageInfo } from './stream/stream.interfaces.js';
export { StreamService } from './stream/stream.service.js';
export { RedisHealthIndicator, type RedisHealthOptions, type RedisHealthResult } from './core/redis.health.js';
export { InjectCodec, InjectRedis } from './core/redis.decorators.js';
export { RateLimit, SkipRateLimit } from './ratelimit/ratelimit.decorator.js';
export { RateLimitExceededException } from './ratelimit/ratelimit.exception.js';
export { RateLimitGuard, type RoutePolicy } from './ratelimit/ratelimit.guard.js';
export type { MethodRateLimitPolicy, RateLimitAlgorithm, RateLimitDecision, RateLimitHeaders, RateLimitOptions, RateLimitPolicy, RateLimitTracker } from './ratelimit/ratelimit.options.js';
export type { ResolvedPolicy } from './ratelimit/ratelimit.options-validator.js';
export { RateLimitService, RateLimitUnavailableError, type RateLimitCheck } from './ratelimit/ratelimit.service.js';
export { Lock } from './lock/lock.js';
export { LockLostError, LockNotAcquiredError, type LockBusyReason } from './lock/lock.exception.js';
export type { AcquireOptions, LockOptions, WithLockOptions } from './lock/lock.options.js';
export { LockService } from './lock/lock.service.js';
export { WithLock } from './lock/with-lock.decorator.js';
export { SessionCookies } from './session/session-cookies.js';
export { CurrentSession, SessionGuard } from './session/session.guard.js';
export type { Session, SessionCookieOptions, SessionEvent, SessionInfo, SessionOptions, SessionTimeouts } from './session/session.options.js';
export { isSessionId, SessionService } from './session/session.service.js';
export { Leaderboard, LeaderboardFullError } from './leaderboard/leaderboard.js';
export { getLeaderboardToken, InjectLeaderboard } from './leaderboard/leaderboard.decorator.js';
export { MAX_FIRST_COME_SCORE, type LeaderboardEntry, type LeaderboardOptions, type SubmitMode } from './leaderboard/leaderboard.options.js';
export { LeaderboardService } from './leaderboard/leaderboard.service.js';
export { BloomFilter } from './bloom/bloom-filter.js';
export { getBloomFilterToken, InjectBloomFilter } from './bloom/bloom.decorator.js';
export { BloomFilterGuard, BloomGuard, type BloomGuardSource } from './bloom/bloom.guard.js';
export type { BloomFilterInfo, BloomFilterOptions } from './bloom/bloom.options.js';
export { BloomFilterService } from './bloom/bloom.service.js';
