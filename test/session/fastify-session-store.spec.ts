import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import type { INestApplicationContext } from '@nestjs/common';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionService } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { startContext, topologies } from '../support/testing-app.js';

declare module 'fastify' {
  interface Session {
    userId?: string;
    count?: number;
  }
}

describe.each(topologies)('RedisSessionStore driven by @fastify/session on $topology', ({ connection }) => {
  let nest: INestApplicationContext;
  let app: FastifyInstance;
  let base: string;
  beforeAll(async () => {
    nest = await startContext({ connection: connection() });
    app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, { secret: 'a-fastify-session-secret-of-32-characters-or-more', store: new RedisSessionStore(nest.get(SessionService)) as never, cookie: { secure: false }, saveUninitialized: false });
    app.post('/login/:user', async (request) => {
      await request.session.regenerate();
      request.session.userId = (request.params as { user: string }).user;
      request.session.count = 0;
      return { ok: true };
    });
    app.get('/count', async (request, reply) => {
      if (!request.session.userId) return reply.status(401).send({ error: 'no session' });
      request.session.count = (request.session.count ?? 0) + 1;
      return { userId: request.session.userId, count: request.session.count };
    });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await app.close();
    await nest.close();
  });

  it('keeps @fastify/session sessions, listed per user and ended everywhere', async () => {
    const user = `cy-${Date.now()}`;
    const login = await fetch(`${base}/login/${user}`, { method: 'POST' });
    expect(await login.json()).toEqual({ ok: true });
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    const count = async () => {
      const response = await fetch(`${base}/count`, { headers: { cookie } });
      return { status: response.status, body: await response.json() };
    };
    expect(await count()).toEqual({ status: 200, body: { userId: user, count: 1 } });
    expect(await count()).toEqual({ status: 200, body: { userId: user, count: 2 } });
    const sessions = nest.get(SessionService);
    expect(await sessions.listForUser(user)).toHaveLength(1);
    expect(await sessions.destroyAllForUser(user)).toBe(1);
    expect((await count()).status).toBe(401);
  });
});
