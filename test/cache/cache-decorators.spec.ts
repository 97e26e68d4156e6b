import { Controller, Get, Injectable, SetMetadata, type INestApplicationContext } from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheEvict, CachePut, Cacheable, CacheService, RedisPatternsError } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

interface Product {
  id: string;
  name: string;
  draft?: boolean;
}

@Injectable()
class ProductRepository {
  loads = 0;
  readonly rows = new Map<string, Product>([
    ['1', { id: '1', name: 'Book' }],
    ['2', { id: '2', name: 'Pen', draft: true }],
  ]);

  @Cacheable<[string], Product | null>({
    key: (id) => `product:${id}`,
    tags: ([id]) => [`product:${id}`, 'products'],
    unless: (product) => product?.draft === true,
  })
  async find(id: string): Promise<Product | null> {
    this.loads++;
    return this.rows.get(id) ?? null;
  }

  @Cacheable({ cacheNull: true })
  findOrNull(id: string): Product | null {
    this.loads++;
    return this.rows.get(id) ?? null;
  }

  @Cacheable<[{ page: number; sort: string }]>({ condition: (query) => query.page <= 2 })
  async search(query: { page: number; sort: string }): Promise<string[]> {
    this.loads++;
    return [`page ${query.page} by ${query.sort}`];
  }

  @CachePut<[Product], Product>({ key: (product) => `product:${product.id}`, tags: ([product]) => [`product:${product.id}`, 'products'] })
  async save(product: Product): Promise<Product> {
    this.rows.set(product.id, product);
    return product;
  }

  @CacheEvict<[string]>({ key: (id) => `product:${id}` })
  async remove(id: string, fail = false): Promise<void> {
    if (fail) throw new Error('database refused');
    this.rows.delete(id);
  }

  @CacheEvict({ tags: ['products'], beforeInvocation: true })
  async reindex(fail: boolean): Promise<void> {
    if (fail) throw new Error('reindex failed');
  }

  @CacheEvict({ allEntries: true })
  async reset(): Promise<void> {}

  @Cacheable({ key: () => JSON.parse('{broken') })
  async brokenKey(): Promise<number> {
    return 1;
  }
}

@Controller('products')
class ProductController {
  @Get(':id')
  @SetMetadata('role', 'reader')
  @Cacheable({ key: (id: string) => `route:${id}` })
  async get(id: string): Promise<string> {
    return `product ${id} via ${this.constructor.name}`;
  }
}

describe.each(topologies)('cache decorators on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let repository: ProductRepository;
  let cache: CacheService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), cache: {} }, { providers: [ProductRepository], controllers: [ProductController] });
    repository = app.get(ProductRepository);
    cache = app.get(CacheService);
  });
  afterAll(() => app.close());

  it('@Cacheable stores the result under the key function, keeps `this`, and skips `unless` results', async () => {
    repository.loads = 0;
    expect(await repository.find('1')).toEqual({ id: '1', name: 'Book' });
    expect(await repository.find('1')).toEqual({ id: '1', name: 'Book' });
    expect(repository.loads).toBe(1);
    expect(await cache.get('product:1')).toEqual({ id: '1', name: 'Book' });
    await repository.find('2');
    await repository.find('2');
    expect(repository.loads).toBe(3); // the draft was not cached
  });

  it('@Cacheable on a sync method returns a promise, with a default key that ignores object key order', async () => {
    repository.loads = 0;
    await expect(repository.findOrNull('missing')).resolves.toBeNull();
    await expect(repository.findOrNull('missing')).resolves.toBeNull();
    expect(repository.loads).toBe(1);
    expect(await cache.get('ProductRepository.findOrNull:["missing"]')).toBeNull();

    await repository.search({ page: 1, sort: 'name' });
    await repository.search({ sort: 'name', page: 1 } as { page: number; sort: string });
    expect(repository.loads).toBe(2);
  });

  it('bypasses the cache when `condition` is false', async () => {
    repository.loads = 0;
    await repository.search({ page: 9, sort: 'name' });
    await repository.search({ page: 9, sort: 'name' });
    expect(repository.loads).toBe(2);
  });

  it('@CachePut writes the result before the call resolves', async () => {
    await repository.find('1');
    await repository.save({ id: '1', name: 'Big Book' });
    expect(await cache.get('product:1')).toEqual({ id: '1', name: 'Big Book' });
    repository.loads = 0;
    expect(await repository.find('1')).toEqual({ id: '1', name: 'Big Book' });
    expect(repository.loads).toBe(0);
  });

  it('@CacheEvict deletes after success (read-your-writes), not after a throw', async () => {
    await repository.find('1');
    await expect(repository.remove('1', true)).rejects.toThrow('database refused');
    expect(await cache.get('product:1')).toBeDefined();
    await repository.remove('1');
    expect(await cache.get('product:1')).toBeUndefined();
  });

  it('@CacheEvict with beforeInvocation evicts even when the method throws; tags and allEntries', async () => {
    await repository.save({ id: '3', name: 'Ink' });
    await repository.find('3');
    await expect(repository.reindex(true)).rejects.toThrow('reindex failed');
    expect(await cache.get('product:3')).toBeUndefined();

    // Declared sync, it returns a Promise once decorated.
    await (repository.findOrNull('1') as unknown as Promise<Product | null>);
    expect(await cache.get('ProductRepository.findOrNull:["1"]')).toBeDefined();
    await repository.reset();
    expect(await cache.get('ProductRepository.findOrNull:["1"]')).toBeUndefined();
  });

  it('keeps the route metadata of other decorators on a controller method, and `this`', async () => {
    const controller = app.get(ProductController);
    expect(Reflect.getMetadata('role', controller.get)).toBe('reader');
    expect(Reflect.getMetadata(PATH_METADATA, controller.get)).toBe(':id');
    expect(controller.get.name).toBe('get');
    expect(await controller.get('7')).toBe('product 7 via ProductController');
    expect(await cache.get('route:7')).toBe('product 7 via ProductController');
  });

  it('names the method when its key function throws', async () => {
    await expect(repository.brokenKey()).rejects.toThrow(RedisPatternsError);
    await expect(repository.brokenKey()).rejects.toThrow(/^@Cacheable on ProductRepository\.brokenKey could not build its cache key: /);
  });
});

describe('a decorated class that Nest did not create', () => {
  it('fails with an error that says why', async () => {
    const repository = new ProductRepository();
    expect(() => repository.find('1')).toThrow(
      '@Cacheable on ProductRepository.find has no CacheService: the class must be created by Nest, in a module that imports RedisPatternsModule (or with isGlobal: true).',
    );
  });
});
