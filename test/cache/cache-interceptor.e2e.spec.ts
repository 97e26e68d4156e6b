import {
  Controller,
  Get,
  Injectable,
  NotFoundException,
  Param,
  Post,
  Query,
  Res,
  UseInterceptors,
  type CanActivate,
  type ExecutionContext,
  type INestApplication,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheInterceptor, CacheTTL, NoCache, RedisPatternsModule } from '../../lib/index.js';
import { standaloneConnection, uniquePrefix } from '../support/testing-app.js';

const calls: Record<string, number> = {};
const count = (name: string) => (calls[name] = (calls[name] ?? 0) + 1);

/** Plays authentication: `x-user` becomes `request.user`. */
@Injectable()
class FakeAuth implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: { id: string } }>();
    if (request.headers['x-user']) request.user = { id: request.headers['x-user'] };
    if (request.headers['x-anonymous-token']) (request as { user?: unknown }).user = { scopes: ['read'] };
    return true;
  }
}

@Controller('items')
@UseInterceptors(CacheInterceptor)
class ItemsController {
  @Get('me')
  me(): { calls: number } {
    return { calls: count('me') };
  }

  @Get('stale')
  @CacheTTL(100)
  stale(): { calls: number } {
    return { calls: count('stale') };
  }

  @Get('teapot')
  teapot(@Res({ passthrough: true }) response: { status(code: number): unknown }): { calls: number } {
    response.status(418);
    return { calls: count('teapot') };
  }

  @Get('live')
  @NoCache()
  live(): { calls: number } {
    return { calls: count('live') };
  }

  @Get('missing')
  missing(): never {
    count('missing');
    throw new NotFoundException('no such item');
  }

  @Get(':id')
  @CacheTTL('1m')
  find(@Param('id') id: string, @Query() query: Record<string, string>): { id: string; query: Record<string, string>; calls: number } {
    return { id, query, calls: count(`find:${id}`) };
  }

  @Post(':id')
  update(@Param('id') id: string): { calls: number } {
    return { calls: count(`update:${id}`) };
  }
}

describe.each([
  ['Express', () => new ExpressAdapter()],
  ['Fastify', () => new FastifyAdapter()],
])('CacheInterceptor over HTTP (%s)', (_platform, adapter) => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    for (const name of Object.keys(calls)) delete calls[name];
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisPatternsModule.forRoot({
          connection: standaloneConnection(),
          keyPrefix: uniquePrefix(),
          cache: { staleWhileRevalidate: '10s' },
        }),
      ],
      controllers: [ItemsController],
      providers: [{ provide: APP_GUARD, useClass: FakeAuth }],
    }).compile();
    app = moduleRef.createNestApplication(adapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/items`;
  });
  afterAll(() => app.close());

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${path}`, { headers });
    return { status: response.status, cache: response.headers.get('x-cache'), body: (await response.json()) as any };
  };

  it('answers MISS, then HIT from the cache, whatever the order of the query parameters', async () => {
    expect(await get('/1?b=2&a=1')).toEqual({ status: 200, cache: 'MISS', body: { id: '1', query: { b: '2', a: '1' }, calls: 1 } });
    expect(await get('/1?a=1&b=2')).toMatchObject({ status: 200, cache: 'HIT', body: { calls: 1 } });
    expect(await get('/1?a=2')).toMatchObject({ cache: 'MISS', body: { calls: 2 } });
    expect(calls['find:1']).toBe(2);
  });

  it("keeps one user's response from another user", async () => {
    expect((await get('/me', { 'x-user': 'alice' })).body.calls).toBe(1);
    expect(await get('/me', { 'x-user': 'bob' })).toMatchObject({ cache: 'MISS', body: { calls: 2 } });
    expect(await get('/me', { 'x-user': 'alice' })).toMatchObject({ cache: 'HIT', body: { calls: 1 } });
    expect(await get('/me')).toMatchObject({ cache: 'MISS', body: { calls: 3 } });
  });

  it('does not cache for a user it cannot tell apart (no id, sub or userId)', async () => {
    expect(await get('/me', { 'x-anonymous-token': 't1' })).toMatchObject({ cache: null, body: { calls: 4 } });
    expect(await get('/me', { 'x-anonymous-token': 't2' })).toMatchObject({ cache: null, body: { calls: 5 } });
  });

  it('does not cache a response whose status is not 2xx', async () => {
    expect((await get('/teapot')).status).toBe(418);
    expect((await get('/teapot')).status).toBe(418);
    expect(calls.teapot).toBe(2);
  });

  it('honours Cache-Control: no-cache by fetching and storing a fresh response', async () => {
    await get('/2');
    expect(await get('/2', { 'cache-control': 'no-cache' })).toMatchObject({ cache: 'MISS', body: { calls: 2 } });
    expect(await get('/2')).toMatchObject({ cache: 'HIT', body: { calls: 2 } });
  });

  it('serves STALE past the TTL while one refresh runs', async () => {
    await get('/stale');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(await get('/stale')).toMatchObject({ cache: 'STALE', body: { calls: 1 } });
    await expect.poll(async () => (await get('/stale')).body.calls).toBe(2);
  });

  it('does not cache @NoCache handlers, errors, or other methods', async () => {
    expect(await get('/live')).toMatchObject({ cache: null, body: { calls: 1 } });
    expect(await get('/live')).toMatchObject({ cache: null, body: { calls: 2 } });
    expect((await get('/missing')).status).toBe(404);
    expect((await get('/missing')).status).toBe(404);
    expect(calls.missing).toBe(2);
    const post = async () => (await (await fetch(`${base}/9`, { method: 'POST' })).json()) as { calls: number };
    expect([(await post()).calls, (await post()).calls]).toEqual([1, 2]);
  });
});
