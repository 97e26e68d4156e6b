import { Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { CoreModuleOptions, ResolvedCoreOptions } from '../core/core.options.js';
import { resolveCoreOptions } from '../core/core.options-validator.js';
import { coreExports, coreProviders } from '../core/core.providers.js';
import { RedisPatternsError } from '../core/errors.js';
import { KEY_SEGMENTS, type RedisPatternsFeature } from '../core/feature.js';
import { KEY_USERS, type KeyUser } from '../core/maxmemory-policy.check.js';
import { FEATURES } from './features.js';
import { REDIS_PATTERNS_OPTIONS, RedisPatternsConfigurableModule } from './redis-patterns.module-definition.js';
import { checkOptionNames } from './redis-patterns.options-validator.js';

/** The features, seen without their option types. */
const features = FEATURES as readonly RedisPatternsFeature<string, unknown, string, unknown>[];

/** The options as given, checked once for unknown names, then the core's resolved. */
const coreOptions: Provider = {
  provide: CORE_OPTIONS,
  inject: [REDIS_PATTERNS_OPTIONS],
  useFactory: (options: unknown) => resolveCoreOptions(checkOptionNames(options) as unknown as CoreModuleOptions),
};

/** Each feature's section, resolved once at startup (after the core's) and provided under its token. */
const sections: Provider[] = features.flatMap(({ section }) =>
  section
    ? [
        {
          provide: section.token,
          inject: [REDIS_PATTERNS_OPTIONS, CORE_OPTIONS],
          useFactory: (options: Record<string, unknown>, core: ResolvedCoreOptions) => section.resolve(options[section.name], core),
        },
      ]
    : [],
);

/** What each feature's keys need, for the maxmemory-policy check. */
const keyUsers: Provider = {
  provide: KEY_USERS,
  useValue: features.flatMap(({ name, keys }): KeyUser[] => (keys ? [{ feature: name, ...keys }] : [])),
};

/** Which feature each key segment belongs to; a segment claimed twice is a bug of the features. */
const keySegments: Provider = {
  provide: KEY_SEGMENTS,
  useFactory: (): ReadonlyMap<string, string> => {
    const owners = new Map<string, string>();
    for (const { name, keySegments: segments = [] } of features)
      for (const segment of segments) {
        const owner = owners.get(segment);
        if (owner !== undefined) throw new RedisPatternsError(`Key segment "${segment}" is claimed by both ${owner} and ${name}.`);
        owners.set(segment, name);
      }
    return owners;
  },
};

/**
 * The module: the core (connections, keys, codec, health), and every feature of `FEATURES`.
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
  providers: [coreOptions, ...coreProviders, ...sections, keyUsers, keySegments, ...features.flatMap((feature) => feature.providers)],
  // Sections too: a guard or interceptor a controller uses is made in the controller's module.
  exports: [...coreExports, ...features.flatMap((feature) => [...(feature.section ? [feature.section.token] : []), ...feature.exports])],
})
export class RedisPatternsModule extends RedisPatternsConfigurableModule {}
