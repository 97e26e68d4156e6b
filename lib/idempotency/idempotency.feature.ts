import { DiscoveryService, MetadataScanner, type ModuleRef } from '@nestjs/core';
import { defineFeature } from '../core/feature.js';
import { IdempotencyInterceptor } from './idempotency.interceptor.js';
import { IDEMPOTENCY_OPTIONS, IDEMPOTENT_ROUTE, type IdempotencyOptions } from './idempotency.options.js';
import { resolveIdempotencyOptions, type ResolvedIdempotencyOptions } from './idempotency.options-validator.js';
import { IdempotencyService } from './idempotency.service.js';

/**
 * Idempotency keys: `IdempotencyService`, `@Idempotent()` and `IdempotencyInterceptor`, with the
 * `idempotency` section. Its records must not be evicted (an evicted one runs a request twice):
 * the app uses them when it has an `idempotency` section or an `@Idempotent()` controller.
 */
export const idempotencyFeature = defineFeature({
  name: 'idempotency keys',
  section: {
    name: 'idempotency',
    token: IDEMPOTENCY_OPTIONS,
    resolve: (given: IdempotencyOptions | undefined) => resolveIdempotencyOptions(given),
  },
  providers: [IdempotencyService, IdempotencyInterceptor],
  exports: [IdempotencyService, IdempotencyInterceptor],
  keys: {
    durability: 'durable',
    inUse: (ref) => ref.get<ResolvedIdempotencyOptions>(IDEMPOTENCY_OPTIONS).configured || hasIdempotentRoutes(ref),
  },
  keySegments: ['idem'],
});

/** Whether a controller, or a method of one, carries `@Idempotent()`. */
function hasIdempotentRoutes(ref: ModuleRef): boolean {
  const scanner = ref.get(MetadataScanner, { strict: false });
  return ref
    .get(DiscoveryService, { strict: false })
    .getControllers()
    .some(({ metatype }) => {
      const prototype = (metatype as { prototype?: Record<string, object> } | undefined)?.prototype;
      if (!metatype || !prototype) return false;
      if (Reflect.getMetadata(IDEMPOTENT_ROUTE, metatype) !== undefined) return true;
      return scanner.getAllMethodNames(prototype).some((name) => Reflect.getMetadata(IDEMPOTENT_ROUTE, prototype[name]) !== undefined);
    });
}
