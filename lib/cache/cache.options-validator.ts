import { toMilliseconds, toPositiveMilliseconds, toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toBoolean, toPositiveInteger } from '../core/validation.js';
import type { CacheOptions, L1Options, StampedeOptions } from './cache.options.js';

/** The cache options after validation, durations in milliseconds. */
export interface ResolvedCacheOptions {
  /** Whether the module options have a `cache` section (the app uses caching). */
  configured: boolean;
  ttlMs: number;
  jitter: number;
  staleWhileRevalidateMs: number;
  cacheNull: boolean;
  nullTtlMs: number;
  l1: {
    enabled: boolean;
    maxEntries: number;
    maxBytes: number;
    ttlMs: number;
    shared: boolean;
    byDefault: boolean;
    invalidation: 'bus' | 'tracking';
    heartbeatMs: number;
  };
  stampede: { lock: boolean; lockTtlMs: number; waitMs: number };
  /** The bus's transport; false without a bus (invalidation off, or Redis's tracking instead). */
  invalidation: false | 'pubsub' | 'stream';
}

/** Every default of the cache options, in one place. */
export const DEFAULT_CACHE_OPTIONS = {
  ttl: '1m',
  jitter: 0.1,
  staleWhileRevalidate: 0,
  cacheNull: false,
  nullTtl: '30s',
  l1: { maxEntries: 10_000, maxBytes: 64 * 1024 * 1024, ttl: '30s', shared: false, default: false, invalidation: 'bus', heartbeat: '1s' },
  stampede: { lock: true, lockTtl: '10s', wait: '5s' },
  invalidation: true,
} as const;

/** Validates `cache` of the module options, once, at startup. */
export function resolveCacheOptions(configured: CacheOptions | undefined): ResolvedCacheOptions {
  const options = configured ?? {};
  knownRecord('cache', options, ['ttl', 'jitter', 'staleWhileRevalidate', 'cacheNull', 'nullTtl', 'l1', 'stampede', 'invalidation']);
  const defaults = DEFAULT_CACHE_OPTIONS;
  const l1: L1Options | undefined =
    options.l1 === false
      ? undefined
      : knownRecord('cache.l1', options.l1, ['maxEntries', 'maxBytes', 'ttl', 'shared', 'default', 'invalidation', 'heartbeat']);
  const stampede: StampedeOptions = knownRecord('cache.stampede', options.stampede, ['lock', 'lockTtl', 'wait']);
  const l1Invalidation = invalidationMode(l1, options.invalidation);
  const jitter = toJitter('cache.jitter', options.jitter ?? defaults.jitter);
  return {
    configured: configured !== undefined,
    ttlMs: toPositiveMilliseconds(options.ttl ?? defaults.ttl, 'cache.ttl'),
    jitter,
    staleWhileRevalidateMs: toMilliseconds(options.staleWhileRevalidate ?? defaults.staleWhileRevalidate, 'cache.staleWhileRevalidate'),
    cacheNull: toBoolean('cache.cacheNull', options.cacheNull ?? defaults.cacheNull),
    nullTtlMs: toPositiveMilliseconds(options.nullTtl ?? defaults.nullTtl, 'cache.nullTtl'),
    l1: {
      enabled: l1 !== undefined,
      maxEntries: toPositiveInteger('cache.l1.maxEntries', l1?.maxEntries ?? defaults.l1.maxEntries),
      maxBytes: toPositiveInteger('cache.l1.maxBytes', l1?.maxBytes ?? defaults.l1.maxBytes),
      ttlMs: toTimerMilliseconds(l1?.ttl ?? defaults.l1.ttl, 'cache.l1.ttl'),
      shared: toBoolean('cache.l1.shared', l1?.shared ?? defaults.l1.shared),
      byDefault: toBoolean('cache.l1.default', l1?.default ?? defaults.l1.default),
      invalidation: l1Invalidation,
      heartbeatMs: toTimerMilliseconds(l1?.heartbeat ?? defaults.l1.heartbeat, 'cache.l1.heartbeat'),
    },
    stampede: {
      lock: toBoolean('cache.stampede.lock', stampede.lock ?? defaults.stampede.lock),
      lockTtlMs: toTimerMilliseconds(stampede.lockTtl ?? defaults.stampede.lockTtl, 'cache.stampede.lockTtl'),
      waitMs: toTimerMilliseconds(stampede.wait ?? defaults.stampede.wait, 'cache.stampede.wait', { allowZero: true }),
    },
    invalidation: l1Invalidation === 'tracking' ? false : invalidationTransport(options.invalidation ?? defaults.invalidation),
  };
}

/** A TTL spread: a fraction from 0 to below 1. */
export function toJitter(option: string, jitter: unknown): number {
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter < 1))
    throw new InvalidOptionError(option, 'a fraction from 0 to below 1, such as 0.1', jitter);
  return jitter;
}

/** `cache.l1.invalidation`; with 'tracking', `cache.invalidation` (the bus's transport) must be left unset. */
function invalidationMode(l1: L1Options | undefined, busTransport: unknown): ResolvedCacheOptions['l1']['invalidation'] {
  const mode = l1?.invalidation ?? DEFAULT_CACHE_OPTIONS.l1.invalidation;
  if (mode !== 'bus' && mode !== 'tracking') throw new InvalidOptionError('cache.l1.invalidation', "'bus' or 'tracking'", mode);
  if (mode === 'tracking' && busTransport !== undefined)
    throw new InvalidOptionError(
      'cache.invalidation',
      "no value with cache.l1.invalidation 'tracking' (Redis reports the changes: there is no bus)",
      busTransport,
    );
  return mode;
}

function invalidationTransport(value: unknown): ResolvedCacheOptions['invalidation'] {
  if (value === true || value === 'pubsub') return 'pubsub';
  if (value === false || value === 'stream') return value;
  throw new InvalidOptionError('cache.invalidation', "true, false, 'pubsub' or 'stream'", value);
}
