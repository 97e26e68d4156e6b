import type { CoreModuleOptions } from '../core/core.options.js';
import type { RedisPatternsFeature } from '../core/feature.js';
import type { FEATURES } from './features.js';

type Features = typeof FEATURES;

/** `{ cache?: CacheOptions }` for a feature with a `cache` section; nothing for one without. */
type SectionOf<F> =
  F extends RedisPatternsFeature<infer Section, infer Given, string, unknown>
    ? [Section] extends [never]
      ? unknown
      : { [K in Section]?: Given }
    : unknown;

/** `{ leaderboards: Record<string, LeaderboardOptions> }` for a feature with named instances. */
type NamedOf<F> =
  F extends RedisPatternsFeature<string, unknown, infer Extra, infer Given>
    ? [Extra] extends [never]
      ? unknown
      : { [K in Extra]: Record<string, Given> }
    : unknown;

/** Every feature's section, as one type. */
type SectionsOf<T extends readonly unknown[]> = T extends readonly [infer Head, ...infer Rest]
  ? SectionOf<Head> & SectionsOf<Rest>
  : unknown;

/** Every feature's named instances, as one type. */
type NamedInstancesOf<T extends readonly unknown[]> = T extends readonly [infer Head, ...infer Rest]
  ? NamedOf<Head> & NamedInstancesOf<Rest>
  : unknown;

/**
 * Options of `RedisPatternsModule.forRoot()` / `forRootAsync()`: the core options (connection,
 * keys, timeouts, codec), and one optional section per feature (`pubsub`, `cache`, `rateLimit`,
 * `lock`, `session`), each documented with the feature's own options type.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection: { url: process.env.REDIS_URL }, keyPrefix: 'shop:', cache: { ttl: '5m' } });
 */
export type RedisPatternsModuleOptions = CoreModuleOptions & SectionsOf<Features>;

/**
 * Options that shape the module itself, given beside the others to forRoot() and forRootAsync():
 * `isGlobal`, and the instances features declare by name (`leaderboards`, `bloomFilters`), which
 * are injectable with their own tokens. With `forRootAsync` they are given beside `useFactory`,
 * not returned by it: injection tokens must be known before any factory runs.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, isGlobal: true, leaderboards: { weekly: { period: 'week', retain: 4 } }, bloomFilters: { products: { capacity: 100_000, errorRate: 0.001 } } });
 */
export type RedisPatternsModuleExtras = { isGlobal: boolean } & NamedInstancesOf<Features>;
