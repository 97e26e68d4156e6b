import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { resolveCacheKey, type CacheableOptions } from './cacheable.decorator.js';
import { CacheService } from './cache.service.js';

/** Options of {@link CachePut}: the entry to write, as for `@Cacheable`. */
export type CachePutOptions<A extends unknown[] = unknown[], R = unknown> = Omit<CacheableOptions<A, R>, 'condition' | 'lock' | 'bloom'>;

/**
 * Always runs the method, then stores its result (awaited before the method's promise resolves,
 * so the caller reads its own write). A load of the same key in flight will not overwrite it.
 *
 * @example
 * @CachePut<[Product], Product>({ key: (product) => `product:${product.id}` })
 * async update(product: Product): Promise<Product> { ... }
 */
export function CachePut<A extends unknown[] = never[], R = unknown>(options: CachePutOptions<A, R> = {}): TypedMethodDecorator<A, R> {
  const { key, tags, unless, ...entryOptions } = options;
  return (target, propertyKey, descriptor) =>
    wrapMethod('CachePut', CacheService, target, propertyKey, descriptor, async (cache, call, args, method) => {
      const typedArgs = args as A;
      const cacheKey = resolveCacheKey(key, typedArgs, method, 'CachePut');
      const result = (await call()) as R;
      if (unless?.(result)) return result;
      await cache.set(cacheKey, result, { ...entryOptions, tags: typeof tags === 'function' ? tags(typedArgs, result) : tags });
      return result;
    });
}
