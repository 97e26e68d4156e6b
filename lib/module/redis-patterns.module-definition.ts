import { ConfigurableModuleBuilder, type Provider } from '@nestjs/common';
import type { RedisPatternsFeature } from '../core/feature.js';
import { FEATURES } from './features.js';
import type { RedisPatternsModuleExtras, RedisPatternsModuleOptions } from './redis-patterns.options.js';

/** The features with instances declared by name, seen without their option types. */
const namedFeatures = (FEATURES as readonly RedisPatternsFeature<string, unknown, string, unknown>[]).filter(
  (feature) => feature.named !== undefined,
);

/** `isGlobal: false`, and no named instance of any feature. */
const EXTRAS_DEFAULTS = Object.fromEntries([
  ['isGlobal', false],
  ...namedFeatures.map((feature) => [feature.named!.extra, {}]),
]) as RedisPatternsModuleExtras;

export const {
  ConfigurableModuleClass: RedisPatternsConfigurableModule,
  MODULE_OPTIONS_TOKEN: REDIS_PATTERNS_OPTIONS,
  OPTIONS_TYPE: REDIS_PATTERNS_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: REDIS_PATTERNS_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<RedisPatternsModuleOptions>({ moduleName: 'RedisPatterns' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createRedisPatternsOptions')
  .setExtras<RedisPatternsModuleExtras>(EXTRAS_DEFAULTS, (definition, extras) => {
    // Each named instance (a board, a filter) is a provider of its own, exported by its token.
    const named: (Provider & { provide: unknown })[] = namedFeatures.flatMap((feature) => {
      const declared = (extras as unknown as Record<string, Record<string, unknown> | undefined>)[feature.named!.extra] ?? {};
      return Object.entries(declared).map(([name, options]) => feature.named!.provider(name, options));
    });
    return {
      ...definition,
      global: extras.isGlobal,
      providers: [...(definition.providers ?? []), ...named],
      exports: [...(definition.exports ?? []), ...named.map((provider) => provider.provide as string)],
    };
  })
  .build();
