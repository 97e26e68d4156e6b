import fastifyCookie from '@fastify/cookie';
import fastifySession, { type FastifySessionOptions } from '@fastify/session';
import type { INestApplicationContext } from '@nestjs/common';
import Fastify, { type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, SessionService } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { sleep } from '../support/redis-server.js';
import { startContext, topologies } from '../support/testing-app.js';

declare module 'fastify' {
  interface Session {
    userId?: string;
    count?: number;
    returningVisitor?: boolean;
  }
}

let users = 0;
const freshUser = (name: string) => `${name}-${++users}-${Date.now()}`;

let generated = 0;
/** Ids like the custom `idGenerator`s of @fastify/session's own tests make: short, and not base64url. */
const customIds = (request: FastifyRequest) =>
  `${request.session?.returningVisitor ? 'returningVisitor' : 'custom'}.${process.pid}-${++generated}`;

/** A Fastify app with @fastify/session on a RedisSessionStore, listening on a free port. */
async function fastifyApp(nest: INestApplicationContext, options: Partial<FastifySessionOptions> = {}) {
  const app = Fastify();
  let release: () => void = () => undefined;
  let arrived: () => void = () => undefined;
  const slowRequest = () => {
    const entered = new Promise<void>((resolve) => (arrived = resolve));
    return { entered, release: () => release() };
  };
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: 'a-fastify-session-secret-of-32-characters-or-more',
    store: new RedisSessionStore(nest.get(SessionService)) as never,
    cookie: { secure: false, maxAge: 60_000 },
    saveUninitialized: false,
    idGenerator: customIds,
    ...options,
  });
  app.post('/login/:user', async (request) => {
    request.session.returningVisitor = true;
    await request.session.regenerate(['returningVisitor']);
    request.session.userId = (request.params as { user: string }).user;
    request.session.count = 0;
    return { sessionId: request.session.sessionId };
  });
  app.get('/count', async (request, reply) => {
    if (!request.session.userId) return reply.status(401).send({ error: 'no session' });
    request.session.count = (request.session.count ?? 0) + 1;
    return { userId: request.session.userId, count: request.session.count };
  });
  app.get('/slow', async (request) => {
    await new Promise<void>((resolve) => {
      release = resolve;
      arrived();
    });
    request.session.count = (request.session.count ?? 0) + 100;
    return { count: request.session.count };
  });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const call = async (method: string, path: string, cookie?: string) => {
    const response = await fetch(`${base}${path}`, { method, headers: cookie ? { cookie } : {} });
    const body = (await response.json()) as { sessionId?: string; count?: number };
    return { status: response.status, body, cookie: response.headers.get('set-cookie')?.split(';')[0] ?? cookie };
  };
  return { call, slowRequest, close: () => app.close() };
}

describe.each(topologies)('RedisSessionStore driven by @fastify/session on $topology', ({ connection }) => {
  let nest: INestApplicationContext;
  let app: Awaited<ReturnType<typeof fastifyApp>>;
  const pttl = (sid: string) =>
    nest
      .get(RedisConnections)
      .get()
      .pttl(nest.get(RedisKeys).tagged(['s', RedisSessionStore.handleOf(sid)]));
  beforeAll(async () => {
    nest = await startContext({ connection: connection() });
    app = await fastifyApp(nest);
  });
  afterAll(async () => {
    await app.close();
    await nest.close();
  });

  it('keeps sessions with a custom idGenerator (short ids), listed per user and ended everywhere', async () => {
    const user = freshUser('cy');
    const login = await app.call('POST', `/login/${user}`);
    // regenerate asked the generator again, for a returning visitor.
    expect(login.body.sessionId).toMatch(/^returningVisitor\.\d+-\d+$/);
    expect(await pttl(login.body.sessionId!)).toBeLessThanOrEqual(60_000);
    expect((await app.call('GET', '/count', login.cookie)).body).toEqual({ userId: user, count: 1 });
    expect((await app.call('GET', '/count', login.cookie)).body).toEqual({ userId: user, count: 2 });
    const sessions = nest.get(SessionService);
    expect(await sessions.listForUser(user)).toHaveLength(1);
    expect(await sessions.destroyAllForUser(user)).toBe(1);
    expect((await app.call('GET', '/count', login.cookie)).status).toBe(401);
  });

  it('does not bring back a session destroyed while a request that loaded it was running', async () => {
    const user = freshUser('dot');
    const login = await app.call('POST', `/login/${user}`);
    const gate = app.slowRequest();
    const slow = app.call('GET', '/slow', login.cookie);
    await gate.entered;
    expect(await nest.get(SessionService).destroyAllForUser(user)).toBe(1);
    gate.release();
    // The slow request changed the session and @fastify/session saved it: it stays destroyed.
    expect((await slow).body).toEqual({ count: 100 });
    expect((await app.call('GET', '/count', login.cookie)).status).toBe(401);
    expect(await pttl(login.body.sessionId!)).toBe(-2);
  });

  it("expires with the cookie's maxAge, also with rolling: false", async () => {
    const short = await fastifyApp(nest, { rolling: false, cookie: { secure: false, maxAge: 400 } });
    try {
      const login = await short.call('POST', `/login/${freshUser('eli')}`);
      expect(await pttl(login.body.sessionId!)).toBeLessThanOrEqual(400);
      expect((await short.call('GET', '/count', login.cookie)).status).toBe(200);
      await sleep(600);
      expect(await pttl(login.body.sessionId!)).toBe(-2);
      expect((await short.call('GET', '/count', login.cookie)).status).toBe(401);
    } finally {
      await short.close();
    }
  });
});
