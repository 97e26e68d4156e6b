import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Put,
  Query,
  UseInterceptors,
} from '@nestjs/common';
import {
  BloomFilterService,
  BloomGuard,
  CacheInterceptor,
  CacheService,
  CacheTTL,
  type BloomFilterInfo,
  type CacheStats,
} from '../lib/index.js';
import { ProductsRepository, type Product } from './products.repository.js';

/** The tags that POST /cache/invalidate may empty. */
const INVALIDATABLE_TAGS: readonly string[] = ['product-lists'];

/** Hits (L1 or Redis) over lookups (every lookup ends in a hit or a Redis miss), to 3 decimals; 0 before any lookup. */
export function cacheHitRatio(stats: CacheStats): { hits: number; lookups: number; hitRatio: number } {
  const hits = stats.l1.hits + stats.redis.hits;
  const lookups = hits + stats.redis.misses;
  return { hits, lookups, hitRatio: lookups === 0 ? 0 : Number((hits / lookups).toFixed(3)) };
}

/** A product catalog: a SQL database as the source of truth, read through the cache. */
@Controller()
export class ProductsController {
  constructor(
    private readonly products: ProductsRepository,
    private readonly cache: CacheService,
    private readonly blooms: BloomFilterService,
  ) {}

  /**
   * `curl http://127.0.0.1:3000/products/1`. An id certainly not in the catalog's Bloom filter
   * gets 404 before the handler runs: a flood of random ids never reaches the cache or the
   * database (see `databaseQueries` in /cache/stats).
   */
  @Get('products/:id')
  @BloomGuard('product-ids', { param: 'id' })
  async find(@Param('id') id: string): Promise<Product> {
    const product = await this.products.find(id);
    if (!product) throw new NotFoundException(`No product ${id}`);
    return product;
  }

  /** `curl -X POST -H 'content-type: application/json' -d '{"id":"9","name":"Ruler","category":"office","priceCents":150}' http://127.0.0.1:3000/products` */
  @Post('products')
  async create(@Body() body: { id?: unknown; name?: unknown; category?: unknown; priceCents?: unknown }) {
    const { id, name, category, priceCents } = body ?? {};
    if (
      typeof id !== 'string' ||
      !/^[\w-]{1,64}$/.test(id) ||
      typeof name !== 'string' ||
      typeof category !== 'string' ||
      !Number.isSafeInteger(priceCents)
    ) {
      throw new BadRequestException('id (letters, digits, - and _), name, category and priceCents (whole cents) are required');
    }
    const created = await this.products.create({ id, name, category, priceCents: priceCents as number });
    if (!created) throw new ConflictException(`Product ${id} exists`);
    return created;
  }

  /** `curl http://127.0.0.1:3000/products-filter`: the Bloom filter of product ids (backend, items, size, built). */
  @Get('products-filter')
  filter(): Promise<BloomFilterInfo> {
    return this.blooms.get('product-ids').info();
  }

  /** `curl http://127.0.0.1:3000/products?category=paper` */
  @Get('products')
  list(@Query('category') category = 'paper'): Promise<Product[]> {
    return this.products.list(category);
  }

  /** `curl -X PUT -H 'content-type: application/json' -d '{"priceCents":2499}' http://127.0.0.1:3000/products/1` */
  @Put('products/:id')
  async update(@Param('id') id: string, @Body() body: { name?: string; priceCents?: number }): Promise<Product> {
    const product = await this.products.update(id, body);
    if (!product) throw new NotFoundException(`No product ${id}`);
    return product;
  }

  /**
   * `curl -i http://127.0.0.1:3000/catalog/summary`: the whole response cached by
   * `CacheInterceptor` for 10 seconds, keyed by the URL (and the user, when there is one):
   * `X-Cache: MISS`, then `HIT` without a query.
   */
  @Get('catalog/summary')
  @UseInterceptors(CacheInterceptor)
  @CacheTTL('10s')
  summary(): Promise<{ category: string; products: number }[]> {
    return this.products.summary();
  }

  /**
   * `curl -X POST -H 'content-type: application/json' -d '{"tag":"product-lists"}' http://127.0.0.1:3000/cache/invalidate`:
   * deletes every entry of a tag, a thousand at a time whatever its size, on every instance's L1
   * too; answers how many went. A load that began before it does not store its (older) result.
   * Only the tags listed in INVALIDATABLE_TAGS: an endpoint must not let any caller empty any tag.
   */
  @Post('cache/invalidate')
  @HttpCode(200)
  async invalidate(@Body() body: { tag?: unknown } | undefined): Promise<{ deleted: number }> {
    const tag = body?.tag;
    if (typeof tag !== 'string' || !INVALIDATABLE_TAGS.includes(tag))
      throw new BadRequestException(`tag must be one of: ${INVALIDATABLE_TAGS.join(', ')}`);
    return { deleted: await this.cache.invalidateTags([tag]) };
  }

  /** Hit ratio and counters of the cache, and how many queries reached the database. */
  @Get('cache/stats')
  stats() {
    const stats = this.cache.stats();
    return { ...stats, hitRatio: cacheHitRatio(stats).hitRatio, databaseQueries: this.products.queries };
  }
}
