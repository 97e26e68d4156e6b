import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { INestApplicationContext } from '@nestjs/common';
import express from 'express';
import session from 'express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionService } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { startContext, topologies } from '../support/testing-app.js';

declare module 'express-session' {
  interface SessionData {
    userId: string;
    count: number;
  }
}

describe.each(topologies)('RedisSessionStore driven by express-session on $topology', ({ connection }) => {
  let nest: INestApplicationContext;
  let server: Server;
  let base: string;
  beforeAll(async () => {
    nest = await startContext({ connection: connection() });
    const app = express();
    app.use(session({ store: new RedisSessionStore(nest.get(SessionService)), secret: 'an-express-session-secret-of-some-length', resave: false, saveUninitialized: false }));
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
    app.post('/logout', (request, response) => request.session.destroy(() => response.json({ ok: true })));
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await nest.close();
  });

  const login = async (user: string, cookie?: string) => {
    const response = await fetch(`${base}/login/${user}`, { method: 'POST', headers: cookie ? { cookie } : {} });
    // express-session ends the response once the store has saved the session.
    await response.json();
    return response.headers.get('set-cookie')!.split(';')[0];
  };
  const count = async (cookie: string) => {
    const response = await fetch(`${base}/count`, { headers: { cookie } });
    return { status: response.status, body: (await response.json()) as { count?: number } };
  };

  it('keeps express-session sessions, indexed by user: listed, ended everywhere, and dead after regenerate', async () => {
    const user = `ann-${Date.now()}`;
    const anonymous = await login(`${user}-before`);
    const first = await login(user, anonymous);
    // regenerate at login: the session of the pre-login id is gone.
    expect((await count(anonymous)).status).toBe(401);
    expect((await count(first)).body).toEqual({ userId: user, count: 1 });
    expect((await count(first)).body).toEqual({ userId: user, count: 2 });
    const second = await login(user);

    const sessions = nest.get(SessionService);
    const listed = await sessions.listForUser(user);
    expect(listed.map((entry) => (entry.data.sess as { count: number }).count).sort()).toEqual([0, 2]);

    expect(await sessions.destroyAllForUser(user)).toBe(2);
    expect((await count(first)).status).toBe(401);
    expect((await count(second)).status).toBe(401);
  });

  it('destroys a session on logout', async () => {
    const cookie = await login(`bob-${Date.now()}`);
    expect((await count(cookie)).status).toBe(200);
    await fetch(`${base}/logout`, { method: 'POST', headers: { cookie } });
    expect((await count(cookie)).status).toBe(401);
  });
});
