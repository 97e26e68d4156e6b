import { Injectable } from '@nestjs/common';
import { CacheEvict, Cacheable, InjectBloomFilter, type BloomFilter } from '../lib/index.js';
import { Database } from './database.js';

export interface Product {
  id: string;
  name: string;
  category: string;
  priceCents: number;
}

interface ProductRow {
  id: string;
  name: string;
  category: string;
  price_cents: number;
}

const toProduct = (row: ProductRow): Product => ({ id: row.id, name: row.name, category: row.category, priceCents: row.price_cents });

/** The catalog, read through the cache. `queries` counts what reached the database. */
@Injectable()
export class ProductsRepository {
  queries = 0;

  constructor(
    private readonly db: Database,
    /** Every product id (declared in AppModule, prefilled from `allIds` at startup). */
    @InjectBloomFilter('product-ids') private readonly productIds: BloomFilter,
  ) {}

  /** Every product id, a thousand at a time (keyset pagination): the Bloom filter's prefill. */
  async *allIds(): AsyncIterable<string[]> {
    for (let after = ''; ;) {
      this.queries++;
      const rows = await this.db.query<{ id: string }>('select id from products where id > $1 order by id limit 1000', [after]);
      if (rows.length === 0) return;
      yield rows.map((row) => row.id);
      after = rows[rows.length - 1].id;
    }
  }

  /**
   * Adds a product (null when the id exists), then its id to the Bloom filter once the insert is
   * committed (never before: a missed add must not hide it), and evicts a cached "not found".
   */
  @CacheEvict<[Product]>({ key: (product) => `product:${product.id}`, tags: ['product-lists'] })
  async create(product: Product): Promise<Product | null> {
    const [row] = await this.db.query<ProductRow>('insert into products values ($1, $2, $3, $4) on conflict (id) do nothing returning *', [
      product.id,
      product.name,
      product.category,
      product.priceCents,
    ]);
    if (!row) return null;
    await this.productIds.add(row.id);
    return toProduct(row);
  }

  /**
   * Cached for 5 minutes. Ids certainly not in the Bloom filter never get here (see the
   * controller); a false positive or a deleted product is cached as null for 30 seconds.
   */
  @Cacheable<[string], Product | null>({ key: (id) => `product:${id}`, ttl: '5m', cacheNull: true, nullTtl: '30s', l1: true })
  async find(id: string): Promise<Product | null> {
    this.queries++;
    const [row] = await this.db.query<ProductRow>('select * from products where id = $1', [id]);
    return row ? toProduct(row) : null;
  }

  /** Lists are tagged, so any write to a product invalidates all of them at once. */
  @Cacheable<[string], Product[]>({ key: (category) => `products:${category}`, ttl: '1m', tags: ['product-lists'] })
  async list(category: string): Promise<Product[]> {
    this.queries++;
    const rows = await this.db.query<ProductRow>('select * from products where category = $1 order by id', [category]);
    return rows.map(toProduct);
  }

  /** Not cached here: how many products each category has (the route caches the whole response). */
  async summary(): Promise<{ category: string; products: number }[]> {
    this.queries++;
    const rows = await this.db.query<{ category: string; products: string | number }>(
      'select category, count(*) as products from products group by category order by category',
    );
    return rows.map((row) => ({ category: row.category, products: Number(row.products) }));
  }

  /** Not cached: products whose name contains `text` (case-insensitive; `%` and `_` match themselves), at most 20. */
  async search(text: string): Promise<Product[]> {
    this.queries++;
    const pattern = `%${text.replace(/[\\%_]/g, '\\$&')}%`;
    const rows = await this.db.query<ProductRow>('select * from products where name ilike $1 order by id limit 20', [pattern]);
    return rows.map(toProduct);
  }

  /** Evicts the product and every list, after the update succeeds. */
  @CacheEvict<[string, Partial<Product>]>({ key: (id) => `product:${id}`, tags: ['product-lists'] })
  async update(id: string, changes: Partial<Pick<Product, 'name' | 'priceCents'>>): Promise<Product | null> {
    const [row] = await this.db.query<ProductRow>(
      'update products set name = coalesce($2, name), price_cents = coalesce($3, price_cents) where id = $1 returning *',
      [id, changes.name ?? null, changes.priceCents ?? null],
    );
    return row ? toProduct(row) : null;
  }
}
