import { createHash } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError, RedisConnections, RedisKeys, SessionLimitError, SessionService } from '../../lib/index.js';
import { hashOf, isKeptInSlot, slotOf } from '../../lib/session/session-ids.js';
import { slotTag } from '../../lib/session/session-slots.js';
import { resolveSessionOptions } from '../../lib/session/session.options-validator.js';
import { sleep } from '../support/redis-server.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { evictedOf, freshUser, sessionEvents, sessionKeysInRedis } from './seats.js';

/** The module's sessions in these suites: at most 2 per user, a third refused. */
const LIMITED = { idleTtl: '100s', absoluteTtl: '150s', maxSessionsPerUser: 2, onLimit: 'reject' } as const;

describe('session seat limit options', () => {
  it('are checked at startup, naming the option', async () => {
    for (const maxSessionsPerUser of [0, -1, 2.5, '3', Number.POSITIVE_INFINITY, null])
      expect(() => resolveSessionOptions({ maxSessionsPerUser } as never)).toThrow(
        expect.objectContaining({ constructor: InvalidOptionError, option: 'session.maxSessionsPerUser' }),
      );
    for (const onLimit of ['drop', 'evict', '', 1])
      expect(() => resolveSessionOptions({ maxSessionsPerUser: 2, onLimit } as never)).toThrow(
        expect.objectContaining({ constructor: InvalidOptionError, option: 'session.onLimit', expected: "'reject' or 'evict-oldest'" }),
      );
    expect(resolveSessionOptions({ maxSessionsPerUser: 3 })).toMatchObject({ maxSessionsPerUser: 3, onLimit: 'evict-oldest' });
    expect(resolveSessionOptions({})).toMatchObject({ maxSessionsPerUser: undefined, onLimit: 'evict-oldest' });
    await expect(startContext({ connection: topologies[0].connection(), session: { maxSessionsPerUser: 0 } })).rejects.toThrow(
      'Invalid option "session.maxSessionsPerUser": expected a positive integer, got 0.',
    );
  });

  it('name one slot tag per Redis Cluster slot, each falling in its slot', () => {
    const tags = new Set<string>();
    for (let slot = 0; slot < 16_384; slot++) {
      expect(calculateSlot(`{s:${slotTag(slot)}}`)).toBe(slot);
      tags.add(slotTag(slot));
    }
    expect(tags.size).toBe(16_384);
    // Every instance, of every version, must name a session's key alike: these never change.
    expect([slotTag(0), slotTag(1), slotTag(8_000), slotTag(16_383)]).toEqual(['DcF', 'FVe', 'DWt', 'BKW']);
  });
});

describe.each(topologies)('session seat limits on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  /** An instance without a limit on the same keys: its sessions are those made before the limit, kept in their own slots. */
  let unlimited: INestApplicationContext;
  let sessions: SessionService;
  beforeAll(async () => {
    [unlimited, ...apps] = await Promise.all([
      startContext({ connection: connection(), keyPrefix, session: { idleTtl: '100s', absoluteTtl: '150s' } }),
      ...[1, 2].map(() => startContext({ connection: connection(), keyPrefix, session: LIMITED })),
    ]);
    sessions = apps[0].get(SessionService);
  });
  afterAll(() => Promise.all([unlimited, ...apps].map((app) => app.close())));

  const on = (n: number) => apps[n % 2].get(SessionService);
  const handlesOf = async (userId: string) => (await sessions.listForUser(userId)).map((session) => session.handle).sort();
  const keyOf = (handle: string) => apps[0].get(RedisKeys).tagged(['s', slotTag(slotOf(handle))], handle);

  it("keeps a session with a seat in its user index's slot, under a key that holds no id", async () => {
    const userId = freshUser();
    const session = await sessions.create(userId, { theme: 'dark' });
    const keys = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    expect(session.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect([isKeptInSlot(session.id), isKeptInSlot(session.handle)]).toEqual([true, true]);
    expect(slotOf(session.id)).toBe(calculateSlot(keys.tagged(['su', userId])));
    // The handle: the SHA-256 of the id, its last 2 bytes giving way to the slot.
    const digest = createHash('sha256').update(session.id).digest();
    expect(Buffer.from(session.handle, 'base64url').subarray(0, 30)).toEqual(digest.subarray(0, 30));
    const key = keyOf(session.handle);
    expect(key).toBe(`${keyPrefix}{s:${slotTag(slotOf(session.handle))}}:${session.handle}`);
    expect(calculateSlot(key)).toBe(calculateSlot(keys.tagged(['su', userId])));
    expect(JSON.stringify(await redis.hgetall(key))).not.toContain(session.id);
    for (const elsewhere of [keys.tagged(['s', hashOf(session.id)]), keys.tagged(['s', session.handle])])
      expect(await redis.exists(elsewhere)).toBe(0);
    expect((await on(1).get(session.id))?.data).toEqual({ theme: 'dark' });
    // Anonymous sessions have no seat, and keep their own slot.
    expect(isKeptInSlot((await sessions.create(null)).id)).toBe(false);
  });

  it('refuses a session past the limit with SessionLimitError (409) naming the limit, and writes nothing', async () => {
    const userId = freshUser();
    const [first, second] = [await on(0).create(userId, { n: 1 }), await on(1).create(userId, { n: 2 })];
    const refused = await on(0)
      .create(userId, { n: 3 })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SessionLimitError);
    expect(refused).toMatchObject({ limit: 2, userId, statusCode: 409 });
    expect((refused as SessionLimitError).getStatus()).toBe(409);
    expect((refused as SessionLimitError).message).toBe(
      'The user already has 2 live sessions, the most that maxSessionsPerUser allows: end one to start another.',
    );
    expect(await handlesOf(userId)).toEqual([first.handle, second.handle].sort());
    expect(await sessionKeysInRedis(apps[0], userId)).toEqual([keyOf(first.handle), keyOf(second.handle)].sort());
    // Other users, and anonymous sessions, are not limited by this user's seats.
    await expect(sessions.create(freshUser())).resolves.toMatchObject({ userId: expect.any(String) });
    await Promise.all([1, 2, 3].map(() => sessions.create(null)));
    // A session that ends frees its seat.
    expect(await on(1).destroy(first.id)).toBe(true);
    const third = await sessions.create(userId, { n: 3 });
    expect(await handlesOf(userId)).toEqual([second.handle, third.handle].sort());
  });

  it('evicts the oldest with evict-oldest: deleted with the seat, announced to another instance as destroyed/evicted', async () => {
    const { events, stop } = await sessionEvents(apps[1]);
    try {
      const userId = freshUser();
      const first = await on(0).create(userId, { n: 1 });
      const second = await on(1).create(userId, { n: 2 });
      const third = await on(0).create(userId, { n: 3 }, { onLimit: 'evict-oldest' });
      expect(await on(1).get(first.id)).toBeNull();
      expect(await handlesOf(userId)).toEqual([second.handle, third.handle].sort());
      expect(await sessionKeysInRedis(apps[0], userId)).toEqual([keyOf(second.handle), keyOf(third.handle)].sort());
      await vi.waitFor(() => expect(evictedOf(events, userId)).toEqual([first.handle]));
      expect(events).toContainEqual({ type: 'destroyed', reason: 'evicted', userId, handle: first.handle });

      // A limit per call: 3 for this one, then 1 (which evicts the three others in one step).
      const fourth = await on(1).create(userId, { n: 4 }, { maxSessionsPerUser: 3 });
      expect(await handlesOf(userId)).toEqual([second.handle, third.handle, fourth.handle].sort());
      const last = await on(0).create(userId, { n: 5 }, { maxSessionsPerUser: 1, onLimit: 'evict-oldest' });
      expect(await handlesOf(userId)).toEqual([last.handle]);
      expect(await sessionKeysInRedis(apps[0], userId)).toEqual([keyOf(last.handle)]);
      await vi.waitFor(() => expect(evictedOf(events, userId)).toEqual([first.handle, second.handle, third.handle, fourth.handle].sort()));
    } finally {
      stop();
    }
  });

  it('evicts in the order the sessions were made, even those made in the same millisecond', async () => {
    const userId = freshUser();
    // Made one after the other as fast as the server allows: many share a millisecond.
    const made: string[] = [];
    for (let i = 0; i < 20; i++) made.push((await sessions.create(userId, { i }, { maxSessionsPerUser: 20 })).handle);
    const redis = apps[0].get(RedisConnections).get();
    const index = apps[0].get(RedisKeys).tagged(['su', userId]);
    expect(await redis.zrange(index, '0', '-1')).toEqual(made);
    // The index expires with its last session (at the millisecond of its absolute deadline).
    expect(await redis.pttl(index)).toBeGreaterThan(149_000);
    for (let i = 0; i < 3; i++) await on(1).create(userId, { i: 20 + i }, { maxSessionsPerUser: 20, onLimit: 'evict-oldest' });
    for (const handle of made.slice(0, 3)) expect(await redis.zscore(index, handle)).toBeNull();
    expect((await handlesOf(userId)).length).toBe(20);
    expect((await redis.zrange(index, '0', '-1')).slice(0, 17)).toEqual(made.slice(3));
  });

  it('counts live sessions only: those expired or deleted hold no seat, and leave the index', async () => {
    const userId = freshUser();
    const short = await sessions.create(userId, {}, { idleTtl: '300ms' });
    const long = await sessions.create(userId);
    await expect(sessions.create(userId)).rejects.toThrow(SessionLimitError);
    await sleep(500);
    const next = await on(1).create(userId);
    expect(await handlesOf(userId)).toEqual([long.handle, next.handle].sort());
    const redis = apps[0].get(RedisConnections).get();
    const index = apps[0].get(RedisKeys).tagged(['su', userId]);
    expect((await redis.zrange(index, '0', '-1')).sort()).toEqual([long.handle, next.handle].sort());
    expect(await redis.zscore(index, short.handle)).toBeNull();
    // A session deleted behind the index's back.
    await redis.del(keyOf(long.handle));
    const after = await sessions.create(userId);
    expect((await redis.zrange(index, '0', '-1')).sort()).toEqual([next.handle, after.handle].sort());
    expect(await sessionKeysInRedis(apps[0], userId)).toEqual([keyOf(next.handle), keyOf(after.handle)].sort());
  });

  it('counts sessions kept in other slots (made before the limit), pruning the ended, evicting them as the oldest', async () => {
    const { events, stop } = await sessionEvents(apps[1]);
    try {
      const userId = freshUser();
      const before = unlimited.get(SessionService);
      const old = [await before.create(userId, { n: 1 }), await before.create(userId, { n: 2 }, { idleTtl: '300ms' })];
      expect(old.map((session) => isKeptInSlot(session.id))).toEqual([false, false]);
      await expect(sessions.create(userId)).rejects.toThrow(SessionLimitError);
      // The second has expired (its idle timeout), so its seat is free, though the index still lists it.
      await sleep(500);
      const seated = await sessions.create(userId, { n: 3 });
      expect(await handlesOf(userId)).toEqual([old[0].handle, seated.handle].sort());
      // The oldest is the one kept elsewhere: evicted, and deleted by the instance that evicted it.
      const newest = await on(1).create(userId, { n: 4 }, { onLimit: 'evict-oldest' });
      expect(await sessions.get(old[0].id)).toBeNull();
      expect(await handlesOf(userId)).toEqual([seated.handle, newest.handle].sort());
      expect(await sessionKeysInRedis(apps[0], userId)).toEqual([keyOf(seated.handle), keyOf(newest.handle)].sort());
      await vi.waitFor(() => expect(evictedOf(events, userId)).toEqual([old[0].handle]));
    } finally {
      stop();
    }
  });

  it('regenerate: the same user keeps its seat; logging a session in takes one, and refused, the old id works on', async () => {
    const userId = freshUser();
    const first = await sessions.create(userId, { n: 1 });
    // A later millisecond on Redis's clock: two sessions created in the same one tie in the index,
    // and which of them is the oldest is then the order of their handles.
    await new Promise((resolve) => setTimeout(resolve, 2));
    const second = await sessions.create(userId, { n: 2 });
    expect(second.createdAt).toBeGreaterThan(first.createdAt);
    const renewed = (await on(1).regenerate(first.id))!;
    expect(renewed).toMatchObject({ userId, data: { n: 1 }, createdAt: first.createdAt });
    expect(await handlesOf(userId)).toEqual([renewed.handle, second.handle].sort());

    const anonymous = await sessions.create(null, { cart: ['book'] });
    const refused = await sessions.regenerate(anonymous.id, { userId }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ constructor: SessionLimitError, limit: 2 });
    expect(await on(1).get(anonymous.id)).toMatchObject({ userId: null, data: { cart: ['book'] } });
    expect(await handlesOf(userId)).toEqual([renewed.handle, second.handle].sort());

    const loggedIn = (await on(1).regenerate(anonymous.id, { userId, onLimit: 'evict-oldest' }))!;
    expect(loggedIn).toMatchObject({ userId, data: { cart: ['book'] } });
    expect(await sessions.get(anonymous.id)).toBeNull();
    // The oldest by creation is the regenerated first session.
    expect(await sessions.get(renewed.id)).toBeNull();
    expect(await handlesOf(userId)).toEqual([second.handle, loggedIn.handle].sort());

    // A session handed from one user to another leaves the first user's index.
    const otherUser = freshUser();
    const others = await sessions.create(otherUser);
    const handedOver = (await sessions.regenerate(others.id, { userId, onLimit: 'evict-oldest' }))!;
    expect(await handlesOf(otherUser)).toEqual([]);
    expect(await handlesOf(userId)).toEqual([loggedIn.handle, handedOver.handle].sort());
    expect(await sessionKeysInRedis(apps[0], userId)).toEqual([keyOf(loggedIn.handle), keyOf(handedOver.handle)].sort());
  });

  it('never leaves more than the limit when 24 logins of one user race on two instances', async () => {
    const logins = (userId: string, options: Parameters<SessionService['create']>[2]) =>
      Promise.allSettled(Array.from({ length: 24 }, (_, n) => on(n).create(userId, { n }, { ...options, maxSessionsPerUser: 3 })));

    const refusing = freshUser();
    const refused = await logins(refusing, { onLimit: 'reject' });
    const admitted = refused.filter((result) => result.status === 'fulfilled');
    expect(admitted).toHaveLength(3);
    for (const result of refused)
      if (result.status === 'rejected') expect(result.reason).toMatchObject({ constructor: SessionLimitError, limit: 3 });
    expect(await handlesOf(refusing)).toEqual(admitted.map((result) => result.value.handle).sort());
    expect(await sessionKeysInRedis(apps[0], refusing)).toHaveLength(3);

    const { events, stop } = await sessionEvents(apps[1]);
    try {
      const evicting = freshUser();
      const results = await logins(evicting, { onLimit: 'evict-oldest' });
      const created = results.map((result) => (result.status === 'fulfilled' ? result.value : undefined));
      expect(created.every((session) => session !== undefined)).toBe(true);
      const live = await handlesOf(evicting);
      expect(live).toHaveLength(3);
      expect(await sessionKeysInRedis(apps[0], evicting)).toEqual(live.map(keyOf).sort());
      // Every other session was evicted, and announced once.
      const evicted = created.map((session) => session!.handle).filter((handle) => !live.includes(handle));
      await vi.waitFor(() => expect(evictedOf(events, evicting)).toEqual(evicted.sort()));
    } finally {
      stop();
    }
  });

  it('checks limits given per call by name', async () => {
    const userId = freshUser();
    await expect(sessions.create(userId, {}, { maxSessionsPerUser: 0 })).rejects.toMatchObject({
      constructor: InvalidOptionError,
      option: 'options.maxSessionsPerUser',
    });
    const { id } = await sessions.create(null);
    await expect(sessions.regenerate(id, { userId, onLimit: 'later' as never })).rejects.toMatchObject({
      constructor: InvalidOptionError,
      option: 'options.onLimit',
    });
    // Refused before anything was taken: the session is still there.
    expect(await sessions.get(id)).not.toBeNull();
  });
});
