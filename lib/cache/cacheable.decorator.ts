import { RedisPatternsError } from '../core/errors.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { argumentsKey } from './cache-key.js';
import { CacheService, type CacheEntryOptions } from './cache.service.js';

/** Which entry a decorated call uses: a fixed key, or a function of the method's arguments. */
export type CacheKeyOption<A extends unknown[]> = string | ((...args: A) => string);

/**
 * Options of {@link Cacheable}. Unset ones come from the module's `cache` options.
 *
 * @example
 * @Cacheable<[string], Product>({
 *   key: (id) => `product:${id}`,
 *   ttl: '10m',
 *   tags: ([id], product) => ['products', `brand:${product.brandId}`],
 *   unless: (product) => product.draft,
 * })
 */
export interface CacheableOptions<A extends unknown[] = unknown[], R = unknown> extends Omit<CacheEntryOptions<R>, 'tags' | 'bloom'> {
  /** @default `<Class>.<method>:<arguments>` (stable: object key order does not matter) */
  key?: CacheKeyOption<A>;
  tags?: readonly string[] | ((args: A, result: R) => readonly string[]);
  /** When false, the call bypasses the cache entirely. */
  condition?: (...args: A) => boolean;
  /**
   * A Bloom filter of the items that exist: a call whose item is certainly absent answers null
   * without running the method. The item is the cache key, or what `item` returns for the arguments.
   * @example
   * @Cacheable({ key: (id: string) => `product:${id}`, bloom: { filter: 'products', item: (id: string) => id } })
   */
  bloom?: string | { filter: string; item: (...args: A) => string };
}

/**
 * Caches what the method returns (cache-aside with stampede protection, see `CacheService.getOrSet`).
 * Works on any method of any Nest provider or controller, sync or async; the decorated method
 * always returns a Promise. `this` and the method's other metadata are kept.
 *
 * @example
 * @Injectable()
 * export class ProductService {
 *   @Cacheable({ key: (id: string) => `product:${id}`, ttl: '10m', cacheNull: true })
 *   async find(id: string): Promise<Product | null> { ... }
 * }
 */
export function Cacheable<A extends unknown[] = never[], R = unknown>(options: CacheableOptions<A, R> = {}): TypedMethodDecorator<A, R> {
  const { key, tags, condition, bloom, ...entryOptions } = options;
  // Built once, unless the tags or the Bloom item depend on the call.
  const perCall = typeof tags === 'function' || (typeof bloom === 'object' && bloom !== null);
  const fixedOptions: CacheEntryOptions<R> | undefined = perCall
    ? undefined
    : { ...entryOptions, tags: tags as readonly string[] | undefined, bloom: bloom as string | undefined };
  return (target, propertyKey, descriptor) =>
    wrapMethod('Cacheable', CacheService, target, propertyKey, descriptor, (cache, call, args, method) => {
      // Not an async function: an L1 hit costs one resolved promise. Errors still reject.
      try {
        const typedArgs = args as A;
        if (condition && !condition(...typedArgs)) return Promise.resolve(call());
        const callOptions = fixedOptions ?? {
          ...entryOptions,
          tags: typeof tags === 'function' ? (result: R) => tags(typedArgs, result) : tags,
          bloom: typeof bloom === 'object' ? { filter: bloom.filter, item: bloom.item(...typedArgs) } : bloom,
        };
        return cache.getOrSet(resolveCacheKey(key, typedArgs, method, 'Cacheable'), call as () => R, callOptions);
      } catch (error) {
        return Promise.reject(error);
      }
    });
}

/** The entry key of one call: the option, or `<Class>.<method>:<arguments>`. */
export function resolveCacheKey<A extends unknown[]>(
  key: CacheKeyOption<A> | undefined,
  args: A,
  method: { className: string; methodName: string },
  decorator: string,
): string {
  try {
    if (typeof key === 'string') return key;
    if (typeof key === 'function') return key(...args);
    return `${method.className}.${method.methodName}:${argumentsKey(args)}`;
  } catch (error) {
    throw new RedisPatternsError(
      `@${decorator} on ${method.className}.${method.methodName} could not build its cache key: ${(error as Error)?.message ?? error}`,
      { cause: error },
    );
  }
}
