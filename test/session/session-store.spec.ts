import type { INestApplicationContext } from '@nestjs/common';
import type { SessionData } from 'express-session';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError, RedisConnections, RedisKeys, SessionService, type RedisCodec } from '../../lib/index.js';
import { masterNodes } from '../../lib/core/redis-client.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { sleep } from '../support/redis-server.js';
import { startContext, topologies } from '../support/testing-app.js';
import { asStored, commandsSent, freshId, sessionOf, sessionPttl, startStore } from './store-sessions.js';

describe.each(topologies)('RedisSessionStore on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let store: RedisSessionStore;
  let sessions: SessionService;
  const pttl = (sid: string) => sessionPttl(app, sid);
  beforeAll(async () => ({ app, sessions, store } = await startStore(connection)));
  afterAll(() => app.close());

  it('returns a session exactly as it was set, to a callback or as a Promise without one', async () => {
    const sid = freshId();
    const session = sessionOf({ foo: 'bar', nested: { list: [1, 'two', null] } }, 60_000);
    const done = await new Promise<unknown[]>((resolve) => expect(store.set(sid, session, (...args) => resolve(args))).toBeUndefined());
    expect(done).toEqual([null, undefined]);
    const viaCallback = await new Promise<unknown[]>((resolve) => store.get(sid, (...args) => resolve(args)));
    expect(viaCallback).toEqual([null, asStored(session)]);
    // Nothing of the store's own rides along in the session.
    expect(Object.keys(viaCallback[1] as object).sort()).toEqual(['cookie', 'foo', 'nested']);
    const viaPromise = store.get(sid);
    expect(viaPromise).toBeInstanceOf(Promise);
    expect(await viaPromise).toEqual(asStored(session));
    expect(await store.get(freshId())).toBeNull();
  });

  it("stores the session as its JSON text (or through the app's own codec), and gives back exactly what JSON gives back", async () => {
    const session = sessionOf(
      { list: [undefined, Number.NaN, -0, 'x'], map: new Map([[1, 2]]), when: new Date(0), $nrp: 'Object' },
      60_000,
    );
    const sid = freshId();
    const stored = (context: INestApplicationContext) =>
      context
        .get(RedisConnections)
        .get()
        .hget(context.get(RedisKeys).tagged(['s', RedisSessionStore.handleOf(sid)]), 'd:sess');
    await store.set(sid, session);
    expect(await stored(app)).toBe(JSON.stringify(session));
    expect(await store.get(sid)).toEqual(asStored(session));
    await expect(store.set(freshId(), undefined as unknown as SessionData)).rejects.toMatchObject({
      constructor: InvalidOptionError,
      option: 'session',
    });

    const base64: RedisCodec = {
      encode: (value) => `b64:${Buffer.from(JSON.stringify(value)).toString('base64')}`,
      decode: (raw) => JSON.parse(Buffer.from(String(raw).slice(4), 'base64').toString()),
    };
    const own = await startContext({ connection: connection(), codec: base64 });
    try {
      const encoded = new RedisSessionStore(own.get(SessionService));
      await encoded.set(sid, session);
      expect(await stored(own)).toMatch(/^b64:/);
      expect(await encoded.get(sid)).toEqual(asStored(session));
    } finally {
      await own.close();
    }
  });

  it('loads a session saved by 0.1 (no `o` field, as SessionService writes it) as missing, and leaves it to expire', async () => {
    const saved = await sessions.create(freshId('user'), { sess: asStored(sessionOf({ n: 1 }, 60_000)) });
    expect(await store.get(saved.id)).toBeNull();
    expect(await sessions.get(saved.id)).not.toBeNull();
  });

  it("expires with the idle timeout, or the cookie's expiry when earlier; touch moves it as the middleware asks", async () => {
    const plain = freshId();
    await store.set(plain, sessionOf({ foo: 'bar' }));
    // No cookie expiry (a browser-session cookie): the idle timeout.
    expect(await pttl(plain)).toBeGreaterThan(99_000);
    expect(await pttl(plain)).toBeLessThanOrEqual(100_000);

    const capped = freshId();
    await store.set(capped, sessionOf({}, 60_000));
    expect(await pttl(capped)).toBeGreaterThan(59_000);
    expect(await pttl(capped)).toBeLessThanOrEqual(60_000);
    expect(await store.touch(capped, sessionOf({}, 90_000))).toBeUndefined();
    expect(await pttl(capped)).toBeGreaterThan(89_000);
    expect(await pttl(capped)).toBeLessThanOrEqual(90_000);
    // A touch without the session slides the idle timeout only: the cookie's cap stays.
    await store.touch(capped, undefined as unknown as SessionData);
    expect(await pttl(capped)).toBeLessThanOrEqual(90_000);
    // A cookie that outlives the idle timeout does not extend it.
    await store.touch(capped, sessionOf({}, 300_000));
    expect(await pttl(capped)).toBeLessThanOrEqual(100_000);
    // A touch of a session that is gone starts nothing.
    const gone = freshId();
    await store.touch(gone, sessionOf({}, 60_000));
    expect(await store.get(gone)).toBeNull();
  });

  it('sends nothing for a touch that moves no cap before the slide of a session it read is due, as a read slides', async () => {
    const own = await startStore(connection, { idleTtl: '100s', absoluteTtl: '150s', touchInterval: '500ms' });
    try {
      const redis = own.app.get(RedisConnections).get();
      const keys = own.app.get(RedisKeys);
      const meta = async (sid: string) => (await redis.hget(keys.tagged(['s', RedisSessionStore.handleOf(sid)]), 'm'))!.split(',');
      const commandsOf = (action: () => Promise<unknown>) => commandsSent(redis, action);
      const sid = freshId();
      // A browser-session cookie (no expiry), as express-session's default makes.
      await own.store.set(sid, sessionOf({ n: 1 }));
      const loaded = (await own.store.get(sid))!;
      const [, seen, , , cap] = await meta(sid);
      expect(cap).toBe('');
      // The touch at the end of the request that loaded it, within the touch interval: nothing sent, nothing moves.
      expect(await commandsOf(() => own.store.touch(sid, loaded))).toEqual([]);
      expect(await commandsOf(() => own.store.touch(sid, undefined as unknown as SessionData))).toEqual([]);
      expect((await meta(sid))[1]).toBe(seen);
      // A touch that moves a cap is sent, and sets it.
      expect(await commandsOf(() => own.store.touch(sid, sessionOf({}, 60_000)))).toEqual(['evalsha']);
      expect(Number((await meta(sid))[4])).toBeGreaterThan(Number(seen) + 59_000);
      // Capped now: a touch with a cookie without expiry takes the cap away, read or not since.
      expect(await commandsOf(() => own.store.touch(sid, sessionOf({})))).toEqual(['evalsha']);
      expect((await meta(sid))[4]).toBe('');
      await own.store.set(sid, sessionOf({ n: 2 }, 60_000));
      await own.store.get(sid);
      expect(await commandsOf(() => own.store.touch(sid, sessionOf({ n: 2 })))).toEqual(['evalsha']);
      expect((await meta(sid))[4]).toBe('');
      // Past the touch interval: sent, and it slides the idle timeout.
      await own.store.get(sid);
      await sleep(600);
      const [, before] = await meta(sid);
      expect(await commandsOf(() => own.store.touch(sid, sessionOf({ n: 2 })))).toEqual(['evalsha']);
      expect(Number((await meta(sid))[1])).toBeGreaterThanOrEqual(Number(before) + 500);
      // A session this instance has not read: sent.
      const other = freshId();
      await own.store.set(other, sessionOf());
      const [, otherSeen] = await meta(other);
      await sleep(20);
      expect(await commandsOf(() => own.store.touch(other, sessionOf()))).toEqual(['evalsha']);
      expect(Number((await meta(other))[1])).toBeGreaterThan(Number(otherSeen));
    } finally {
      await own.app.close();
    }
  });

  it('accepts any id session middleware may make, hashed before it becomes a key, and refuses the rest by name', async () => {
    const accepted = ['123', `custom-${Date.now()}`, 'a b%;=,"\\/{s:x}*?', 'Zoë-😀-ключ', 'x'.repeat(256)];
    for (const sid of accepted) {
      await store.set(sid, sessionOf({ sid }));
      expect((await store.get(sid)) as unknown).toMatchObject({ sid });
    }
    expect(accepted.map((sid) => RedisSessionStore.handleOf(sid))).toEqual(accepted.map(() => expect.stringMatching(/^[\w-]{43}$/)));

    const redis = app.get(RedisConnections).get();
    const refused = ['', 'x'.repeat(257), 'line\nbreak', 'nul\0', 'lone\uD800surrogate', 42 as unknown as string];
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      for (const sid of refused) {
        await expect(store.set(sid, sessionOf())).rejects.toMatchObject({ constructor: InvalidOptionError, option: 'sid' });
        expect(await store.get(sid)).toBeNull();
        expect(await store.destroy(sid)).toBe(false);
        await store.touch(sid, sessionOf());
      }
      expect(sent).not.toHaveBeenCalled();
    } finally {
      sent.mockRestore();
    }
  });

  it('never holds a raw id: a dump of Redis has no live session token', async () => {
    const sid = `custom-${Date.now()}-secret-token`;
    await store.set(sid, sessionOf({ userId: 'dump-user' }));
    const redis = app.get(RedisConnections).get();
    const prefix = app.get(RedisKeys).prefix;
    const dump: string[] = [];
    for (const node of masterNodes(redis)) {
      for await (const keys of node.scanStream({ match: `${prefix}*`, count: 500 })) {
        for (const key of keys as string[])
          dump.push(key, JSON.stringify((await node.type(key)) === 'hash' ? await node.hgetall(key) : await node.zrange(key, '0', '-1')));
      }
    }
    expect(dump.length).toBeGreaterThan(0);
    expect(dump.filter((entry) => entry.includes('secret-token'))).toEqual([]);
  });

  it('counts, lists (by handle) and clears only its own sessions, with SCAN, and ends their index entries', async () => {
    const own = await startContext({ connection: connection() });
    try {
      const isolated = new RedisSessionStore(own.get(SessionService));
      await isolated.clear();
      const first = sessionOf({ foo: 'bar' });
      const second = sessionOf({ userId: 'clear-user' }, 60_000);
      await isolated.set('123', first);
      await isolated.set('456', second);
      // A session of SessionService itself, under the same prefix: not the store's.
      const native = await own.get(SessionService).create('clear-user');
      expect(await isolated.length()).toBe(2);
      expect((await isolated.ids()).sort()).toEqual([RedisSessionStore.handleOf('123'), RedisSessionStore.handleOf('456')].sort());
      expect(await isolated.all()).toEqual({
        [RedisSessionStore.handleOf('123')]: asStored(first),
        [RedisSessionStore.handleOf('456')]: asStored(second),
      });
      expect((await own.get(SessionService).listForUser('clear-user')).map((session) => session.handle).sort()).toEqual(
        [native.handle, RedisSessionStore.handleOf('456')].sort(),
      );

      expect(await isolated.destroy('456')).toBe(true);
      expect(await isolated.length()).toBe(1);
      expect(await isolated.clear()).toBe(1);
      expect(await isolated.length()).toBe(0);

      const count = 1000;
      for (let start = 0; start < count; start += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, n) => isolated.set(`s${start + n}`, sessionOf({ userId: `bulk-${(start + n) % 7}` }, 60_000))),
        );
      }
      expect(await isolated.length()).toBe(count);
      expect(await own.get(SessionService).listForUser('bulk-3')).toHaveLength(143);
      expect(await isolated.clear()).toBe(count);
      expect(await isolated.length()).toBe(0);
      // Their users' index entries went with them; the index keys too.
      const redis = own.get(RedisConnections).get();
      expect(await redis.exists(own.get(RedisKeys).tagged(['su', 'bulk-3']))).toBe(0);
      expect(await own.get(SessionService).listForUser('bulk-3')).toEqual([]);
      // SessionService's own session is still there.
      expect((await own.get(SessionService).get(native.id))?.userId).toBe('clear-user');
      // A handle from ids() ends its session.
      await isolated.set('789', sessionOf());
      const [handle] = await isolated.ids();
      expect(await isolated.destroyHandle(handle)).toBe(true);
      expect(await isolated.destroyHandle('not a handle')).toBe(false);
      expect(await isolated.get('789')).toBeNull();
    } finally {
      await own.close();
    }
  });

  it('never starts again a session it loaded that was destroyed since (express-session and @fastify/session ways)', async () => {
    // express-session: the session object it saves is the one createSession made from the loaded data.
    const viaExpress = freshId();
    await store.set(viaExpress, sessionOf({ n: 1 }));
    const request = { sessionID: viaExpress, sessionStore: store } as never;
    const loaded = store.createSession(request, (await store.get(viaExpress))!);
    // Destroyed meanwhile (another request, another instance).
    await new RedisSessionStore(sessions).destroy(viaExpress);
    await store.set(viaExpress, loaded);
    expect(await store.get(viaExpress)).toBeNull();

    // @fastify/session: it copies the loaded data into a new object; the store remembers what it loaded.
    const viaFastify = freshId();
    await store.set(viaFastify, sessionOf({ n: 1 }));
    const copy = { ...(await store.get(viaFastify))!, n: 2 } as SessionData;
    await new RedisSessionStore(sessions).destroy(viaFastify);
    await store.set(viaFastify, copy);
    expect(await store.get(viaFastify)).toBeNull();

    // A session no store loaded is started by a save.
    const fresh = freshId();
    await store.set(fresh, sessionOf({ n: 1 }));
    expect(await store.get(fresh)).toMatchObject({ n: 1 });
  });

  it('calls each callback once, with a result or an error: one that throws is an uncaught exception, never an unhandled rejection', async () => {
    const sid = freshId();
    await store.set(sid, sessionOf({ n: 1 }));
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    const runnerHandlers = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('unhandledRejection', onRejection);
    try {
      for (const call of [
        (callback: () => void) => store.get(sid, callback),
        (callback: () => void) => store.set(sid, sessionOf({ n: 2 }), callback),
        (callback: () => void) => store.get('', callback),
        (callback: () => void) => store.set('', sessionOf(), callback),
      ]) {
        const uncaught = Promise.race([
          new Promise<unknown>((resolve) => process.once('uncaughtException', resolve)),
          sleep(2_000).then(() => 'no uncaught exception'),
        ]);
        let calls = 0;
        call(() => {
          calls++;
          throw new Error('Cannot set headers after they are sent to the client');
        });
        expect(await uncaught).toMatchObject({ message: 'Cannot set headers after they are sent to the client' });
        await sleep(20);
        expect(calls).toBe(1);
      }
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
      for (const handler of runnerHandlers) process.on('uncaughtException', handler);
    }
  });
});

describe('RedisSessionStore timeouts', () => {
  it('ends a session at its absolute timeout, however often it is touched with a later cookie', async () => {
    // Deadlines are read from Redis (its clock, the key's expiry time), so a slow machine only
    // makes the test longer: it fails only if one touch comes more than the idle timeout after
    // the last (1.75 s late), or the loop ends within 1.75 s of the absolute timeout.
    const { app, store } = await startStore(topologies[0].connection, { idleTtl: '2s', absoluteTtl: '4s', touchInterval: '50ms' });
    try {
      const redis = app.get(RedisConnections).get();
      const key = app.get(RedisKeys).tagged(['s', RedisSessionStore.handleOf('short-lived')]);
      const redisNow = async () => {
        const [seconds, micros] = await redis.time();
        return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
      };
      await store.set('short-lived', sessionOf({}, 60_000));
      // The meta fields, packed: created, last seen, idle, absolute...
      const [created, , idle, absolute] = (await redis.hget(key, 'm'))!.split(',').map(Number);
      const absoluteDeadline = created + absolute;
      // The key's expiry time, less the absolute deadline (within a millisecond: a script's TIME
      // and the time Redis counts its PEXPIRE from may differ by one).
      const beyondDeadline = async () => (await redis.pexpiretime(key)) - absoluteDeadline;
      // Touched every 250 ms until past the idle timeout: each touch moves the deadline, never past the absolute one.
      while ((await redisNow()) < created + idle + 250) {
        await sleep(250);
        await store.touch('short-lived', sessionOf({}, 60_000));
        expect(await redis.exists(key)).toBe(1);
        expect(await beyondDeadline()).toBeLessThanOrEqual(1);
      }
      // Alive past the idle timeout, and its expiry is now the absolute deadline, however late the cookie's.
      expect(Math.abs(await beyondDeadline())).toBeLessThanOrEqual(1);
      await store.touch('short-lived', sessionOf({}, 60_000));
      expect(Math.abs(await beyondDeadline())).toBeLessThanOrEqual(1);
      expect(await store.get('short-lived')).not.toBeNull();
      await sleep(absoluteDeadline - (await redisNow()) + 50);
      expect(await store.get('short-lived')).toBeNull();
      expect(await redis.exists(key)).toBe(0);
    } finally {
      await app.close();
    }
  });
});
