import { randomBytes } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, SessionService, type RedisClient } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { handleOf } from '../../lib/session/session-ids.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { asStored, commandsSent, freshId, sessionOf } from './store-sessions.js';

/** The meta fields one each, as sessions were written by 0.1. */
const UNPACKED = ['c', 'l', 'i', 'a', 'e', 'o', 'u'];

describe.each(topologies)('session storage layout on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let app: INestApplicationContext;
  let sessions: SessionService;
  let store: RedisSessionStore;
  let redis: RedisClient;
  let keys: RedisKeys;
  beforeAll(async () => {
    app = await startContext({
      connection: connection(),
      keyPrefix,
      session: { idleTtl: '100s', absoluteTtl: '150s', touchInterval: '1s' },
    });
    sessions = app.get(SessionService);
    store = new RedisSessionStore(sessions);
    redis = app.get(RedisConnections).get();
    keys = app.get(RedisKeys);
  });
  afterAll(() => app.close());

  const redisNow = async () => {
    const [seconds, micros] = await redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };

  /** Writes a session as 0.2 did: seven meta fields, `seenAgoMs` since its last use, a TTL at its deadline. */
  async function writeUnpacked(
    handle: string,
    fields: { u?: string; o?: string; e?: number; data: Record<string, string> },
    seenAgoMs = 0,
  ) {
    const now = await redisNow();
    const key = keys.tagged(['s', handle]);
    const meta: Record<string, string | number> = { c: now - seenAgoMs, l: now - seenAgoMs, i: 100_000, a: 150_000, u: fields.u ?? '' };
    if (fields.o !== undefined) meta.o = fields.o;
    if (fields.e !== undefined) meta.e = fields.e;
    await redis.hset(key, { ...meta, ...Object.fromEntries(Object.entries(fields.data).map(([name, value]) => [`d:${name}`, value])) });
    await redis.pexpire(key, 100_000 - seenAgoMs);
    if (fields.u) await redis.zadd(keys.tagged(['su', fields.u]), now - seenAgoMs + 150_000, handle);
    return { key, createdAt: now - seenAgoMs };
  }

  /** An id (of 43 base64url characters) whose session key, by `handleOf`, is in the slot of `key`. */
  const idInSlotOf = (key: string, handleOf: (id: string) => string) => {
    for (;;) {
      const id = randomBytes(32).toString('base64url');
      if (calculateSlot(keys.tagged(['s', handleOf(id)])) === calculateSlot(key)) return id;
    }
  };

  const fieldNames = async (key: string) => (await redis.hkeys(key)).sort();

  it('keeps a session as one document of its data fields and one packed field of meta, read with one HMGET', async () => {
    const userId = freshId('user');
    const { id, handle, createdAt } = await sessions.create(userId, { a: 1, b: 'two', c: [3], d: { four: 4 } });
    const key = keys.tagged(['s', handle]);
    expect(await fieldNames(key)).toEqual(['j', 'm']);
    expect(await redis.hget(key, 'j')).toBe('{\n"a"\t:1,\n"b"\t:"two",\n"c"\t:[3],\n"d"\t:{"four":4}\n}');
    expect(await redis.hget(key, 'm')).toBe(`${createdAt},${createdAt},100000,150000,,,${userId}`);
    // The first read is the script (this instance has not read it yet); then, until the slide is due, an HMGET.
    expect((await sessions.get(id))?.data).toEqual({ a: 1, b: 'two', c: [3], d: { four: 4 } });
    let read: Awaited<ReturnType<SessionService['get']>> = null;
    expect(await commandsSent(redis, async () => (read = await sessions.get(id)))).toEqual(['hmget']);
    expect(read).toMatchObject({ userId, createdAt, data: { a: 1, b: 'two', c: [3], d: { four: 4 } } });
    // Gone since: the same one command finds nothing.
    await redis.del(key);
    expect(await commandsSent(redis, () => sessions.get(id))).toEqual(['hmget']);
    expect(await sessions.get(id)).toBeNull();
  });

  /** The commands the module's connection sends while `action` runs, by name. */
  const commandsOf = (action: () => Promise<unknown>) => commandsSent(redis, action);

  it('reads a session in one command: a script when its idle timeout may be due to slide (it slides it), else a plain read', async () => {
    const userId = freshId('user');
    const id = randomBytes(32).toString('base64url');
    const sid = freshId();
    // Each script once first, on the node of the session read: a script Redis has not loaded yet costs a NOSCRIPT and an EVAL.
    await sessions.get(idInSlotOf(keys.tagged(['s', handleOf(id)]), (other) => handleOf(other)));
    await store.get(idInSlotOf(keys.tagged(['s', RedisSessionStore.handleOf(sid)]), (other) => RedisSessionStore.handleOf(other)));

    const { key, createdAt } = await writeUnpacked(handleOf(id), { u: userId, data: { theme: '"dark"' } }, 5_000);
    let read: Awaited<ReturnType<SessionService['get']>> = null;
    // Not read here before, and past the 1s touch interval: one script reads it, slides it and packs its meta fields.
    expect(await commandsOf(async () => (read = await sessions.get(id)))).toEqual(['evalsha']);
    expect(read).toMatchObject({ userId, createdAt, data: { theme: 'dark' } });
    const slid = read!.lastSeenAt;
    expect(slid).toBeGreaterThanOrEqual(createdAt + 5_000);
    expect(read!.expiresAt).toBe(slid + 100_000);
    expect(await fieldNames(key)).toEqual(['d:theme', 'm']);
    expect(await redis.pttl(key)).toBeGreaterThan(99_000 - 1_000);
    // Read here within the touch interval: a plain HGETALL, and nothing moves.
    expect(await commandsOf(async () => (read = await sessions.get(id)))).toEqual(['hgetall']);
    expect(read).toMatchObject({ lastSeenAt: slid, expiresAt: slid + 100_000 });
    // Past it again: the script, which slides it again.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await commandsOf(async () => (read = await sessions.get(id)))).toEqual(['evalsha']);
    expect(read!.lastSeenAt).toBeGreaterThanOrEqual(slid + 1_000);
    expect(Number((await redis.hget(key, 'm'))!.split(',')[1])).toBe(read!.lastSeenAt);

    const saved = asStored(sessionOf({ userId, views: 7 }, 60_000));
    const stored = await writeUnpacked(
      RedisSessionStore.handleOf(sid),
      { o: 'store', u: userId, data: { sess: JSON.stringify(saved) } },
      5_000,
    );
    let loaded: unknown;
    expect(await commandsOf(async () => (loaded = await store.get(sid)))).toEqual(['evalsha']);
    expect(loaded).toEqual(saved);
    const lastSeen = Number((await redis.hget(stored.key, 'm'))!.split(',')[1]);
    expect(lastSeen).toBeGreaterThanOrEqual(stored.createdAt + 5_000);
    expect(await redis.pttl(stored.key)).toBeGreaterThan(99_000 - 1_000);
    expect(await commandsOf(async () => (loaded = await store.get(sid)))).toEqual(['hmget']);
    expect(loaded).toEqual(saved);
    // A session of SessionService (under the same key: the store hashes the id the same way) is not the store's.
    const before = await redis.hget(key, 'm');
    expect(await commandsOf(async () => (loaded = await store.get(id)))).toEqual(['hmget']);
    expect(loaded).toBeNull();
    expect(await redis.hget(key, 'm')).toBe(before);
  });

  it("packs the meta fields of the store's sessions written by 0.1 as they are read, before any slide is due", async () => {
    const sid = freshId();
    const saved = asStored(sessionOf({ views: 1 }, 60_000));
    const { key } = await writeUnpacked(RedisSessionStore.handleOf(sid), { o: 'store', u: 'u-2', data: { sess: JSON.stringify(saved) } });
    const ttl = await redis.pttl(key);
    expect(await store.get(sid)).toEqual(saved);
    expect(await fieldNames(key)).toEqual(['d:sess', 'm']);
    expect((await redis.hget(key, 'm'))!.split(',').slice(5)).toEqual(['store', 'u-2']);
    // The same deadline: packing is not a use.
    expect(await redis.pttl(key)).toBeLessThanOrEqual(ttl);
    expect(await commandsOf(async () => expect(await store.get(sid)).toEqual(saved))).toEqual(['hmget']);
  });

  it('keeps a user id with commas whole, last in the packed field', async () => {
    const userId = 'tenant,7,user,42';
    const { id } = await sessions.create(userId, { x: 1 });
    expect((await sessions.get(id))?.userId).toBe(userId);
    expect((await sessions.listForUser(userId)).map((session) => session.data)).toEqual([{ x: 1 }]);
    expect(await sessions.regenerate(id)).toMatchObject({ userId, data: { x: 1 } });
  });

  it("reads SessionService's sessions written by 0.1, and packs their meta on the next write, data untouched", async () => {
    const userId = freshId('user');
    const id = randomBytes(32).toString('base64url');
    const { key, createdAt } = await writeUnpacked(handleOf(id), { u: userId, data: { theme: '"dark"', visits: '3' } }, 5_000);
    const read = await sessions.get(id);
    expect(read).toMatchObject({ userId, data: { theme: 'dark', visits: 3 }, createdAt, expiresAt: read!.lastSeenAt + 100_000 });
    // The read was past the touch interval: it slid the idle timeout, and packed the fields as it wrote.
    expect(read!.lastSeenAt).toBeGreaterThanOrEqual(createdAt + 5_000);
    expect(await fieldNames(key)).toEqual(['d:theme', 'd:visits', 'm']);
    expect(await sessions.listForUser(userId)).toEqual([
      expect.objectContaining({ handle: handleOf(id), data: { theme: 'dark', visits: 3 } }),
    ]);

    const other = randomBytes(32).toString('base64url');
    const unpacked = await writeUnpacked(handleOf(other), { u: userId, data: { theme: '"light"' } });
    expect(await sessions.update(other, { visits: 1 })).toBe(true);
    expect(await fieldNames(unpacked.key)).toEqual(['d:theme', 'd:visits', 'm']);
    expect(await sessions.get(other)).toMatchObject({ userId, createdAt: unpacked.createdAt, data: { theme: 'light', visits: 1 } });
  });

  it('regenerates and destroys sessions written by 0.1, owner checked', async () => {
    const userId = freshId('user');
    const id = randomBytes(32).toString('base64url');
    const { key, createdAt } = await writeUnpacked(handleOf(id), { data: { cart: '[1,2]' } });
    const regenerated = await sessions.regenerate(id, { userId });
    expect(regenerated).toMatchObject({ userId, createdAt, data: { cart: [1, 2] } });
    expect(await redis.exists(key)).toBe(0);
    expect(await fieldNames(keys.tagged(['s', regenerated!.handle]))).toEqual(['d:cart', 'm']);
    expect((await sessions.listForUser(userId)).map((session) => session.handle)).toEqual([regenerated!.handle]);

    const owned = randomBytes(32).toString('base64url');
    await writeUnpacked(handleOf(owned), { u: userId, data: {} });
    expect(await sessions.destroyHandle('someone-else', handleOf(owned))).toBe(false);
    expect(await sessions.destroyHandle(userId, handleOf(owned))).toBe(true);
    expect(await sessions.get(owned)).toBeNull();
  });

  it("reads RedisSessionStore's sessions written by 0.1 (not SessionService's), lists and counts them, and packs them on save", async () => {
    const sid = freshId();
    const saved = asStored(sessionOf({ userId: 'u-1', views: 4 }, 60_000));
    const cap = (await redisNow()) + 60_000;
    const { key } = await writeUnpacked(RedisSessionStore.handleOf(sid), {
      o: 'store',
      e: cap,
      u: 'u-1',
      data: { sess: JSON.stringify(saved) },
    });
    expect(await store.get(sid)).toEqual(saved);
    expect(await store.ids()).toContain(RedisSessionStore.handleOf(sid));
    expect(Object.values(await store.all())).toContainEqual(saved);

    // A session of SessionService in the old layout is not the store's.
    const serviceId = randomBytes(32).toString('base64url');
    await writeUnpacked(handleOf(serviceId), { data: { sess: '{}' } });
    expect(await store.ids()).not.toContain(handleOf(serviceId));

    await store.set(sid, sessionOf({ userId: 'u-1', views: 5 }, 60_000));
    expect(await fieldNames(key)).toEqual(['d:sess', 'm']);
    const [, , , , storedCap, origin, user] = (await redis.hget(key, 'm'))!.split(',');
    expect([origin, user]).toEqual(['store', 'u-1']);
    expect(Number(storedCap)).toBeGreaterThan(cap - 1_000);
    expect(await store.get(sid)).toMatchObject({ views: 5 });
    expect(await redis.hmget(key, ...UNPACKED)).toEqual(UNPACKED.map(() => null));
  });
});
