import { Injectable } from '@nestjs/common';
import { CacheEvict, Cacheable } from '../lib/index.js';
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

  constructor(private readonly db: Database) {}

  /** Cached for 5 minutes; an unknown id is cached as null for 30 seconds (negative caching). */
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
