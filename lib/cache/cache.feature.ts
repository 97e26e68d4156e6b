import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { defineFeature } from '../core/feature.js';
import { CacheInterceptor } from './cache.interceptor.js';
import { RedisKeyvStore } from './cache.keyv-store.js';
import { CACHE_OPTIONS, type CacheOptions } from './cache.options.js';
import { resolveCacheOptions, type ResolvedCacheOptions } from './cache.options-validator.js';
import { CacheService } from './cache.service.js';

/** Caching: `CacheService`, the method decorators, `CacheInterceptor` and the Keyv store, with the `cache` section. Its keys may be evicted. */
export const cacheFeature = defineFeature({
  name: 'cache',
  section: { name: 'cache', token: CACHE_OPTIONS, resolve: (given: CacheOptions | undefined) => resolveCacheOptions(given) },
  providers: [CacheService, CacheInterceptor, RedisKeyvStore],
  exports: [CacheService, CacheInterceptor, RedisKeyvStore],
  // Used when configured, or when some method is @Cacheable, @CachePut or @CacheEvict.
  keys: {
    durability: 'evictable',
    inUse: (ref) => ref.get<ResolvedCacheOptions>(CACHE_OPTIONS).configured || ref.get(DecoratedMethodsExplorer).usesService(CacheService),
  },
  // Entries, tags' sets, bulk-invalidation epochs, and the stream of invalidations.
  keySegments: ['c', 'ct', 'c-epoch', 'cache-invalidations'],
});
