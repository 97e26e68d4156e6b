import { Injectable, Logger, Module, type OnModuleInit } from '@nestjs/common';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { MaxmemoryPolicyCheck, type KeyDurability } from '../../lib/index.js';
import { RedisServer } from '../support/redis-server.js';
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
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.address);
  });
  afterAll(async () => {
    await admin.quit();
    await server.destroy();
  });
  afterEach(() => vi.restoreAllMocks());

  async function warningsWith(policy: string, declarations: [string, KeyDurability][], checkMaxmemoryPolicy = true): Promise<string[]> {
    await admin.config('SET', 'maxmemory-policy', policy);
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: server.address, checkMaxmemoryPolicy, isGlobal: true }, { imports: [featureDeclaring(declarations)] });
    await app.close();
    return warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('maxmemory-policy'));
  }

  it('warns when an allkeys-* policy may evict durable keys, naming the features', async () => {
    expect(await warningsWith('allkeys-lru', [['cache', 'evictable'], ['lock', 'durable'], ['session', 'durable']])).toEqual([
      'Redis maxmemory-policy is "allkeys-lru": under memory pressure Redis may evict keys of lock, session. Use a volatile-* policy or noeviction, or a separate Redis for the cache.',
    ]);
  });

  it('warns when a pure cache runs on noeviction', async () => {
    const warnings = await warningsWith('noeviction', [['cache', 'evictable']]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^Redis maxmemory-policy is "noeviction": once maxmemory is reached, cache writes fail with OOM/);
  });

  it.each([
    ['volatile-lru', [['cache', 'evictable'], ['lock', 'durable']]],
    ['noeviction', [['lock', 'durable']]],
    ['allkeys-lfu', [['cache', 'evictable']]],
    ['allkeys-lru', []],
  ] as [string, [string, KeyDurability][]][])('stays quiet for %s with %j', async (policy, declarations) => {
    expect(await warningsWith(policy, declarations)).toEqual([]);
  });

  it('can be turned off', async () => {
    expect(await warningsWith('allkeys-lru', [['lock', 'durable']], false)).toEqual([]);
  });
});
