import { Controller, Get, Injectable, UseGuards, type CanActivate, type ExecutionContext, type INestApplication } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimit, RateLimitExceededException, RateLimitGuard, RedisPatternsModule, SkipRateLimit } from '../../lib/index.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';

/** Plays authentication: `x-user` becomes `request.user`. */
@Injectable()
class FakeAuth implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<{ headers: Record<string, string>; user?: { id: string } }>();
    // 'lone' plays a user id that is not well-formed Unicode (as JSON bodies and tokens can carry).
    if (request.headers['x-user']) request.user = { id: request.headers['x-user'] === 'lone' ? 'ann\ud800' : request.headers['x-user'] };
    return true;
  }
}

const queryCost = (context: ExecutionContext) => Number(context.switchToHttp().getRequest<{ query: Record<string, string> }>().query.cost);

@Controller('limited')
@UseGuards(RateLimitGuard)
// Fixed windows are aligned to the clock: an hour long, so no test straddles a window's end.
@RateLimit({ name: 'per-route', limit: 3, window: '1h', algorithm: 'fixed-window' })
class LimitedController {
  @Get('class')
  classLimited() {
    return { ok: true };
  }

  @Get('stacked')
  @RateLimit({ name: 'burst', limit: 2, window: '1h', algorithm: 'fixed-window' })
  @RateLimit({ name: 'hourly', limit: 5, window: '1h', algorithm: 'fixed-window' })
  stacked() {
    return { ok: true };
  }

  @Get('costly')
  @RateLimit({ name: 'per-route', limit: 10, window: '1h', algorithm: 'fixed-window', cost: queryCost })
  costly() {
    return { ok: true };
  }

  @Get('skip-all')
  @SkipRateLimit()
  skipAll() {
    return { ok: true };
  }

  @Get('skip-one')
  @SkipRateLimit('per-route')
  skipOne() {
    return { ok: true };
  }

  @Get('by-user')
  @RateLimit({ name: 'per-route', limit: 1, window: '10s', by: 'user' })
  byUser() {
    return { ok: true };
  }

  @Get('lone-tracker')
  @RateLimit({ name: 'per-route', limit: 1, window: '10s', by: () => 'caller\udc00' })
  loneTracker() {
    return { ok: true };
  }

  @Get('tenant')
  @SkipRateLimit('global')
  @RateLimit({
    name: 'per-route',
    limit: 1,
    window: '10s',
    by: (context) => context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-tenant'],
  })
  tenant() {
    return { ok: true };
  }
}

describe.each(
  topologies.flatMap(({ topology, connection }) => [
    { platform: 'Express', topology, connection, adapter: () => new ExpressAdapter() },
    { platform: 'Fastify', topology, connection, adapter: () => new FastifyAdapter() },
  ]),
)('RateLimitGuard over HTTP ($platform, $topology)', ({ connection, adapter }) => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [
        RedisPatternsModule.forRoot({
          connection: connection(),
          keyPrefix: uniquePrefix(),
          rateLimit: { policies: [{ name: 'global', limit: 1000, window: '1m' }] },
        }),
      ],
      controllers: [LimitedController],
      providers: [{ provide: APP_GUARD, useClass: FakeAuth }],
    }).compile();
    app = moduleRef.createNestApplication(adapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/limited`;
  });
  afterAll(() => app.close());

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${path}`, { headers });
    const header = (name: string) => response.headers.get(name);
    return {
      status: response.status,
      policy: header('ratelimit-policy'),
      limits: header('ratelimit'),
      legacy: [header('x-ratelimit-limit'), header('x-ratelimit-remaining')],
      reset: Number(header('x-ratelimit-reset')),
      retryAfter: header('retry-after'),
      body: (await response.json()) as Record<string, unknown>,
    };
  };

  it('admits the limit, then answers 429 with Retry-After and the IETF and legacy headers', async () => {
    const first = await get('/class');
    expect(first).toMatchObject({
      status: 200,
      policy: '"global";q=1000;w=60, "per-route";q=3;w=3600',
      limits: expect.stringMatching(/^"global";r=999;t=\d+, "per-route";r=2;t=\d+$/),
      legacy: ['3', '2'],
      retryAfter: null,
    });
    expect(first.reset).toBeGreaterThanOrEqual(1);
    expect(first.reset).toBeLessThanOrEqual(3600);
    expect((await get('/class')).legacy).toEqual(['3', '1']);
    expect((await get('/class')).legacy).toEqual(['3', '0']);
    const rejected = await get('/class');
    expect(rejected).toMatchObject({
      status: 429,
      legacy: ['3', '0'],
      body: { statusCode: 429, message: 'Rate limit exceeded (per-route)' },
    });
    expect(Number(rejected.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(rejected.retryAfter)).toBeLessThanOrEqual(3600);
    expect(rejected.body.retryAfterMs).toBeGreaterThan(0);
    // The rejected request did not count against the module-wide policy either.
    expect(rejected.limits).toMatch(/^"global";r=997;t=\d+, "per-route";r=0;t=\d+$/);
    // Without trust proxy, X-Forwarded-For is the client's word and changes nothing.
    expect((await get('/class', { 'x-forwarded-for': '198.51.100.1' })).status).toBe(429);
  });

  it('checks stacked policies together and debits none when one rejects', async () => {
    expect((await get('/stacked')).status).toBe(200);
    const second = await get('/stacked');
    expect(second.policy).toBe('"global";q=1000;w=60, "per-route";q=3;w=3600, "hourly";q=5;w=3600, "burst";q=2;w=3600');
    expect(second.limits).toMatch(/"hourly";r=3;t=\d+, "burst";r=0;t=\d+$/);
    const third = await get('/stacked');
    expect(third.status).toBe(429);
    expect(third.body.message).toBe('Rate limit exceeded (burst)');
    // hourly still has 3: the rejected request spent nothing.
    expect(third.limits).toMatch(/"per-route";r=1;t=\d+, "hourly";r=3;t=\d+, "burst";r=0;t=\d+$/);
  });

  it('spends the cost of each request, and rejects one that can never fit without Retry-After', async () => {
    expect((await get('/costly?cost=4')).limits).toMatch(/"per-route";r=6;/);
    const over = await get('/costly?cost=7');
    expect(over.status).toBe(429);
    expect(over.retryAfter).not.toBeNull();
    expect((await get('/costly?cost=6')).status).toBe(200);
    const never = await get('/costly?cost=11');
    expect(never).toMatchObject({ status: 429, retryAfter: null, body: { retryAfterMs: null } });
    expect((await get('/costly?cost=0')).status).toBe(500);
  });

  it('skips every policy, or only the named one', async () => {
    const skipped = await get('/skip-all');
    expect(skipped).toMatchObject({ status: 200, policy: null, limits: null, legacy: [null, null] });
    expect((await get('/skip-one')).policy).toBe('"global";q=1000;w=60');
  });

  it('counts per user with by: "user", and per whatever a `by` function returns', async () => {
    const globalLeft = (limits: string | null) => Number(/"global";r=(\d+)/.exec(limits ?? '')?.[1]);
    const first = await get('/by-user', { 'x-user': 'alice' });
    expect(first.status).toBe(200);
    const rejected = await get('/by-user', { 'x-user': 'alice' });
    expect(rejected.status).toBe(429);
    // The per-IP global policy passed but was not spent (on a Cluster: refunded, the user is another
    // slot). A sliding window's previous-minute weight can only fade between requests, so: at least.
    expect(globalLeft(rejected.limits)).toBeGreaterThanOrEqual(globalLeft(first.limits));
    const bob = await get('/by-user', { 'x-user': 'bob' });
    expect(bob.status).toBe(200);
    expect(globalLeft(bob.limits)).toBeGreaterThanOrEqual(globalLeft(first.limits) - 1);
    expect(globalLeft(bob.limits)).toBeLessThanOrEqual(globalLeft(first.limits));
    expect((await get('/tenant', { 'x-tenant': 'acme' })).status).toBe(200);
    expect((await get('/tenant', { 'x-tenant': 'acme' })).status).toBe(429);
    expect((await get('/tenant', { 'x-tenant': 'globex' })).status).toBe(200);
    // A `by` function that returns nothing is a server error, not an unlimited request.
    expect((await get('/tenant')).status).toBe(500);
  });

  it('answers 400 for a tracker that is not well-formed Unicode (a user id or what `by` returned), naming it', async () => {
    expect(await get('/by-user', { 'x-user': 'lone' })).toMatchObject({
      status: 400,
      body: {
        message: expect.stringMatching(
          /^Invalid option "rate limit "per-route" tracker \(the user id\)": expected well-formed Unicode text/,
        ),
      },
    });
    expect(await get('/lone-tracker')).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/^Invalid option "rate limit "per-route" tracker \(what `by` returned\)"/) },
    });
  });

  it('throws without headers outside HTTP', async () => {
    const guard = app.get(RateLimitGuard);
    const rpc = () => {
      const context = new ExecutionContextHost([{}, {}], LimitedController, LimitedController.prototype.tenant);
      context.setType('rpc');
      return context;
    };
    const tenantOf = { 'x-tenant': 'rpc-tenant' };
    // /tenant skips the module-wide (per-IP) policy, and its `by` function reads headers from
    // what switchToHttp returns: here, the rpc data.
    const withHeaders = () => {
      const context = rpc();
      (context.getArgs() as unknown[])[0] = { headers: tenantOf };
      return context;
    };
    await expect(guard.canActivate(withHeaders())).resolves.toBe(true);
    await expect(guard.canActivate(withHeaders())).rejects.toBeInstanceOf(RateLimitExceededException);
  });
});

@Controller('base')
@RateLimit({ name: 'base', limit: 100, window: '1m' })
class BaseController {
  @Get()
  find() {
    return { ok: true };
  }
}

@Controller('derived')
@RateLimit({ name: 'derived', limit: 50, window: '1m' })
class DerivedController extends BaseController {}

describe('RateLimitGuard as an APP_GUARD and per controller at once, with inherited policies', () => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: topologies[0].connection(), keyPrefix: uniquePrefix() })],
      controllers: [LimitedController, DerivedController],
      providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
    }).compile();
    app = moduleRef.createNestApplication(new ExpressAdapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterAll(() => app.close());

  it("counts a request once, and a subclass keeps its parent's policies beside its own", async () => {
    const remaining = async (path: string) => (await fetch(`${base}${path}`)).headers.get('ratelimit');
    expect(await remaining('/limited/class')).toMatch(/"per-route";r=2;/);
    expect(await remaining('/limited/class')).toMatch(/"per-route";r=1;/);
    expect(await remaining('/derived')).toMatch(/^"base";r=99;t=\d+, "derived";r=49;t=\d+$/);
  });
});

describe.each([
  {
    platform: 'Express',
    adapter: () => new ExpressAdapter(),
    trust: (app: INestApplication) =>
      (app.getHttpAdapter().getInstance() as { set(name: string, value: unknown): void }).set('trust proxy', true),
  },
  { platform: 'Fastify', adapter: () => new FastifyAdapter({ trustProxy: true }), trust: () => undefined },
])("by: 'ip' behind a trusted proxy ($platform)", ({ adapter, trust }) => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RedisPatternsModule.forRoot({ connection: topologies[0].connection(), keyPrefix: uniquePrefix() })],
      controllers: [LimitedController],
    }).compile();
    app = moduleRef.createNestApplication(adapter(), { logger: false });
    trust(app);
    await app.listen(0, '127.0.0.1');
    base = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/limited/class`;
  });
  afterAll(() => app.close());

  it("counts each forwarded client separately, as the app's trust-proxy setting says", async () => {
    const status = async (client: string) => (await fetch(base, { headers: { 'x-forwarded-for': client } })).status;
    for (let i = 0; i < 3; i++) expect(await status('203.0.113.7')).toBe(200);
    expect(await status('203.0.113.7')).toBe(429);
    expect(await status('203.0.113.8')).toBe(200);
  });
});
