import { existsSync } from 'node:fs';
import { Controller, Get, Injectable, Param, UseGuards, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cacheable, RateLimit, RateLimitGuard, RedisPatternsModule } from '../../lib/index.js';
import { RedisServerNotFoundError, RedisTestCluster, RedisTestServer, command } from '../../lib/testing/index.js';

/** What a user's app has: a cached service and a rate-limited route. */
@Injectable()
class Prices {
  loads = 0;

  @Cacheable({ key: (sku: string) => `price:${sku}`, ttl: '1m' })
  async find(sku: string): Promise<{ sku: string; cents: number }> {
    this.loads++;
    return { sku, cents: 1999 };
  }
}

@Controller('prices')
@UseGuards(RateLimitGuard)
class PricesController {
  constructor(private readonly prices: Prices) {}

  @Get(':sku')
  @RateLimit({ limit: 2, window: '1m' })
  find(@Param('sku') sku: string) {
    return this.prices.find(sku);
  }
}

/** The README's example: a user's e2e test over a real Redis (a server or a Cluster) from nestjs-redis-patterns/testing. */
describe.each([
  { topology: 'standalone', start: () => RedisTestServer.start() },
  { topology: 'cluster', start: () => RedisTestCluster.start() },
])('an e2e test with nestjs-redis-patterns/testing on $topology', ({ start }) => {
  let redis: RedisTestServer | RedisTestCluster;
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    redis = await start();
    const moduleRef = await Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: redis.connection })],
      controllers: [PricesController],
      providers: [Prices],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterEach(() => redis.flush());
  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  it('caches the service in Redis and limits the route', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await fetch(`${url}/prices/sku-1`));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 429]);
    expect(await answers[0].json()).toEqual({ sku: 'sku-1', cents: 1999 });
    expect(await answers[1].json()).toEqual({ sku: 'sku-1', cents: 1999 });
    expect(app.get(Prices).loads).toBe(1);
    expect(await keyCount(redis)).toBeGreaterThanOrEqual(2); // the cached price and the caller's counter
  });

  it('starts every test empty after flush(): the limit and the cache start afresh', async () => {
    expect(await keyCount(redis)).toBe(0);
    app.get(Prices).loads = 0;
    const answer = await fetch(`${url}/prices/sku-1`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('ratelimit')).toMatch(/;r=1;t=\d+$/);
    expect(app.get(Prices).loads).toBe(1);
  });
});

describe('RedisTestServer', () => {
  it('keeps its port over stop() and start(), and destroy() removes its directory', async () => {
    const server = await RedisTestServer.start();
    try {
      expect(await command(server.port, 'SET kept no:persistence-is-off')).toBe('+OK\r\n');
      await server.stop();
      await expect(command(server.port, 'PING')).rejects.toThrow();
      await server.start();
      expect(await command(server.port, 'EXISTS kept')).toBe(':0\r\n');
      expect(server.connection).toEqual({ url: `redis://127.0.0.1:${server.port}` });
      const dir = (await command(server.port, 'CONFIG GET dir')).split('\r\n')[4];
      expect(existsSync(dir)).toBe(true);
      await server.destroy();
      expect(existsSync(dir)).toBe(false);
    } finally {
      await server.destroy();
    }
  });

  it('names the missing binary and the package to install', async () => {
    const missing = await RedisTestServer.start({ binary: 'redis-server-not-installed' }).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(RedisServerNotFoundError);
    expect((missing as RedisServerNotFoundError).binary).toBe('redis-server-not-installed');
    expect((missing as Error).message).toMatch(/^redis-server-not-installed was not found on PATH/);
    expect((missing as Error).message).toContain('apt-get install -y redis-server');
  });
});

async function keyCount(redis: RedisTestServer | RedisTestCluster): Promise<number> {
  const servers = redis instanceof RedisTestCluster ? redis.servers : [redis];
  const sizes = await Promise.all(servers.map((server) => command(server.port, 'DBSIZE')));
  return sizes.reduce((sum, size) => sum + Number(size.slice(1)), 0);
}
