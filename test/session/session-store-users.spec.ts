import type { SessionData } from 'express-session';
import { describe, expect, it, vi } from 'vitest';
import { InvalidOptionError, MalformedTextError, PubSubService, RedisConnections, RedisKeys, type SessionEvent } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { topologies } from '../support/testing-app.js';
import { asStored, freshId, sessionOf, sessionPttl, useStore } from './store-sessions.js';

describe.each(topologies)("RedisSessionStore and its sessions' users on $topology", ({ connection }) => {
  const started = useStore(connection);

  it('indexes a session under its user, moves it when the user changes, and drops it when the user goes', async () => {
    const { store, sessions } = started;
    const sid = freshId();
    const [ann, bob] = [freshId('ann'), freshId('bob')];
    const handles = async (userId: string) => (await sessions.listForUser(userId)).map((session) => session.handle);
    await store.set(sid, sessionOf({ userId: ann }));
    expect(await handles(ann)).toEqual([RedisSessionStore.handleOf(sid)]);
    await store.set(sid, sessionOf({ userId: bob }));
    expect([await handles(ann), await handles(bob)]).toEqual([[], [RedisSessionStore.handleOf(sid)]]);
    await store.set(sid, sessionOf({}));
    expect(await handles(bob)).toEqual([]);
    const custom = new RedisSessionStore(sessions, {
      userIdOf: (session) => (session as unknown as { passport?: { user?: string } }).passport?.user,
    });
    await custom.set(sid, sessionOf({ passport: { user: ann } }));
    expect(await handles(ann)).toEqual([RedisSessionStore.handleOf(sid)]);
    await expect(store.set(sid, sessionOf({ userId: 'lone\uDC00' }))).rejects.toMatchObject({
      constructor: MalformedTextError,
      option: 'userId',
    });
  });

  it('indexes numeric user ids (as passport gives them) as their text, and refuses other kinds naming userIdOf', async () => {
    const { store, sessions } = started;
    const passportUser = (session: SessionData) => (session as unknown as { passport?: { user?: unknown } }).passport?.user as number;
    const custom = new RedisSessionStore(sessions, { userIdOf: passportUser });
    const handles = async (userId: string) => (await sessions.listForUser(userId)).map((session) => session.handle);
    // Each suite has a key prefix of its own: 42 is nobody else's user here.
    const userNumber = 42;
    const [viaPassport, viaDefault, zero] = [freshId(), freshId(), freshId()];
    await custom.set(viaPassport, sessionOf({ passport: { user: userNumber } }));
    await store.set(viaDefault, sessionOf({ userId: userNumber }));
    expect((await handles(String(userNumber))).sort()).toEqual(
      [RedisSessionStore.handleOf(viaPassport), RedisSessionStore.handleOf(viaDefault)].sort(),
    );
    expect(await custom.get(viaPassport)).toEqual(asStored(sessionOf({ passport: { user: userNumber } })));
    // 0 is a user too.
    await custom.set(zero, sessionOf({ passport: { user: 0 } }));
    expect(await handles('0')).toContain(RedisSessionStore.handleOf(zero));

    for (const user of [{ id: 1 }, Number.NaN, Number.POSITIVE_INFINITY, true, 10n]) {
      const sid = freshId();
      await expect(custom.set(sid, sessionOf({ passport: { user } }))).rejects.toMatchObject({
        constructor: InvalidOptionError,
        option: 'userIdOf',
      });
      expect(await store.get(sid)).toBeNull();
    }
    await expect(custom.set(freshId(), sessionOf({ passport: { user: 'lone\uD800' } }))).rejects.toMatchObject({
      constructor: MalformedTextError,
      option: 'userIdOf',
    });
    // The default reads only text and numbers from `userId`: anything else there is the app's data.
    const other = freshId();
    await store.set(other, sessionOf({ userId: { id: 1 } }));
    expect(await store.get(other)).toMatchObject({ userId: { id: 1 } });
  });

  it('ends a session saved or touched with a cookie that has expired in one way: deleted, out of its user index, announced', async () => {
    const { app, store } = started;
    const pubsub = app.get(PubSubService);
    const destroyed: string[] = [];
    const userId = freshId('expiring-user');
    const listening = pubsub.subscribe<SessionEvent>('sessions').subscribe((event) => {
      if (event.type === 'destroyed' && event.userId === userId) destroyed.push(event.handle);
    });
    try {
      await pubsub.whenSubscribed('sessions');
      const indexed = () =>
        app
          .get(RedisConnections)
          .get()
          .zrange(app.get(RedisKeys).tagged(['su', userId]), '0', '-1');
      const [saved, touched] = [freshId(), freshId()];
      for (const sid of [saved, touched]) await store.set(sid, sessionOf({ userId }, 90_000));
      expect((await indexed()).sort()).toEqual([saved, touched].map((sid) => RedisSessionStore.handleOf(sid)).sort());
      await store.set(saved, sessionOf({ userId }, -90_000));
      await store.touch(touched, sessionOf({ userId }, -1));
      for (const sid of [saved, touched]) {
        expect(await store.get(sid)).toBeNull();
        expect(await sessionPttl(app, sid)).toBe(-2);
      }
      expect(await indexed()).toEqual([]);
      await vi.waitFor(() => expect(destroyed.sort()).toEqual([saved, touched].map((sid) => RedisSessionStore.handleOf(sid)).sort()));
    } finally {
      listening.unsubscribe();
    }
    // Never started with an expired cookie either.
    const late = freshId();
    await store.set(late, sessionOf({}, -1));
    expect(await sessionPttl(app, late)).toBe(-2);
  });
});
