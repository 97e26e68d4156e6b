import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { CacheService } from './cache.service.js';

/**
 * Options of {@link CacheEvict}. Give `key`, `keys`, `tags` and/or `allEntries`.
 *
 * @example
 * { keys: (id: string) => [`product:${id}`, 'products:all'], tags: ['search'] }
 */
export interface CacheEvictOptions<A extends unknown[] = unknown[]> {
  key?: string | ((...args: A) => string);
  keys?: readonly string[] | ((...args: A) => readonly string[]);
  tags?: readonly string[] | ((...args: A) => readonly string[]);
  /** Also delete every entry whose key starts with this prefix; `true` means the class's own default keys (`<Class>.`). */
  allEntries?: boolean | string;
  /** Evict before the method runs (and even if it throws). @default false: after it succeeds */
  beforeInvocation?: boolean;
}

/**
 * Deletes cache entries when the method is called: by default after it succeeds (not after a
 * throw), awaited before the method's promise resolves, so the caller reads its own write.
 *
 * @example
 * @CacheEvict({ key: (id: string) => `product:${id}`, tags: ['product-lists'] })
 * async remove(id: string): Promise<void> { ... }
 */
export function CacheEvict<A extends unknown[] = never[]>(options: CacheEvictOptions<A>): TypedMethodDecorator<A> {
  return (target, propertyKey, descriptor) =>
    wrapMethod('CacheEvict', CacheService, target, propertyKey, descriptor, async (cache, call, args, method) => {
      const typedArgs = args as A;
      const evict = async () => {
        const keys = [
          ...(options.key === undefined ? [] : [typeof options.key === 'function' ? options.key(...typedArgs) : options.key]),
          ...(typeof options.keys === 'function' ? options.keys(...typedArgs) : (options.keys ?? [])),
        ];
        if (keys.length > 0) await cache.delete(...keys);
        const tags = typeof options.tags === 'function' ? options.tags(...typedArgs) : options.tags;
        if (tags?.length) await cache.invalidateTags(tags);
        if (options.allEntries) await cache.clear(options.allEntries === true ? `${method.className}.` : options.allEntries);
      };
      if (options.beforeInvocation) {
        await evict();
        return call();
      }
      const result = await call();
      await evict();
      return result;
    });
}
