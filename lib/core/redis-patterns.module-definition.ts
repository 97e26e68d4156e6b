import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
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
}

export const {
  ConfigurableModuleClass: RedisPatternsConfigurableModule,
  MODULE_OPTIONS_TOKEN: REDIS_PATTERNS_OPTIONS,
  OPTIONS_TYPE: REDIS_PATTERNS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_PATTERNS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisPatternsModuleOptions>({ moduleName: 'RedisPatterns' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRedisPatternsOptions')
  .setExtras<RedisPatternsModuleExtras>({ isGlobal: false, leaderboards: {} }, (definition, extras) => {
    const boards: Provider[] = Object.entries(extras.leaderboards ?? {}).map(([name, options]) => ({
      provide: getLeaderboardToken(name),
      inject: [LeaderboardService],
      useFactory: (leaderboards: LeaderboardService) => leaderboards.board(name, options),
    }));
    return { ...definition, global: extras.isGlobal, providers: [...(definition.providers ?? []), ...boards], exports: [...(definition.exports ?? []), ...boards.map((board) => (board as { provide: string }).provide)] };
  })
  .build();
