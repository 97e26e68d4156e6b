import { BadRequestException, Body, ConflictException, Controller, Get, NotFoundException, Param, Post, Put, Query } from '@nestjs/common';
import { BloomFilterService, BloomGuard, CacheService, type BloomFilterInfo } from '../lib/index.js';
import { ProductsRepository, type Product } from './products.repository.js';

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
    if (typeof id !== 'string' || !/^[\w-]{1,64}$/.test(id) || typeof name !== 'string' || typeof category !== 'string' || !Number.isSafeInteger(priceCents)) {
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

  /** Hit ratio and counters of the cache, and how many queries reached the database. */
  @Get('cache/stats')
  stats() {
    const stats = this.cache.stats();
    const hits = stats.l1.hits + stats.redis.hits;
    const lookups = hits + stats.redis.misses;
    return { ...stats, hitRatio: lookups === 0 ? 0 : Number((hits / lookups).toFixed(3)), databaseQueries: this.products.queries };
  }
}
