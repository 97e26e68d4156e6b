import { Controller, Get, Query, UseGuards } from '@nestjs/common';
import { RateLimit, RateLimitGuard } from '../lib/index.js';
import { ProductsRepository, type Product } from './products.repository.js';

/**
 * A public search, limited per client IP: 5 searches per 10 seconds, counted with a sliding
 * window (the previous window's count fades out, so a burst at a window's edge is not doubled).
 * Every response carries `RateLimit-Policy`/`RateLimit` (and the legacy `X-RateLimit-*`) headers;
 * the 6th quick search gets a 429 with `Retry-After`.
 */
@Controller('search')
@UseGuards(RateLimitGuard)
@RateLimit({ name: 'search', limit: 5, window: '10s', algorithm: 'sliding-window', by: 'ip' })
export class SearchController {
  constructor(private readonly products: ProductsRepository) {}

  /** `curl -i 'http://127.0.0.1:3000/search?q=book'` (run it 6 times within 10 seconds) */
  @Get()
  search(@Query('q') q = ''): Promise<Product[]> {
    return this.products.search(String(q));
  }
}
