import type { InjectionToken, Provider } from '@nestjs/common';
import { CORE_OPTIONS, REDIS_CLIENT, REDIS_CODEC } from './core.constants.js';
import type { ResolvedCoreOptions } from './core.options.js';
import { DecoratedMethodsExplorer } from './decorated-methods.explorer.js';
import { RedisKeys } from './keys.js';
import { MaxmemoryPolicyCheck } from './maxmemory-policy.check.js';
import { RedisMetrics } from './metrics.js';
import { RedisConnections } from './redis-connections.service.js';
import { RedisHealthIndicator } from './redis.health.js';
import { RedisTracing } from './tracing.js';

/**
 * What every feature stands on: connections, the main client, the codec, keys, the
 * `maxmemory-policy` check, the health indicator, the metrics surface and the tracing hook.
 * `CORE_OPTIONS` and `KEY_USERS` are provided by the module, which knows the options and the features.
 */
export const coreProviders: readonly Provider[] = [
  RedisConnections,
  { provide: REDIS_CLIENT, inject: [RedisConnections], useFactory: (connections: RedisConnections) => connections.get() },
  { provide: REDIS_CODEC, inject: [CORE_OPTIONS], useFactory: (options: ResolvedCoreOptions) => options.codec },
  { provide: RedisKeys, inject: [CORE_OPTIONS], useFactory: (options: ResolvedCoreOptions) => new RedisKeys(options.keyPrefix) },
  MaxmemoryPolicyCheck,
  RedisHealthIndicator,
  DecoratedMethodsExplorer,
  RedisMetrics,
  RedisTracing,
];

/** What the module exports of the core. */
export const coreExports: readonly InjectionToken[] = [
  CORE_OPTIONS,
  RedisConnections,
  REDIS_CLIENT,
  REDIS_CODEC,
  RedisKeys,
  MaxmemoryPolicyCheck,
  RedisHealthIndicator,
  RedisMetrics,
  RedisTracing,
];
