import type { AddressInfo } from 'node:net';
import { Logger, type INestApplicationContext } from '@nestjs/common';
import express from 'express';
import session, { type SessionData } from 'express-session';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisConnections, RedisKeys, RedisUnavailableError, SessionService } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

const sessionOf = (fields: Record<string, unknown> = {}) =>
  ({ ...fields, cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) } }) as unknown as SessionData;
/** What a store method hands its callback. */
const callbackOf = (call: (callback: (error: unknown) => void) => void) =>
  new Promise<unknown>((resolve) => call((error) => resolve(error)));
const outageWarnings = (warn: { mock: { calls: unknown[][] } }) =>
  warn.mock.calls
    .map(([message]) => String(message))
    .filter((message) => message.startsWith('Redis connection "default" is unavailable to sessions ('));

describe('sessions when Redis stops', () => {
  const own = ownRedisServer();
  let app: INestApplicationContext;
  let sessions: SessionService;
  let store: RedisSessionStore;
  beforeAll(async () => {
    app = await startContext({
      connection: own.server.address,
      commandTimeout: '300ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    sessions = app.get(SessionService);
    store = new RedisSessionStore(sessions);
  });
  afterAll(() => app?.close());

  it('throws what is not an outage as it is (WRONGTYPE), and logs no outage for it', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const { id, handle } = await sessions.create('wrongtype-user');
      await app
        .get(RedisConnections)
        .get()
        .set(app.get(RedisKeys).tagged(['s', handle]), 'not a hash');
      const error = await sessions.get(id).then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      expect(error).not.toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ message: expect.stringMatching(/^WRONGTYPE/) });
      expect(outageWarnings(warn)).toEqual([]);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('rejects every call with RedisUnavailableError (503), hands it to every store callback, logs the outage once, and works again after', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    try {
      const { id, handle } = await sessions.create('outage-user', { a: 1 });
      await store.set('outage-sid', sessionOf({ userId: 'outage-user' }));
      await own.server.stop();

      const serviceCalls: [string, () => Promise<unknown>][] = [
        ['get', () => sessions.get(id)],
        ['create', () => sessions.create('outage-user')],
        ['create with a seat limit', () => sessions.create('outage-user', {}, { maxSessionsPerUser: 2 })],
        ['regenerate into a seat', () => sessions.regenerate(id, { maxSessionsPerUser: 2 })],
        ['update', () => sessions.update(id, { a: 2 })],
        ['regenerate', () => sessions.regenerate(id)],
        ['destroy', () => sessions.destroy(id)],
        ['listForUser', () => sessions.listForUser('outage-user')],
        ['destroyAllForUser', () => sessions.destroyAllForUser('outage-user')],
        ['destroyHandle', () => sessions.destroyHandle('outage-user', handle)],
      ];
      for (const [name, call] of serviceCalls) {
        const error = await call().then(
          () => undefined,
          (rejection: unknown) => rejection,
        );
        expect(error, name).toBeInstanceOf(RedisUnavailableError);
        expect(error, name).toMatchObject({ statusCode: 503, feature: 'sessions' });
        expect((error as RedisUnavailableError).getStatus(), name).toBe(503);
      }

      const storeCalls: [string, (callback: (error: unknown) => void) => void][] = [
        ['get', (callback) => store.get('outage-sid', callback)],
        ['set', (callback) => store.set('outage-sid', sessionOf(), callback)],
        ['touch', (callback) => store.touch('outage-sid', sessionOf(), callback)],
        ['destroy', (callback) => store.destroy('outage-sid', callback)],
        ['ids', (callback) => store.ids(callback)],
        ['all', (callback) => store.all(callback)],
        ['length', (callback) => store.length(callback)],
        ['clear', (callback) => store.clear(callback)],
      ];
      for (const [name, call] of storeCalls) {
        const error = await callbackOf(call);
        expect(error, name).toBeInstanceOf(RedisUnavailableError);
        expect(error, name).toMatchObject({ statusCode: 503 });
      }
      // One warning for the whole outage, in the library's words.
      expect(outageWarnings(warn)).toHaveLength(1);

      await own.server.start();
      await waitFor(
        () =>
          sessions.get(id).then(
            () => true,
            () => false,
          ),
        'Redis to be back',
        10_000,
      );
      // The server kept no data over its restart, but every call works again.
      expect(await store.length()).toBe(0);
      expect((await sessions.create('outage-user')).userId).toBe('outage-user');
    } finally {
      vi.restoreAllMocks();
      await own.server.start();
    }
  });

  it('answers 503 through express-session when the store cannot reach Redis', async () => {
    const web = express();
    web.use(session({ store, secret: 'an-express-session-secret-of-some-length', resave: false, saveUninitialized: false }));
    web.post('/login', (request, response) => {
      (request.session as unknown as { userId: string }).userId = 'web-user';
      response.json({ ok: true });
    });
    web.get('/me', (request, response) => response.json({ userId: (request.session as unknown as { userId?: string }).userId ?? null }));
    const server = web.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    try {
      // The test before restarted Redis: the store's connection may not be back yet.
      await waitFor(
        () =>
          store.length().then(
            () => true,
            () => false,
          ),
        'Redis to be back',
        10_000,
      );
      const login = await fetch(`${base}/login`, { method: 'POST' });
      const cookie = login.headers.get('set-cookie')!.split(';')[0];
      expect(await (await fetch(`${base}/me`, { headers: { cookie } })).json()).toEqual({ userId: 'web-user' });
      await own.server.stop();
      // express-session passes the store's error to next(): Express's own handler answers its statusCode.
      expect((await fetch(`${base}/me`, { headers: { cookie } })).status).toBe(503);
    } finally {
      vi.restoreAllMocks();
      await own.server.start();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
