import { Injectable, Logger, Module, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MaxmemoryPolicyCheck, OnStreamMessage, type KeyDurability } from '../../lib/index.js';
import { RedisTestServer } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

function featureDeclaring(declarations: [string, KeyDurability][]) {
  @Injectable()
  class Feature implements OnModuleInit {
    constructor(private readonly check: MaxmemoryPolicyCheck) {}
    onModuleInit() {
      for (const [feature, durability] of declarations) this.check.declare(feature, durability);
    }
  }
  @Module({ providers: [Feature] })
  class FeatureModule {}
  return FeatureModule;
}

describe('maxmemory-policy check at startup', () => {
  let server: RedisTestServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await RedisTestServer.start();
    admin = new Redis(server.address);
  });
  afterAll(async () => {
    await admin.quit();
    await server.destroy();
  });
  afterEach(() => vi.restoreAllMocks());

  async function warningsWith(
    policy: string,
    declarations: [string, KeyDurability][],
    checkMaxmemoryPolicy = true,
    maxmemory = '100mb',
  ): Promise<string[]> {
    await admin.config('SET', 'maxmemory-policy', policy);
    await admin.config('SET', 'maxmemory', maxmemory);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext(
      { connection: server.address, checkMaxmemoryPolicy, isGlobal: true },
      { imports: [featureDeclaring(declarations)] },
    );
    await app.close();
    return warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('maxmemory-policy'));
  }

  it.each(['allkeys-lru', 'volatile-lru', 'volatile-ttl', 'allkeys-random'])(
    'warns when %s may evict durable keys, naming the features',
    async (policy) => {
      expect(
        await warningsWith(policy, [
          ['cache', 'evictable'],
          ['lock', 'durable'],
          ['session', 'durable'],
        ]),
      ).toEqual([
        `Redis maxmemory-policy is "${policy}": under memory pressure Redis may evict keys of lock, session, which must not be lost (volatile-* policies evict keys with a TTL, as locks and sessions have). Use noeviction, and keep a cache that needs eviction on a separate Redis.`,
      ]);
    },
  );

  it('warns when a pure cache runs on noeviction', async () => {
    const warnings = await warningsWith('noeviction', [['cache', 'evictable']]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^Redis maxmemory-policy is "noeviction": once maxmemory is reached, cache writes fail with OOM/);
  });

  it.each([
    [
      'noeviction',
      [
        ['cache', 'evictable'],
        ['lock', 'durable'],
      ],
    ],
    ['noeviction', [['lock', 'durable']]],
    ['volatile-lru', [['cache', 'evictable']]],
    ['allkeys-lfu', [['cache', 'evictable']]],
    ['allkeys-lru', []],
  ] as [string, [string, KeyDurability][]][])('stays quiet for %s with %j', async (policy, declarations) => {
    expect(await warningsWith(policy, declarations)).toEqual([]);
  });

  it('stays quiet when no maxmemory is set, since Redis then never evicts', async () => {
    expect(await warningsWith('allkeys-lru', [['lock', 'durable']], true, '0')).toEqual([]);
  });

  it('counts @OnStreamMessage consumers as durable (stream keys carry no TTL, and must not be evicted)', async () => {
    @Injectable()
    class Consumer {
      @OnStreamMessage('events', 'workers', { block: '50ms' })
      handle() {}
    }
    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await admin.config('SET', 'maxmemory', '100mb');
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: server.address }, { providers: [Consumer] });
    await app.close();
    expect(warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('maxmemory-policy'))).toEqual([
      'Redis maxmemory-policy is "allkeys-lru": under memory pressure Redis may evict keys of streams, which must not be lost (volatile-* policies evict keys with a TTL, as locks and sessions have). Use noeviction, and keep a cache that needs eviction on a separate Redis.',
    ]);
  });

  it('counts locks as durable when the app has a `lock` section', async () => {
    await admin.config('SET', 'maxmemory-policy', 'volatile-lru');
    await admin.config('SET', 'maxmemory', '100mb');
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: server.address, lock: {} });
    await app.close();
    expect(warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('maxmemory-policy'))).toEqual([
      expect.stringMatching(/^Redis maxmemory-policy is "volatile-lru": under memory pressure Redis may evict keys of locks, /),
    ]);
  });

  it('can be turned off', async () => {
    expect(await warningsWith('allkeys-lru', [['lock', 'durable']], false)).toEqual([]);
  });
});
