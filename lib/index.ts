export type { CacheOptions, L1Options, StampedeOptions } from './cache/cache.options.js';
export {
  CacheService,
  escapeCachePattern,
  type CachedEntry,
  type CacheEntryOptions,
  type CacheStats,
  type CacheStatus,
  type WarmEntry,
} from './cache/cache.service.js';
export { CacheEvict, type CacheEvictOptions } from './cache/cache-evict.decorator.js';
export { CacheInterceptor } from './cache/cache.interceptor.js';
export { RedisKeyvStore, type RedisKeyvStoreOptions } from './cache/cache.keyv-store.js';
export { InvalidationAbortedError, InvalidationIncompleteError, type BulkInvalidationOptions } from './cache/cache.errors.js';
export { CacheTTL, NoCache } from './cache/cache-ttl.decorator.js';
export { CachePut, type CachePutOptions } from './cache/cache-put.decorator.js';
export { Cacheable, type CacheableOptions, type CacheKeyOption } from './cache/cacheable.decorator.js';
export { JsonCodec, type RedisCodec } from './core/codec.js';
export { toMilliseconds, type Duration, type DurationUnit } from './core/duration.js';
export { CommandTimeoutError } from './core/command-timeout.js';
export { CommandInFlightLostError } from './core/cluster-delivery.js';
export { describeOutage, isStoreFailure, outageOf, RedisUnavailableError, type OutageKind } from './core/store-failure.js';
export {
  CodecError,
  CrossSlotError,
  InvalidOptionError,
  MalformedTextError,
  RedisPatternsError,
  UnknownConnectionError,
} from './core/errors.js';
export { encodeKeyPart, RedisKeys } from './core/keys.js';
export { MaxmemoryPolicyCheck, type KeyDurability } from './core/maxmemory-policy.check.js';
export { ClusterNotConnectedError, isCluster, type RedisClient } from './core/redis-client.js';
export { RedisConnections } from './core/redis-connections.service.js';
export { REDIS_CLIENT, REDIS_CODEC } from './core/core.constants.js';
export { RedisPatternsModule } from './module/redis-patterns.module.js';
export { REDIS_PATTERNS_ASYNC_OPTIONS_TYPE, REDIS_PATTERNS_OPTIONS_TYPE } from './module/redis-patterns.module-definition.js';
export type { RedisPatternsModuleExtras, RedisPatternsModuleOptions } from './module/redis-patterns.options.js';
export {
  DEFAULT_CONNECTION,
  type ClientConnectionOptions,
  type ClusterConnectionOptions,
  type CoreModuleOptions,
  type HostConnectionOptions,
  type ReconnectOptions,
  type RedisConnectionOptions,
  type SentinelConnectionOptions,
  type UrlConnectionOptions,
} from './core/core.options.js';
export { RedisScript, type ScriptArgument } from './core/redis-script.js';
export { OnMessage, type OnMessageTarget } from './pubsub/on-message.decorator.js';
export type { PubSubOptions } from './pubsub/pubsub.options.js';
export { PubSubService, type PatternMessage } from './pubsub/pubsub.service.js';
export { OnStreamMessage, type OnStreamMessageTarget } from './stream/on-stream-message.decorator.js';
export type { StreamConsumer } from './stream/stream.consumer.js';
export type { StreamTail } from './stream/stream.tail.js';
export type {
  AddOptions,
  ConsumeOptions,
  DeadLetter,
  StreamGroupBacklog,
  StreamHandler,
  StreamMessageInfo,
  TailOptions,
} from './stream/stream.interfaces.js';
export { StreamService } from './stream/stream.service.js';
export { RedisHealthIndicator, type HealthDetailsPart, type RedisHealthOptions, type RedisHealthResult } from './core/redis.health.js';
export {
  DURATION_BUCKETS,
  RedisMetrics,
  type CollectedMetric,
  type HistogramDefinition,
  type MetricLabels,
  type MetricsExporter,
  type MetricsHistogram,
} from './core/metrics.js';
export { RedisTracing, SPAN_NAME_PREFIX, type SpanAttributes, type SpanOptions, type SpanRunner } from './core/tracing.js';
export { METRICS_OPTIONS, type MetricsOptions } from './metrics/metrics.options.js';
export { INSIGHTS_OPTIONS, type InsightsOptions } from './insights/insights.options.js';
export {
  RedisInsightsService,
  type BigKeysOptions,
  type InsightsCallOptions,
  type InsightsNodeOptions,
} from './insights/insights.service.js';
export type { RedisNodeSnapshot, RedisNodeUnavailable, RedisServerSnapshot, RedisServerSummary } from './insights/insights.snapshot.js';
export type { RedisNodeSlowlog, RedisSlowlog, RedisSlowlogEntry } from './insights/insights.slowlog.js';
export type { RedisBigKey, RedisBigKeysReport, RedisFeatureKeys } from './insights/insights.big-keys.js';
export { InjectCodec, InjectRedis } from './core/redis.decorators.js';
export { RateLimit, SkipRateLimit } from './ratelimit/ratelimit.decorator.js';
export { RateLimitExceededException } from './ratelimit/ratelimit.exception.js';
export { RateLimitGuard, type RoutePolicy } from './ratelimit/ratelimit.guard.js';
export type {
  MethodRateLimitPolicy,
  RateLimitAlgorithm,
  RateLimitDecision,
  RateLimitHeaders,
  RateLimitOptions,
  RateLimitPolicy,
  RateLimitTracker,
} from './ratelimit/ratelimit.options.js';
export type { ResolvedPolicy } from './ratelimit/ratelimit.options-validator.js';
export { RateLimitService, RateLimitUnavailableError, type RateLimitCheck } from './ratelimit/ratelimit.service.js';
export { RedisThrottlerStorage } from './ratelimit/ratelimit.throttler-storage.js';
export { Lock } from './lock/lock.js';
export { LockLostError, LockNotAcquiredError, type LockBusyReason } from './lock/lock.exception.js';
export type { AcquireOptions, LockOptions, WithLockOptions } from './lock/lock.options.js';
export { LockService } from './lock/lock.service.js';
export { ReadWriteLock, ReadWriteSide } from './lock/lock.read-write.js';
export { WithLock } from './lock/with-lock.decorator.js';
export { Semaphore, type SemaphoreAcquireOptions } from './lock/lock.semaphore.js';
export { WithSemaphore, type WithSemaphoreOptions } from './lock/with-semaphore.decorator.js';
export { LeaderService } from './schedule/leader.service.js';
export { LeaderElection, type Leadership } from './schedule/schedule.leader.js';
export { OncePerFire, OnlyOnLeader } from './schedule/schedule.decorators.js';
export type {
  JobCounts,
  JobRun,
  JobRunOutcome,
  LeaderOptions,
  OncePerFireOptions,
  RuntimeJobOptions,
  ScheduleClock,
  ScheduleOptions,
} from './schedule/schedule.options.js';
export type { CurrentFire, FireOutcome } from './schedule/schedule.runner.js';
export { ScheduledJobsService, type OncePerFireTick } from './schedule/schedule.service.js';
export { SessionCookies } from './session/session-cookies.js';
export { CurrentSession, SessionGuard } from './session/session.guard.js';
export type {
  OnSessionLimit,
  Session,
  SessionCookieOptions,
  SessionCreateOptions,
  SessionEvent,
  SessionInfo,
  SessionLimits,
  SessionOptions,
  SessionRegenerateOptions,
  SessionTimeouts,
} from './session/session.options.js';
export { SessionLimitError } from './session/session.errors.js';
export { isSessionId, SessionService } from './session/session.service.js';
export { Leaderboard, LeaderboardFullError } from './leaderboard/leaderboard.js';
export { getLeaderboardToken, InjectLeaderboard } from './leaderboard/leaderboard.decorator.js';
export {
  MAX_FIRST_COME_SCORE,
  type LeaderboardEntry,
  type LeaderboardOptions,
  type SubmitMode,
} from './leaderboard/leaderboard.options.js';
export { LeaderboardService } from './leaderboard/leaderboard.service.js';
export { UniqueCounter } from './unique/unique.counter.js';
export { CountUnique, getUniqueCounterToken, InjectUniqueCounter, type CountUniqueOptions } from './unique/unique.decorator.js';
export type { PeriodRange, UniqueCounterOptions } from './unique/unique.options.js';
export { UniqueCounterService } from './unique/unique.service.js';
export { ActivityTracker, type ActivityId } from './activity/activity.tracker.js';
export { getActivityTrackerToken, InjectActivityTracker } from './activity/activity.decorator.js';
export type { ActivityTrackerOptions, RetentionPeriod, RetentionReport } from './activity/activity.options.js';
export { ActivityService } from './activity/activity.service.js';
export { BloomFilter } from './bloom/bloom-filter.js';
export { getBloomFilterToken, InjectBloomFilter } from './bloom/bloom.decorator.js';
export { BloomFilterGuard, BloomGuard, type BloomGuardSource } from './bloom/bloom.guard.js';
export type { BloomFilterInfo, BloomFilterOptions, BloomItems } from './bloom/bloom.options.js';
export { BloomFilterService } from './bloom/bloom.service.js';
export { GeoIndex } from './geo/geo-index.js';
export { getGeoIndexToken, InjectGeoIndex } from './geo/geo.decorator.js';
export type { GeoCenter, GeoCoordinates, GeoIndexOptions, GeoMatch, GeoPoint, GeoSearchOptions, GeoUnit } from './geo/geo.options.js';
export { GeoService } from './geo/geo.service.js';
export { Queue } from './queue/queue.js';
export { getQueueToken, InjectQueue, OnQueueJob, type OnQueueJobTarget } from './queue/queue.decorator.js';
export type { QueueKeyset } from './queue/queue.keys.js';
export type {
  AddJobOptions,
  DeadJob,
  ProcessOptions,
  QueueBackoff,
  QueueCounts,
  QueueHandler,
  QueueJobInfo,
  QueueOptions,
} from './queue/queue.options.js';
export { QueueService, QueueShuttingDownError } from './queue/queue.service.js';
export { QueueWorker, type QueueWorkerEvents } from './queue/queue.worker.js';
export { Transaction, type TransactionArgument } from './transaction/transaction.context.js';
export { TransactionConflictError, TransactionPoolTimeoutError } from './transaction/transaction.exception.js';
export type { OptimisticOptions, TransactionOptions, TransactionResult } from './transaction/transaction.options.js';
export { TransactionPoolClosedError } from './transaction/transaction.pool.js';
export { TransactionCommandError, TransactionService } from './transaction/transaction.service.js';
export { WriteBehind } from './writebehind/write-behind.decorator.js';
export type { WriteBehindLag, WriteBehindOptions } from './writebehind/write-behind.options.js';
export { WriteBehindService } from './writebehind/write-behind.service.js';
export { Idempotent } from './idempotency/idempotent.decorator.js';
export { IdempotencyInterceptor } from './idempotency/idempotency.interceptor.js';
export { IdempotencyService, type IdempotencyBegin, type IdempotentResult } from './idempotency/idempotency.service.js';
export { IdempotencyClaim, type ClaimEnd, type IdempotencyRecord, type StoredHeader } from './idempotency/idempotency.claim.js';
export {
  IdempotencyConflictError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyMissingError,
  IdempotencyKeyReusedError,
} from './idempotency/idempotency.errors.js';
export {
  IDEMPOTENCY_OPTIONS,
  type IdempotencyOptions,
  type IdempotencyRequest,
  type IdempotentOptions,
  type IdempotentRunOptions,
} from './idempotency/idempotency.options.js';
