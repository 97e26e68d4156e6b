import { Controller, Get, Logger, Post, Res, UseGuards, type INestApplication } from '@nestjs/common';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { sign } from 'cookie-signature';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CurrentSession, RedisPatternsModule, SessionCookies, SessionGuard, SessionService, type Session } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';

const SECRET = 'a-test-secret-that-is-long-enough-1234';

@Controller()
class AccountController {
  constructor(
    private readonly sessions: SessionService,
    private readonly cookies: SessionCookies,
  ) {}

  @Post('login')
  async login(@Res({ passthrough: true }) response: never): Promise<{ id: string }> {
    const session = await this.sessions.create('ann', { role: 'reader' });
    this.cookies.issue(response, session);
    return { id: session.id };
  }

  @Get('profile')
  @UseGuards(SessionGuard)
  profile(@CurrentSession() session: Session): { userId: string | null; data: Record<string, unknown> } {
    return { userId: session.userId, data: session.data };
  }
}

const modules = (connection: () => unknown, keyPrefix = uniquePrefix()) =>
  Test.createTestingModule({
    imports: [
      RedisPatternsModule.forRoot({
        connection: connection() as never,
        keyPrefix,
        commandTimeout: '300ms',
        reconnect: { minDelay: '20ms', maxDelay: '100ms' },
        session: { cookie: { secret: [SECRET, 'an-older-secret-still-accepted-56789'] } },
      }),
    ],
    controllers: [AccountController],
  }).compile();

describe.each(
  topologies.flatMap(({ topology, connection }) => [
    { platform: 'Express', topology, connection, adapter: () => new ExpressAdapter() },
    { platform: 'Fastify', topology, connection, adapter: () => new FastifyAdapter() },
  ]),
)('SessionGuard over HTTP ($platform, $topology)', ({ connection, adapter }) => {
  let app: INestApplication;
  let base: string;
  beforeAll(async () => {
    app = (await modules(connection)).createNestApplication(adapter(), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  });
  afterAll(() => app.close());

  const profile = (headers: Record<string, string>) => fetch(`${base}/profile`, { headers });

  it('issues a signed, HttpOnly, Secure, SameSite cookie, and lets its holder in', async () => {
    const login = await fetch(`${base}/login`, { method: 'POST' });
    const { id } = (await login.json()) as { id: string };
    const setCookie = login.headers.get('set-cookie')!;
    expect(setCookie).toMatch(
      new RegExp(
        `^sid=${encodeURIComponent(sign(id, SECRET)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; Max-Age=\\d+; Path=/; HttpOnly; Secure; SameSite=Lax$`,
      ),
    );
    const cookie = setCookie.split(';')[0];
    const response = await profile({ cookie });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ userId: 'ann', data: { role: 'reader' } });
    // A cookie signed with the older secret still verifies (rotation).
    expect((await profile({ cookie: `sid=${encodeURIComponent(sign(id, 'an-older-secret-still-accepted-56789'))}` })).status).toBe(200);
    // And an API client may send the id as a Bearer token.
    expect((await profile({ authorization: `Bearer ${id}` })).status).toBe(200);
  });

  it('answers 401 to a tampered or forged cookie and clears it; 401 without any', async () => {
    const { id } = (await (await fetch(`${base}/login`, { method: 'POST' })).json()) as { id: string };
    const tampered = await profile({ cookie: `sid=${encodeURIComponent(sign(id, SECRET).slice(0, -2) + 'xx')}` });
    expect(tampered.status).toBe(401);
    expect(tampered.headers.get('set-cookie')).toMatch(
      /^sid=; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$/,
    );
    // Correctly signed, but for an id that was never issued.
    expect((await profile({ cookie: `sid=${encodeURIComponent(sign('A'.repeat(43), SECRET))}` })).status).toBe(401);
    expect((await profile({})).status).toBe(401);
    expect((await profile({ authorization: 'Bearer nonsense' })).status).toBe(401);
  });
});

describe('SessionGuard when Redis is down', () => {
  const own = ownRedisServer();

  it('answers 503 (never 500), not a hang, while Redis is down, and logs no stack trace for it', async () => {
    const app = (await modules(() => own.server.address)).createNestApplication(new ExpressAdapter());
    const errors = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    await app.listen(0, '127.0.0.1');
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    try {
      const { id } = (await (await fetch(`${base}/login`, { method: 'POST' })).json()) as { id: string };
      await own.server.stop();
      const responses = await Promise.all([1, 2, 3].map(() => fetch(`${base}/profile`, { headers: { authorization: `Bearer ${id}` } })));
      expect(responses.map((response) => response.status)).toEqual([503, 503, 503]);
      expect(await responses[0].json()).toEqual({ statusCode: 503, message: 'Service Unavailable' });
      expect(errors).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
      await own.server.start();
      await app.close();
    }
  });
});
