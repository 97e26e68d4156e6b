import type { InjectionToken, Provider } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type { ResolvedCoreOptions } from './core.options.js';
import type { KeyDurability } from './maxmemory-policy.check.js';

/**
 * A feature's section of the module options (`cache: { ... }`): checked and given its defaults
 * once at startup, then provided under `token` for the feature's services to inject.
 */
export interface FeatureSection<Name extends string, Given, Resolved> {
  /** The section's name among the module options. */
  name: Name;
  token: InjectionToken;
  /** Checks the section as given (undefined when left out) and applies its defaults; throws an `InvalidOptionError` naming the option at fault. */
  resolve(given: Given | undefined, core: ResolvedCoreOptions): Resolved;
}

/**
 * Instances declared by name beside the module options (`leaderboards: { weekly: {...} }`), each
 * injectable with its own token (`@InjectLeaderboard('weekly')`).
 */
export interface NamedInstances<Extra extends string, Given> {
  /** The option, given beside the module options (not returned by `useFactory`: tokens must be known first). */
  extra: Extra;
  /** The provider of one instance; its `provide` token is exported too. */
  provider(name: string, options: Given): Provider & { provide: InjectionToken };
}

/**
 * Everything the module needs to know of a feature, declared once in its `<feature>.feature.ts`.
 * The module composes the list of features; adding a feature is a folder and one line there.
 *
 * @example
 * export const leaderboardFeature = defineFeature({
 *   name: 'leaderboards',
 *   providers: [LeaderboardService],
 *   exports: [LeaderboardService],
 *   named: { extra: 'leaderboards', provider: (name, options: LeaderboardOptions) => ({ provide: getLeaderboardToken(name), inject: [LeaderboardService], useFactory: (service: LeaderboardService) => service.board(name, options) }) },
 *   keys: { durability: 'durable', inUse: (ref) => ref.get(LeaderboardService).boardsMade > 0 },
 *   keySegments: ['lb'],
 * });
 */
export interface RedisPatternsFeature<Section extends string = string, Given = never, Extra extends string = string, NamedGiven = never> {
  /** How users call the feature, in logs and warnings. */
  name: string;
  section?: FeatureSection<Section, Given, unknown>;
  providers: readonly Provider[];
  exports: readonly InjectionToken[];
  named?: NamedInstances<Extra, NamedGiven>;
  /**
   * Whether the feature's keys may be evicted, for the `maxmemory-policy` check, and whether the
   * app uses the feature (asked once, after startup).
   */
  keys?: { durability: KeyDurability; inUse(moduleRef: ModuleRef): boolean };
  /**
   * The first part of each of its keys after the key prefix (for a key with a hash tag, the tag's
   * first part): `['c', 'ct']` for `<prefix>{c:<key>}` and `<prefix>{ct:<tag>}`. Tells which feature
   * a key belongs to (`RedisInsightsService.bigKeys`); a part belongs to one feature only.
   */
  keySegments?: readonly string[];
}

/**
 * Injection token of which feature each key segment belongs to, from the features' `keySegments`:
 * a `ReadonlyMap` of segment to feature name (see {@link RedisKeys.segmentOf}).
 */
export const KEY_SEGMENTS = Symbol('RedisPatterns:KeySegments');

/** Declares a feature, keeping the exact types of its section and named instances for the module's options. */
export function defineFeature<const Section extends string = never, Given = never, const Extra extends string = never, NamedGiven = never>(
  feature: RedisPatternsFeature<Section, Given, Extra, NamedGiven>,
): RedisPatternsFeature<Section, Given, Extra, NamedGiven> {
  return feature;
}
