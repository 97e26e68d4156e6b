import { CacheInterceptor as CacheManagerInterceptor, CacheTTL as CacheManagerTTL } from '@nestjs/cache-manager';
import { Controller, Get, UseInterceptors } from '@nestjs/common';
import { CacheService } from '../lib/index.js';
import { ProductsRepository } from './products.repository.js';

/**
 * A route as an @nestjs/cache-manager app writes it, unchanged: its `CacheInterceptor` and
 * `@CacheTTL` in milliseconds. Its `CacheModule` runs on `RedisKeyvStore` (see AppModule), so the
 * response is an entry of the library's cache, which `CacheService` reads too.
 */
@Controller('catalog/overview')
export class CatalogOverviewController {
  constructor(
    private readonly products: ProductsRepository,
    private readonly cache: CacheService,
  ) {}

  /** `curl -i http://127.0.0.1:3000/catalog/overview`: `X-Cache: MISS`, then `HIT` for 30 seconds without a query. */
  @Get()
  @UseInterceptors(CacheManagerInterceptor)
  @CacheManagerTTL(30_000)
  overview(): Promise<{ category: string; products: number }[]> {
    return this.products.summary();
  }

  /** `curl http://127.0.0.1:3000/catalog/overview/entry`: the same entry, read through `CacheService`. */
  @Get('entry')
  async entry(): Promise<{ cached: boolean; value?: unknown; freshForMs?: number }> {
    const entry = await this.cache.getEntry('/catalog/overview');
    return entry === undefined ? { cached: false } : { cached: true, value: entry.value, freshForMs: entry.freshUntil - Date.now() };
  }
}
