/**
 * Compile-time checks, run by `npm run typecheck` (part of `npm run lint`): each `@ts-expect-error`
 * line must fail to compile, and the rest must compile. Nothing here runs.
 */
import {
  CacheEvict,
  Cacheable,
  CachePut,
  CountUnique,
  WriteBehind,
  RateLimit,
  WithLock,
  WithSemaphore,
  OncePerFire,
  OnlyOnLeader,
  type RedisPatternsModuleExtras,
  type RedisPatternsModuleOptions,
} from '../../lib/index.js';

interface Product {
  id: string;
  draft: boolean;
}

export class Catalog {
  // Options and method agree: compiles.
  @Cacheable({ key: (id: string) => `product:${id}` })
  async find(id: string): Promise<Product> {
    return { id, draft: false };
  }

  // A key function may use fewer parameters than the method has.
  @Cacheable({ key: (id: string) => `page:${id}` })
  async page(id: string, page: number): Promise<string[]> {
    return [id, String(page)];
  }

  // @ts-expect-error the key function takes a number, the method a string
  @Cacheable({ key: (id: number) => `product:${id}` })
  async byNumber(id: string): Promise<Product> {
    return { id, draft: false };
  }

  // @ts-expect-error explicit generics that do not match the method
  @Cacheable<[number], Product>({ key: (id) => `product:${id}` })
  async explicit(id: string): Promise<Product> {
    return { id, draft: false };
  }

  // @ts-expect-error the result type given does not match what the method returns
  @Cacheable<[string], Product>({ key: (id) => `product:${id}`, unless: (product) => product.draft })
  async wrongResult(id: string): Promise<string> {
    return id;
  }

  @CachePut<[Product], Product>({ key: (product) => `product:${product.id}`, tags: ([product]) => [product.id] })
  async save(product: Product): Promise<Product> {
    return product;
  }

  // @ts-expect-error evicting by a number key on a method of a string
  @CacheEvict({ key: (id: number) => `product:${id}` })
  async remove(id: string): Promise<void> {
    void id;
  }

  @WithLock({ key: (orderId: string) => `order:${orderId}` })
  async pay(orderId: string, amount: number): Promise<number> {
    return orderId.length + amount;
  }

  // @ts-expect-error a lock key function for another argument type
  @WithLock<[number]>({ key: (orderId) => `order:${orderId}` })
  async refund(orderId: string): Promise<void> {
    void orderId;
  }

  @WithSemaphore('exports', { key: (tenant: string) => tenant, permits: 2 })
  async exportFor(tenant: string, format: string): Promise<string> {
    return tenant + format;
  }

  @WithSemaphore('exports', { permits: 3, onBusy: 'skip' })
  async exportAll(): Promise<void> {}

  // @ts-expect-error a semaphore key function for another argument type
  @WithSemaphore<[number]>('exports', { key: (tenant) => String(tenant), permits: 2 })
  async exportNumber(tenant: string): Promise<void> {
    void tenant;
  }

  // @ts-expect-error a permits function for another argument type
  @WithSemaphore('imports', { permits: (plan: number) => plan })
  async importFor(plan: string): Promise<void> {
    void plan;
  }

  // @ts-expect-error a semaphore without its number of permits
  @WithSemaphore('imports', { wait: '1s' })
  async importAll(): Promise<void> {}

  @RateLimit({ key: (tenant: string) => tenant, limit: 2, window: '1s' })
  async notify(tenant: string): Promise<void> {
    void tenant;
  }

  // @ts-expect-error a rate-limit key function for another argument type
  @RateLimit<[number]>({ key: (tenant) => String(tenant), limit: 2, window: '1s' })
  async notifyNumber(tenant: string): Promise<void> {
    void tenant;
  }

  @CountUnique('visitors', { by: (user: string) => user })
  async visit(user: string): Promise<void> {
    void user;
  }

  @WriteBehind({ key: (user: { id: string }) => `user:${user.id}` })
  async saveUser(user: { id: string }): Promise<void> {
    void user;
  }

  // @ts-expect-error a write-behind key function for another argument type
  @WriteBehind<[number]>({ key: (id) => `user:${id}` })
  async saveNumber(user: { id: string }): Promise<void> {
    void user;
  }

  // @ts-expect-error a counting function for another argument type
  @CountUnique<[number]>('visitors', { by: (user) => String(user) })
  async visitNumber(user: string): Promise<void> {
    void user;
  }
}

export const options: RedisPatternsModuleOptions = {
  connection: { url: 'redis://localhost:6379' },
  cache: { ttl: '1m' },
  rateLimit: { onStoreError: 'closed' },
  pubsub: { sharded: false },
  autoPipelining: true,
  transaction: { poolSize: 8, acquireTimeout: '2s' },
};
// @ts-expect-error the pool size is a number
export const wrongPoolSize: RedisPatternsModuleOptions = { connection: { url: 'redis://localhost:6379' }, transaction: { poolSize: '8' } };
// @ts-expect-error an option the module does not know
export const unknownOption: RedisPatternsModuleOptions = { connection: { url: 'redis://localhost:6379' }, cahce: {} };
// @ts-expect-error a section of the wrong shape
export const wrongSection: RedisPatternsModuleOptions = { connection: { url: 'redis://localhost:6379' }, cache: { ttl: true } };
export const extras: Partial<RedisPatternsModuleExtras> = {
  isGlobal: true,
  leaderboards: { weekly: { period: 'week' } },
  bloomFilters: { products: { capacity: 100, errorRate: 0.01 } },
  geo: { stores: {} },
  uniqueCounters: { visitors: { period: 'day', timeZone: 'Europe/Paris', retain: 30 } },
  queues: { emails: { concurrency: 10, maxAttempts: 5, backoff: { type: 'exponential', delay: '1s' } } },
};
// @ts-expect-error a queue option that does not exist (priorities are BullMQ's)
export const wrongQueue: Partial<RedisPatternsModuleExtras> = { queues: { emails: { priority: 1 } } };
// @ts-expect-error a period unique counters do not have
export const wrongCounter: Partial<RedisPatternsModuleExtras> = { uniqueCounters: { visitors: { period: 'year' } } };
// @ts-expect-error geo indexes have no options yet
export const wrongGeoIndex: Partial<RedisPatternsModuleExtras> = { geo: { stores: { precision: 5 } } };
// @ts-expect-error a board option that does not exist
export const wrongBoard: Partial<RedisPatternsModuleExtras> = { leaderboards: { weekly: { period: 'fortnight' } } };
// A prefill may return a Promise of the items (the natural `repository.allIds()`).
export const promisedPrefill: Partial<RedisPatternsModuleExtras> = {
  bloomFilters: { products: { capacity: 100, errorRate: 0.01, prefill: async () => ['p-1', 'p-2'] } },
};

export class Jobs {
  // A scheduled job takes no arguments: compiles.
  @OncePerFire({ overlap: 'queue', catchUp: 'last' })
  async nightly(): Promise<void> {}

  // @ts-expect-error 'wait' is not a way to overlap
  @OncePerFire({ overlap: 'wait' })
  async wrongOverlap(): Promise<void> {}

  @OnlyOnLeader('poller', { lease: '10s' })
  async poll(): Promise<void> {}
}
