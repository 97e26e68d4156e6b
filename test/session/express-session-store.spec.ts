import type { AddressInfo } from 'node:net';
import type { INestApplicationContext } from '@nestjs/common';
import express from 'express';
import session, { type SessionOptions } from 'express-session';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisConnections, RedisKeys, SessionService } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { sleep } from '../support/redis-server.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

declare module 'express-session' {
  interface SessionData {
    userId: string;
    count: number;
  }
}

const SECRET = 'an-express-session-secret-of-some-length';
let users = 0;
const freshUser = (name: string) => `${name}-${++users}-${Date.now()}`;

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

/** A request held open by `/slow` until the test lets it go on. */
class Gate {
  arrived = signal();
  release = signal();
}

/** An express app with express-session on a RedisSessionStore, listening on a free port. */
async function expressApp(nest: INestApplicationContext, options: Partial<SessionOptions> = {}) {
  const store = new RedisSessionStore(nest.get(SessionService));
  const gate = { current: new Gate() };
  const app = express();
  app.use(session({ store, secret: SECRET, resave: false, saveUninitialized: false, ...options }));
  app.post('/login/:user', (request, response) => {
    // A new id at login, as express-session recommends; the old one must stop working.
    request.session.regenerate(() => {
      request.session.userId = request.params.user;
      request.session.count = 0;
      response.json({ ok: true });
    });
  });
  app.get('/count', (request, response) => {
    if (!request.session.userId) return void response.status(401).json({ error: 'no session' });
    request.session.count = (request.session.count ?? 0) + 1;
    response.json({ userId: request.session.userId, count: request.session.count });
  });
  // Reads the session without changing it.
  app.get('/peek', (request, response) => response.json({ userId: request.session.userId ?? null }));
  app.get('/slow', async (request, response) => {
    gate.current.arrived.resolve();
    await gate.current.release.promise;
    request.session.count = (request.session.count ?? 0) + 100;
    response.json({ count: request.session.count });
  });
  app.post('/logout', (request, response) => request.session.destroy(() => response.json({ ok: true })));
  app.use((error: { statusCode?: number }, _request: express.Request, response: express.Response, _next: express.NextFunction) => {
    response.status(error.statusCode ?? 500).json({ error: String(error) });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, cookie?: string) => {
    const response = await fetch(`${base}${path}`, { method, headers: cookie ? { cookie } : {} });
    // express-session ends the response once the store has saved the session.
    const body = (await response.json()) as { count?: number; userId?: string | null };
    const setCookie = response.headers.get('set-cookie');
    return { status: response.status, body, setCookie, cookie: setCookie?.split(';')[0] };
  };
  return { store, gate, call, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe.each(topologies)('RedisSessionStore driven by express-session on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let nest: INestApplicationContext;
  let app: Awaited<ReturnType<typeof expressApp>>;
  const pttl = (sid: string) =>
    nest
      .get(RedisConnections)
      .get()
      .pttl(nest.get(RedisKeys).tagged(['s', RedisSessionStore.handleOf(sid)]));
  const sidOf = (cookie: string) => decodeURIComponent(cookie.split('=')[1]).slice(2).split('.')[0];
  beforeAll(async () => {
    nest = await startContext({ connection: connection(), keyPrefix });
    app = await expressApp(nest, { cookie: { maxAge: 60_000 } });
  });
  afterAll(async () => {
    await app.close();
    await nest.close();
  });
  const login = async (user: string, cookie?: string) => (await app.call('POST', `/login/${user}`, cookie)).cookie!;

  it('keeps sessions indexed by user: listed, ended everywhere, and dead after regenerate', async () => {
    const user = freshUser('ann');
    const anonymous = await login(`${user}-before`);
    const first = await login(user, anonymous);
    // regenerate at login: the session of the pre-login id is gone.
    expect((await app.call('GET', '/count', anonymous)).status).toBe(401);
    expect((await app.call('GET', '/count', first)).body).toEqual({ userId: user, count: 1 });
    expect((await app.call('GET', '/count', first)).body).toEqual({ userId: user, count: 2 });
    const second = await login(user);
    const sessions = nest.get(SessionService);
    const listed = await sessions.listForUser(user);
    expect(listed.map((entry) => (entry.data.sess as { count: number }).count).sort()).toEqual([0, 2]);
    expect(await sessions.destroyAllForUser(user)).toBe(2);
    expect((await app.call('GET', '/count', first)).status).toBe(401);
    expect((await app.call('GET', '/count', second)).status).toBe(401);
  });

  it('destroys a session on logout', async () => {
    const cookie = await login(freshUser('bob'));
    expect((await app.call('GET', '/count', cookie)).status).toBe(200);
    await app.call('POST', '/logout', cookie);
    expect((await app.call('GET', '/count', cookie)).status).toBe(401);
    expect(await pttl(sidOf(cookie))).toBe(-2);
  });

  it('saveUninitialized: false stores nothing for a visit that sets nothing; resave: false touches an unchanged session instead of saving it', async () => {
    const set = vi.spyOn(app.store, 'set');
    const touch = vi.spyOn(app.store, 'touch');
    try {
      const visit = await app.call('GET', '/peek');
      expect(visit).toMatchObject({ status: 200, setCookie: null });
      expect(set).not.toHaveBeenCalled();

      const cookie = await login(freshUser('cy'));
      set.mockClear();
      await sleep(300);
      const before = await pttl(sidOf(cookie));
      expect(await app.call('GET', '/peek', cookie)).toMatchObject({ status: 200, setCookie: null });
      expect(set).not.toHaveBeenCalled();
      expect(touch).toHaveBeenCalledTimes(1);
      // The touch moved the expiry to the cookie's new one (60s from now).
      expect(await pttl(sidOf(cookie))).toBeGreaterThan(before);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it("expires with the cookie's maxAge: a cookie replayed after it loads nothing", async () => {
    const cookie = await login(freshUser('dee'));
    expect(await pttl(sidOf(cookie))).toBeGreaterThan(59_000);
    expect(await pttl(sidOf(cookie))).toBeLessThanOrEqual(60_000);

    const short = await expressApp(nest, { cookie: { maxAge: 400 } });
    try {
      const replayed = (await short.call('POST', `/login/${freshUser('eve')}`)).cookie!;
      expect((await short.call('GET', '/count', replayed)).status).toBe(200);
      await sleep(600);
      expect((await short.call('GET', '/count', replayed)).status).toBe(401);
      expect(await pttl(sidOf(replayed))).toBe(-2);
    } finally {
      await short.close();
    }
  });

  it('rolling: sends the cookie again on every response, with the expiry moved in Redis too', async () => {
    const rolling = await expressApp(nest, { rolling: true, cookie: { maxAge: 60_000 } });
    try {
      const first = await rolling.call('POST', `/login/${freshUser('fay')}`);
      await sleep(1_100);
      const peek = await rolling.call('GET', '/peek', first.cookie);
      const expires = (setCookie: string | null) => Date.parse(/Expires=([^;]+)/.exec(setCookie!)![1]);
      expect(peek.cookie).toBe(first.cookie);
      expect(expires(peek.setCookie)).toBeGreaterThan(expires(first.setCookie));
      expect(await pttl(sidOf(first.cookie!))).toBeGreaterThan(59_000);
    } finally {
      await rolling.close();
    }
  });

  it('does not bring back a session destroyed while a request that loaded it was running', async () => {
    const user = freshUser('gus');
    const cookie = await login(user);
    app.gate.current = new Gate();
    const slow = app.call('GET', '/slow', cookie);
    await app.gate.current.arrived.promise;
    expect(await nest.get(SessionService).destroyAllForUser(user)).toBe(1);
    app.gate.current.release.resolve();
    // The slow request changed the session and express-session saved it: it stays destroyed.
    expect((await slow).body).toEqual({ count: 100 });
    expect((await app.call('GET', '/count', cookie)).status).toBe(401);
    expect(await pttl(sidOf(cookie))).toBe(-2);
    expect(await nest.get(SessionService).listForUser(user)).toEqual([]);
  });

  it('keeps sessions across a restart of the app on the same Redis', async () => {
    const user = freshUser('hal');
    const cookie = await login(user);
    expect((await app.call('GET', '/count', cookie)).body).toEqual({ userId: user, count: 1 });
    const restartedNest = await startContext({ connection: connection(), keyPrefix });
    const restarted = await expressApp(restartedNest, { cookie: { maxAge: 60_000 } });
    try {
      await app.close();
      await nest.close();
      expect((await restarted.call('GET', '/count', cookie)).body).toEqual({ userId: user, count: 2 });
    } finally {
      // The later tests of this file (none) and afterAll use the restarted app.
      [nest, app] = [restartedNest, restarted];
    }
  });
});
