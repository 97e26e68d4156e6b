import { Controller, Get, Logger, Param, Post, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  BloomFilterService,
  CacheEvict,
  CacheService,
  InjectLeaderboard,
  Leaderboard,
  LeaderboardService,
  RedisConnections,
  RedisKeys,
  RedisPatternsModule,
  RedisUnavailableError,
  type BloomFilter,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { waitFor } from '../support/redis-server.js';
import { startContext, standaloneConnection, uniquePrefix } from '../support/testing-app.js';

@Controller()
class OutageController {
  constructor(
    @InjectLeaderboard('arcade') private readonly board: Leaderboard,
    private readonly blooms: BloomFilterService,
  ) {}

  @Post('products/:id')
  @CacheEvict<[string]>({ key: (id) => `product:${id}` })
  async update(@Param('id') id: string): Promise<{ id: string }> {
    return { id };
  }

  @Get('top')
  top(): Promise<unknown> {
    return this.board.top(10);
  }

  @Post('seen/:id')
  seen(@Param('id') id: string): Promise<boolean> {
    return this.blooms.get('seen').add(id);
  }
}

describe('features that fail closed, while Redis is down: RedisUnavailableError, 503 over HTTP, never 500', () => {
  const own = ownRedisServer();
  let app: INestApplication;
  let base: string;
  const errors: unknown[] = [];
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisPatternsModule.forRoot({
          connection: own.server.address,
          keyPrefix: uniquePrefix(),
          commandTimeout: '300ms',
          reconnect: { minDelay: '20ms', maxDelay: '100ms' },
          cache: {},
          leaderboards: { arcade: {} },
          bloomFilters: { seen: { capacity: 1000, errorRate: 0.01, startsEmpty: true } },
        }),
      ],
      controllers: [OutageController],
    }).compile();
    app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: ['error'] });
    vi.spyOn(Logger.prototype, 'error').mockImplementation((message: unknown) => void errors.push(message));
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    await app.listen(0, '127.0.0.1');
    base = await app.getUrl();
  });
  afterAll(async () => {
    await app?.close();
    vi.restoreAllMocks();
  });

  const call = async (method: 'GET' | 'POST', path: string) => {
    const response = await fetch(`${base}${path}`, { method });
    return { status: response.status, body: (await response.json()) as unknown };
  };

  it('answers every route normally while Redis is up', async () => {
    expect(await call('POST', '/products/1')).toMatchObject({ status: 201 });
    expect(await call('GET', '/top')).toEqual({ status: 200, body: [] });
    expect(await call('POST', '/seen/a')).toEqual({ status: 201, body: true });
  });

  it('rejects service calls with RedisUnavailableError, answers 503 with a body that tells nothing of the inside, and logs no stack trace', async () => {
    await own.server.stop();
    const outage = expect.objectContaining({
      name: 'RedisUnavailableError',
      statusCode: 503,
      outage: expect.stringMatching(/^(disconnected|timeout)$/),
    });
    await expect(app.get(CacheService).set('k', 1)).rejects.toEqual(outage);
    await expect(app.get(CacheService).delete('k')).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(app.get(LeaderboardService).board('other').submit('ada', 1)).rejects.toEqual(outage);
    await expect(app.get(BloomFilterService).get('seen').mightContain('a')).rejects.toEqual(outage);
    for (const [method, path] of [
      ['POST', '/products/1'],
      ['GET', '/top'],
      ['POST', '/seen/b'],
    ] as const) {
      expect(await call(method, path)).toEqual({ status: 503, body: { statusCode: 503, message: 'Service Unavailable' } });
    }
    expect(errors).toEqual([]);
    await own.server.start();
    await waitFor(async () => (await call('GET', '/top')).status === 200, 'the routes to answer again', 10_000);
  });
});

describe('errors that are not outages are thrown as they are, not answered as Redis being away', () => {
  let app: Awaited<ReturnType<typeof startContext>>;
  beforeAll(async () => {
    app = await startContext({ connection: standaloneConnection(), cache: {} });
  });
  afterAll(() => app.close());

  it('a WRONGTYPE under a cache key, a board or a filter', async () => {
    const redis = app.get(RedisConnections).get();
    const keys = app.get(RedisKeys);
    const cache = app.get(CacheService);
    await redis.lpush(`${keys.prefix}{c:typed}`, 'not an entry');
    await expect(cache.get('typed')).rejects.toThrow(/^WRONGTYPE/);
    await expect(cache.getOrSet('typed', () => 'loaded')).rejects.toThrow(/^WRONGTYPE/);
    const board = app.get(LeaderboardService).board('typed-board');
    await redis.lpush(keys.tagged(['lb', 'typed-board', 'all'], 'desc-first-come'), 'x');
    await expect(board.count()).rejects.toThrow(/^WRONGTYPE/);
    const filter: BloomFilter = app
      .get(BloomFilterService)
      .filter('typed-filter', { capacity: 100, errorRate: 0.01, backend: 'bitmap', startsEmpty: true });
    await filter.add('a');
    await redis.del(keys.tagged(['bf', 'typed-filter'], 'meta'));
    await redis.lpush(keys.tagged(['bf', 'typed-filter'], 'meta'), 'x');
    await expect(filter.mightContain('a')).rejects.toThrow(/WRONGTYPE/);
    expect(cache.stats().errors).toBeGreaterThan(0);
  });
});
