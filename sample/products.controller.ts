import { Body, Controller, Get, NotFoundException, Param, Put, Query } from '@nestjs/common';
import { CacheService } from '../lib/index.js';
import { ProductsRepository, type Product } from './products.repository.js';

/** A product catalog: a SQL database as the source of truth, read through the cache. */
@Controller()
export class ProductsController {
  constructor(
    private readonly products: ProductsRepository,
    private readonly cache: CacheService,
  ) {}

  /** `curl http://127.0.0.1:3000/products/1` (an unknown id is a cached 404) */
  @Get('products/:id')
  async find(@Param('id') id: string): Promise<Product> {
    const product = await this.products.find(id);
    if (!product) throw new NotFoundException(`No product ${id}`);
    return product;
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
