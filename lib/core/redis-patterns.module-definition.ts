import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { RedisPatternsModuleOptions } from './redis-patterns.options.js';

export const {
  ConfigurableModuleClass: RedisPatternsConfigurableModule,
  MODULE_OPTIONS_TOKEN: REDIS_PATTERNS_OPTIONS,
  OPTIONS_TYPE: REDIS_PATTERNS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_PATTERNS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisPatternsModuleOptions>({ moduleName: 'RedisPatterns' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRedisPatternsOptions')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
