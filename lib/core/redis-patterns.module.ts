import { Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CacheInterceptor } from '../cache/cache.interceptor.js';
import { CacheService } from '../cache/cache.service.js';
import { OnMessageExplorer } from '../pubsub/on-message.explorer.js';
import { BloomFilterGuard } from '../bloom/bloom.guard.js';
import { BloomFilterService } from '../bloom/bloom.service.js';
import { LeaderboardService } from '../leaderboard/leaderboard.service.js';
import { LockService } from '../lock/lock.service.js';
import { PubSubService } from '../pubsub/pubsub.service.js';
import { RateLimitGuard } from '../ratelimit/ratelimit.guard.js';
import { SessionCookies } from '../session/session-cookies.js';
import { SessionGuard } from '../session/session.guard.js';
import { SessionService } from '../session/session.service.js';
import { RateLimitService } from '../ratelimit/ratelimit.service.js';
import { OnStreamMessageExplorer } from '../stream/on-stream-message.explorer.js';
import { StreamService } from '../stream/stream.service.js';
import { DecoratedMethodsExplorer } from './decorated-methods.explorer.js';
import { RedisKeys } from './keys.js';
import { MaxmemoryPolicyCheck } from './maxmemory-policy.check.js';
import { REDIS_CLIENT, REDIS_CODEC, RESOLVED_OPTIONS } from './redis-patterns.constants.js';
import { REDIS_PATTERNS_OPTIONS, RedisPatternsConfigurableModule } from './redis-patterns.module-definition.js';
import type { RedisPatternsModuleOptions, ResolvedRedisPatternsOptions } from './redis-patterns.options.js';
import { resolveModuleOptions } from './redis-patterns.options-validator.js';
import { RedisConnections } from './redis-connections.service.js';
import { RedisHealthIndicator } from './redis.health.js';

const providers: Provider[] = [
  {
    provide: RESOLVED_OPTIONS,
    inject: [REDIS_PATTERNS_OPTIONS],
    useFactory: (options: RedisPatternsModuleOptions) => resolveModuleOptions(options),
  },
  RedisConnections,
  { provide: REDIS_CLIENT, inject: [RedisConnections], useFactory: (connections: RedisConnections) => connections.get() },
  { provide: REDIS_CODEC, inject: [RESOLVED_OPTIONS], useFactory: (options: ResolvedRedisPatternsOptions) => options.codec },
  { provide: RedisKeys, inject: [RESOLVED_OPTIONS], useFactory: (options: ResolvedRedisPatternsOptions) => new RedisKeys(options.keyPrefix) },
  MaxmemoryPolicyCheck,
  RedisHealthIndicator,
  DecoratedMethodsExplorer,
  PubSubService,
  OnMessageExplorer,
  StreamService,
  OnStreamMessageExplorer,
  CacheService,
  CacheInterceptor,
  RateLimitService,
  RateLimitGuard,
  LockService,
  SessionService,
  SessionCookies,
  SessionGuard,
  LeaderboardService,
  BloomFilterService,
  BloomFilterGuard,
];

/**
 * The module: connections, keys, codec and health, and every feature built on them.
 * Options are validated when the module initialises; an invalid one stops startup with an
 * `InvalidOptionError` that names it.
 *
 * @example
 * @Module({
 *   imports: [
 *     RedisPatternsModule.forRoot({ connection: { url: process.env.REDIS_URL }, isGlobal: true }),
 *   ],
 * })
 * export class AppModule {}
 *
 * @example
 * RedisPatternsModule.forRootAsync({
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ connection: { url: config.getOrThrow('REDIS_URL') } }),
 * });
 */
@Module({
  imports: [DiscoveryModule],
  providers,
  exports: [RESOLVED_OPTIONS, RedisConnections, REDIS_CLIENT, REDIS_CODEC, RedisKeys, MaxmemoryPolicyCheck, RedisHealthIndicator, PubSubService, StreamService, CacheService, CacheInterceptor, RateLimitService, RateLimitGuard, LockService, SessionService, SessionCookies, SessionGuard, LeaderboardService, BloomFilterService, BloomFilterGuard],
})
export class RedisPatternsModule extends RedisPatternsConfigurableModule {}
