import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import { getBloomFilterToken } from '../bloom/bloom.decorator.js';
import type { BloomFilterOptions } from '../bloom/bloom.options.js';
import { BloomFilterService } from '../bloom/bloom.service.js';
import { getLeaderboardToken } from '../leaderboard/leaderboard.decorator.js';
import type { LeaderboardOptions } from '../leaderboard/leaderboard.options.js';
import { LeaderboardService } from '../leaderboard/leaderboard.service.js';
import type { RedisPatternsModuleOptions } from './redis-patterns.options.js';

/** Options that shape the module itself, given beside the others to forRoot() and forRootAsync(). */
export interface RedisPatternsModuleExtras {
  /** Make every provider injectable without importing the module again. @default false */
  isGlobal: boolean;
  /**
   * Boards to inject by name with `@InjectLeaderboard(name)`. Their options are checked at startup.
   * With `forRootAsync` they are given beside `useFactory`, not returned by it: injection tokens
   * must be known before any factory runs.
   * @example
   * leaderboards: { weekly: { period: 'week', retain: 4 } }
   */
  leaderboards: Record<string, LeaderboardOptions>;
  /**
   * Bloom filters to inject by name with `@InjectBloomFilter(name)`, and to use with
   * `@BloomGuard` and the cache's `bloom` option. Checked at startup; prefilled after it.
   * @example
   * bloomFilters: { products: { capacity: 100_000, errorRate: 0.001 } }
   */
  bloomFilters: Record<string, BloomFilterOptions>;
}

export const {
  ConfigurableModuleClass: RedisPatternsConfigurableModule,
  MODULE_OPTIONS_TOKEN: REDIS_PATTERNS_OPTIONS,
  OPTIONS_TYPE: REDIS_PATTERNS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_PATTERNS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisPatternsModuleOptions>({ moduleName: 'RedisPatterns' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRedisPatternsOptions')
  .setExtras<RedisPatternsModuleExtras>({ isGlobal: false, leaderboards: {}, bloomFilters: {} }, (definition, extras) => {
    const named: Provider[] = [
      ...Object.entries(extras.leaderboards ?? {}).map(([name, options]) => ({
        provide: getLeaderboardToken(name),
        inject: [LeaderboardService],
        useFactory: (leaderboards: LeaderboardService) => leaderboards.board(name, options),
      })),
      ...Object.entries(extras.bloomFilters ?? {}).map(([name, options]) => ({
        provide: getBloomFilterToken(name),
        inject: [BloomFilterService],
        useFactory: (blooms: BloomFilterService) => blooms.filter(name, options),
      })),
    ];
    const tokens = named.map((provider) => (provider as { provide: string }).provide);
    return { ...definition, global: extras.isGlobal, providers: [...(definition.providers ?? []), ...named], exports: [...(definition.exports ?? []), ...tokens] };
  })
  .build();
