import { Inject } from '@nestjs/common';

/** The injection token of the filter declared as `name` under `bloomFilters` in the module options. */
export function getBloomFilterToken(name: string): string {
  return `RedisPatterns:BloomFilter:${name}`;
}

/**
 * Injects a filter declared under `bloomFilters` in the module options.
 * @example
 * constructor(@InjectBloomFilter('products') private readonly products: BloomFilter) {}
 */
export function InjectBloomFilter(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getBloomFilterToken(name));
}

/** The metadata `@BloomGuard` leaves on a handler or controller: the filter and where the item comes from. */
export const BLOOM_GUARD = 'redis-patterns:bloom-guard';
