import {
  Controller,
  Get,
  Injectable,
  Logger,
  NotFoundException,
  Param,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BloomFilterService,
  BloomGuard,
  Cacheable,
  CacheService,
  InjectBloomFilter,
  RedisPatternsModule,
  type BloomFilter,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { waitFor } from '../support/redis-server.js';
import { uniquePrefix } from '../support/testing-app.js';

/** The source of truth: 2500 products, and a count of the queries that reach it. */
@Injectable()
class ProductsTable {
  readonly rows = new Map(Array.from({ length: 2500 }, (_, i) => [`p-${i}`, { id: `p-${i}`, name: `Product ${i}` }]));
  queries = 0;
  /** Held until a test opens it, so the prefill can be seen running. */
  prefillGate = Promise.resolve();

  find(id: string) {
    this.queries++;
    return this.rows.get(id) ?? null;
  }

  async *allIds(): AsyncIterable<string[]> {
    await this.prefillGate;
    const ids = [...this.rows.keys()];
    for (let at = 0; at < ids.length; at += 1000) yield ids.slice(at, at + 1000);
  }
}

@Injectable()
class ProductsService {
  constructor(readonly table: ProductsTable) {}

  @Cacheable({ key: (id: string) => `product:${id}`, bloom: { filter: 'products', item: (id: string) => id } })
  async find(id: string) {
    return this.table.find(id);
  }
}

@Controller('products')
class ProductsController {
  handled = 0;
  constructor(private readonly table: ProductsTable) {}

  @Get('by-number/:n')
  @BloomGuard('products', {
    from: (context: ExecutionContext) => Number(context.switchToHttp().getRequest<{ params: { n: string } }>().params.n),
  })
  byNumber(@Param('n') n: string) {
    this.handled++;
    return { n };
  }

  @Get('by-query')
  @BloomGuard('products', { from: (context: ExecutionContext) => context.switchToHttp().getRequest<{ query: { id?: string } }>().query.id })
  byQuery() {
    this.handled++;
    return { handled: true };
  }

  @Get('by-header')
  @BloomGuard('products', {
    from: (context: ExecutionContext) =>
      context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-lone'] ? 'p-1\ud800' : undefined,
  })
  byHeader() {
    this.handled++;
    return { handled: true };
  }

  @Get(':id')
  @BloomGuard('products', { param: 'id' })
  find(@Param('id') id: string) {
    this.handled++;
    const product = this.table.find(id);
    if (!product) throw new NotFoundException();
    return product;
  }
}

@Injectable()
class Holder {
  constructor(@InjectBloomFilter('products') readonly products: BloomFilter) {}
}

describe('@BloomGuard, the cache bloom option and a prefill from a provider (Express)', () => {
  const own = ownRedisServer();
  let app: INestApplication;
  let base: string;
  let table: ProductsTable;
  let openGate: () => void;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisPatternsModule.forRoot({
          connection: own.server.address,
          keyPrefix: uniquePrefix(),
          commandTimeout: '300ms',
          reconnect: { minDelay: '20ms', maxDelay: '100ms' },
          cache: {},
          bloomFilters: {
            products: {
              capacity: 10_000,
              errorRate: 0.001,
              batchSize: 500,
              prefill: (ref) => ref.get(ProductsTable, { strict: false }).allIds(),
            },
          },
        }),
      ],
      controllers: [ProductsController],
      providers: [ProductsTable, ProductsService, Holder],
    }).compile();
    table = moduleRef.get(ProductsTable);
    table.prefillGate = new Promise((resolve) => (openGate = resolve));
    app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterAll(() => app?.close());

  const get = async (path: string, headers: Record<string, string> = {}) => (await fetch(`${base}${path}`, { headers })).status;
  const handled = () => app.get(ProductsController).handled;

  it('lets every request through while the filter is being prefilled, then answers 404 for absent ids without the handler', async () => {
    const products = app.get(Holder).products;
    expect(await products.info()).toMatchObject({ built: false });
    expect(await get('/products/nope-1')).toBe(404);
    expect(handled()).toBe(1);

    openGate();
    await products.whenBuilt();
    expect(await products.info()).toMatchObject({ built: true, items: 2500 });
    const queriesBefore = table.queries;
    const flood = await Promise.all(Array.from({ length: 200 }, (_, i) => get(`/products/random-${i}`)));
    expect(flood.every((status) => status === 404)).toBe(true);
    // A false positive (0.1%) may reach the handler; almost none do.
    expect(handled() - 1).toBeLessThan(5);
    expect(table.queries - queriesBefore).toBe(handled() - 1);
    expect(await get('/products/p-42')).toBe(200);
  });

  it('@Cacheable answers null for an absent id without the loader, and caches the null of a false positive', async () => {
    await app.get(Holder).products.whenBuilt();
    const service = app.get(ProductsService);
    const before = table.queries;
    expect(await service.find('absent-1')).toBeNull();
    expect(table.queries).toBe(before);
    expect(app.get(CacheService).stats().bloomRejected).toBeGreaterThan(0);
    // In the filter but not in the table (a deleted row, or a false positive): one query, then a cached null.
    await app.get(BloomFilterService).get('products').add('deleted-row');
    expect(await service.find('deleted-row')).toBeNull();
    expect(await service.find('deleted-row')).toBeNull();
    expect(table.queries).toBe(before + 1);
    expect(await service.find('p-7')).toEqual({ id: 'p-7', name: 'Product 7' });
  });

  it('takes the item from a function (a number is its decimal string), and lets a request without one value through', async () => {
    await app.get(Holder).products.whenBuilt();
    await app.get(Holder).products.add('123');
    expect(await get('/products/by-number/123')).toBe(200);
    expect(await get('/products/by-number/124')).toBe(404);
    expect(await get('/products/by-query?id=a&id=b')).toBe(200);
    expect(await get(`/products/${'x'.repeat(5000)}`)).toBe(404);
    // An item that is not well-formed Unicode was never added either.
    const handled = app.get(ProductsController).handled;
    expect(await get('/products/by-header', { 'x-lone': '1' })).toBe(404);
    expect(app.get(ProductsController).handled).toBe(handled);
  });

  it('CacheService.getOrSet with bloom: the key itself is the item, and a filter name that was never declared is an error', async () => {
    const cache = app.get(CacheService);
    let loads = 0;
    const loader = () => (loads++, 'loaded');
    expect(await cache.getOrSet('p-1', loader, { bloom: 'products' })).toBe('loaded');
    expect(await cache.getOrSet('no-such-key', loader, { bloom: 'products' })).toBeNull();
    expect(loads).toBe(1);
    await expect(cache.getOrSet('p-2', loader, { bloom: 'nope' })).rejects.toMatchObject({ name: 'InvalidOptionError', option: 'bloom' });
  });

  it('CacheService.getOrSet with bloom: concurrent misses of a key share one load in this instance, without the lock too', async () => {
    await app.get(Holder).products.whenBuilt();
    const cache = app.get(CacheService);
    let loads = 0;
    const loader = async () => (loads++, await new Promise((resolve) => setTimeout(resolve, 50)), 'loaded');
    const results = await Promise.all(Array.from({ length: 10 }, () => cache.getOrSet('p-3', loader, { bloom: 'products', lock: false })));
    expect(results).toEqual(Array.from({ length: 10 }, () => 'loaded'));
    expect(loads).toBe(1);
    expect(await cache.get('p-3')).toBe('loaded');
  });

  it('fails at startup when a @BloomGuard names a filter that was never declared', async () => {
    @Controller('typo')
    class TypoController {
      @Get(':id')
      @BloomGuard('prodcuts', { param: 'id' })
      find() {
        return {};
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: own.server.address, keyPrefix: uniquePrefix() })],
      controllers: [TypoController],
    }).compile();
    const typo = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await expect(typo.init()).rejects.toThrow(
      'Invalid option "@BloomGuard on TypoController": expected a filter declared under bloomFilters in the module options (known: none), got "prodcuts".',
    );
    await typo.close();
  });

  it('lets requests through while Redis is down, logging the outage once', async () => {
    await app.get(Holder).products.whenBuilt();
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await own.server.stop();
      const before = handled();
      expect(await Promise.all([get('/products/p-1'), get('/products/nope-2'), get('/products/nope-3')])).toEqual([200, 404, 404]);
      expect(handled()).toBe(before + 3);
      expect(
        warn.mock.calls.filter(([message]) => String(message).startsWith('Redis connection "default" is unavailable to Bloom filters (')),
      ).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
      await own.server.start();
    }
    // The server came back empty: the filter is gone, so the guard keeps letting requests
    // through (nothing real is hidden) until the filter is rebuilt.
    const products = app.get(Holder).products;
    await waitFor(
      async () =>
        await products.info().then(
          (info) => !info.built,
          () => false,
        ),
      'Redis to answer again',
      10_000,
    );
    const before = handled();
    expect(await get('/products/nope-5')).toBe(404);
    expect(handled()).toBe(before + 1);
    expect(await products.rebuild(table.allIds())).toBe(true);
    // Rebuilt: an absent id is answered by the guard again, not by the handler.
    await waitFor(
      async () => {
        const before = handled();
        return (await get('/products/nope-4')) === 404 && handled() === before;
      },
      'the guard to use Redis again',
      10_000,
    );
  });
});
