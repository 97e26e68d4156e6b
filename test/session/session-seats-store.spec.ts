import type { AddressInfo } from 'node:net';
import type { INestApplicationContext } from '@nestjs/common';
import express from 'express';
import session from 'express-session';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisKeys, SessionLimitError, SessionService, type OnSessionLimit } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { evictedOf, freshUser, sessionEvents, sessionKeysInRedis } from './seats.js';
import { asStored, freshId, sessionOf } from './store-sessions.js';

declare module 'express-session' {
  interface SessionData {
    userId: string;
  }
}

const SECRET = 'an-express-session-secret-of-some-length';

/** An Express app logging users in with express-session on `store`: regenerate, then an explicit save, whose error answers. */
async function expressApp(store: RedisSessionStore) {
  const app = express();
  app.use(session({ store, secret: SECRET, resave: false, saveUninitialized: false }));
  app.post('/login/:user', (request, response, next) => {
    request.session.regenerate((regenerated) => {
      if (regenerated) return next(regenerated);
      request.session.userId = request.params.user;
      // Saved before answering, so that a refused login is answered as such (see the README).
      request.session.save((error) => (error ? next(error) : response.json({ userId: request.params.user })));
    });
  });
  app.get('/me', (request, response) => response.json({ userId: request.session.userId ?? null }));
  app.use(
    (
      error: { statusCode?: number; message?: string },
      _request: express.Request,
      response: express.Response,
      _next: express.NextFunction,
    ) => {
      response.status(error.statusCode ?? 500).json({ error: error.message });
    },
  );
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, cookie?: string) => {
    const response = await fetch(`${base}${path}`, { method, headers: cookie ? { cookie } : {} });
    return {
      status: response.status,
      body: (await response.json()) as { userId?: string | null; error?: string },
      cookie: response.headers.get('set-cookie')?.split(';')[0],
    };
  };
  return { call, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe.each(topologies)('session seat limits with RedisSessionStore on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  /** Two instances refusing a third session of a user, and two evicting the oldest, on the same keys. */
  const instances: Record<OnSessionLimit, INestApplicationContext[]> = { reject: [], 'evict-oldest': [] };
  beforeAll(async () => {
    for (const onLimit of ['reject', 'evict-oldest'] as const)
      instances[onLimit] = await Promise.all(
        [1, 2].map(() =>
          startContext({
            connection: connection(),
            keyPrefix,
            session: { idleTtl: '100s', absoluteTtl: '150s', maxSessionsPerUser: 2, onLimit },
          }),
        ),
      );
  });
  afterAll(() =>
    Promise.all(
      Object.values(instances)
        .flat()
        .map((app) => app.close()),
    ),
  );

  const service = (onLimit: OnSessionLimit, n = 0) => instances[onLimit][n % 2].get(SessionService);
  const store = (onLimit: OnSessionLimit, n = 0) => new RedisSessionStore(service(onLimit, n));
  const handlesOf = async (userId: string) => (await service('reject').listForUser(userId)).map((listed) => listed.handle).sort();
  const keyOfSid = (sid: string) => instances.reject[0].get(RedisKeys).tagged(['s', RedisSessionStore.handleOf(sid)]);

  it('refuses a save that would give a user a session too many: nothing saved, the session left as it was', async () => {
    const userId = freshUser();
    const [first, second, third, anonymous] = [freshId(), freshId(), freshId(), freshId()];
    await store('reject', 0).set(first, sessionOf({ userId }));
    await store('reject', 1).set(second, sessionOf({ userId }));
    await expect(store('reject', 0).set(third, sessionOf({ userId }))).rejects.toMatchObject({
      constructor: SessionLimitError,
      limit: 2,
      statusCode: 409,
    });
    expect(await store('reject').get(third)).toBeNull();
    // An anonymous session logging in: refused, it stays anonymous, with its data.
    await store('reject').set(anonymous, sessionOf({ cart: ['book'] }));
    await expect(store('reject', 1).set(anonymous, sessionOf({ cart: ['book'], userId }))).rejects.toThrow(SessionLimitError);
    expect(await store('reject').get(anonymous)).toEqual(asStored(sessionOf({ cart: ['book'] })));
    // Saving a session that has its seat is no new session.
    await store('reject', 1).set(first, sessionOf({ userId, visits: 2 }));
    expect(await handlesOf(userId)).toEqual([first, second].map(RedisSessionStore.handleOf).sort());
    expect(await sessionKeysInRedis(instances.reject[0], userId)).toEqual([first, second].map(keyOfSid).sort());

    // The store's sessions and SessionService's share the user's seats.
    expect(await store('reject').destroy(second)).toBe(true);
    const made = await service('reject', 1).create(userId);
    await expect(store('reject').set(third, sessionOf({ userId }))).rejects.toThrow(SessionLimitError);
    await expect(service('reject').create(userId)).rejects.toThrow(SessionLimitError);
    expect(await handlesOf(userId)).toEqual([RedisSessionStore.handleOf(first), made.handle].sort());
  });

  it("evicts the oldest for a save with evict-oldest: the store's sessions deleted and announced to another instance", async () => {
    const { events, stop } = await sessionEvents(instances['evict-oldest'][1]);
    try {
      const userId = freshUser();
      const [first, second, third] = [freshId(), freshId(), freshId()];
      await store('evict-oldest', 0).set(first, sessionOf({ userId }));
      await store('evict-oldest', 1).set(second, sessionOf({ userId }));
      const made = await service('evict-oldest', 0).create(userId);
      expect(await store('evict-oldest').get(first)).toBeNull();
      await store('evict-oldest', 1).set(third, sessionOf({ userId }));
      expect(await store('evict-oldest').get(second)).toBeNull();
      expect(await handlesOf(userId)).toEqual([made.handle, RedisSessionStore.handleOf(third)].sort());
      expect(await sessionKeysInRedis(instances.reject[0], userId)).toHaveLength(2);
      await vi.waitFor(() => expect(evictedOf(events, userId)).toEqual([first, second].map(RedisSessionStore.handleOf).sort()));
    } finally {
      stop();
    }
  });

  it('never leaves more than the limit when store saves and service logins of one user race on two instances', async () => {
    for (const onLimit of ['reject', 'evict-oldest'] as const) {
      const userId = freshUser(onLimit);
      const results = await Promise.allSettled([
        ...Array.from({ length: 12 }, (_, n) => store(onLimit, n).set(freshId(), sessionOf({ userId, n }))),
        ...Array.from({ length: 6 }, (_, n) => service(onLimit, n).create(userId, { n })),
      ]);
      const admitted = results.filter((result) => result.status === 'fulfilled').length;
      for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(SessionLimitError);
      expect(admitted, onLimit).toBe(onLimit === 'reject' ? 2 : 18);
      expect(await handlesOf(userId)).toHaveLength(2);
      expect(await sessionKeysInRedis(instances.reject[0], userId)).toHaveLength(2);
    }
  });

  it('answers a login that express-session cannot save for the limit with 409, and logs nobody in', async () => {
    const [refusing, evicting] = await Promise.all([expressApp(store('reject')), expressApp(store('evict-oldest', 1))]);
    try {
      const userId = freshUser();
      const [first, second] = [await refusing.call('POST', `/login/${userId}`), await refusing.call('POST', `/login/${userId}`)];
      expect([first.status, second.status]).toEqual([200, 200]);
      const third = await refusing.call('POST', `/login/${userId}`);
      expect(third).toMatchObject({ status: 409, body: { error: expect.stringContaining('maxSessionsPerUser') } });
      expect((await refusing.call('GET', '/me', third.cookie)).body).toEqual({ userId: null });
      expect((await refusing.call('GET', '/me', first.cookie)).body).toEqual({ userId });

      // Evicting: the third login works, and the first device is logged out.
      expect((await evicting.call('POST', `/login/${userId}`)).status).toBe(200);
      expect((await evicting.call('GET', '/me', first.cookie)).body).toEqual({ userId: null });
      expect((await evicting.call('GET', '/me', second.cookie)).body).toEqual({ userId });
    } finally {
      await Promise.all([refusing.close(), evicting.close()]);
    }
  });
});
