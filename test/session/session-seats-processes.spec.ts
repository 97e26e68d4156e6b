import type { INestApplicationContext } from '@nestjs/common';
import { describe, expect, it, vi } from 'vitest';
import { SessionLimitError, SessionService, type OnSessionLimit } from '../../lib/index.js';
import { mapBounded } from '../../lib/core/bounded.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { appInstances } from '../support/app-instances.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';
import { evictedOf, freshUser, sessionEvents, sessionKeyOf, sessionKeysInRedis } from './seats.js';
import { freshId, sessionOf } from './store-sessions.js';

/** At most 3 sessions per user, the oldest evicted for a fourth (service calls may ask to be refused instead). */
const SESSION = { idleTtl: '100s', absoluteTtl: '150s', maxSessionsPerUser: 3, onLimit: 'evict-oldest' } as const;

describe.each(topologies)('session seat limits over three instances, one in a child process, on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  const running = appInstances('session-worker', connection, keyPrefix, { session: SESSION });

  /** `times` logins of the user on an in-process instance, `concurrency` at a time: the handles started, and how many were refused. */
  const loginHere = async (app: INestApplicationContext, userId: string, times: number, concurrency: number, onLimit?: OnSessionLimit) => {
    const results = await mapBounded(
      Array.from({ length: times }, (_, n) => n),
      concurrency,
      (n) =>
        app
          .get(SessionService)
          .create(userId, { n }, { onLimit })
          .then(
            (session) => session.handle,
            (error: unknown) => {
              if (error instanceof SessionLimitError) return null;
              throw error;
            },
          ),
    );
    return { handles: results.filter((handle) => handle !== null), refused: results.filter((handle) => handle === null).length };
  };
  const loginInChild = (userId: string, times: number, options: { onLimit?: OnSessionLimit; store?: boolean; concurrency?: number } = {}) =>
    running.worker.request<{ handles: string[]; refused: number }>({ op: 'login', userId, times, concurrency: times, ...options });
  const listed = async (userId: string) =>
    (await running.apps[0].get(SessionService).listForUser(userId)).map((session) => session.handle).sort();
  const keysOf = (handles: readonly string[]) => handles.map((handle) => sessionKeyOf(running.apps[0], handle)).sort();

  it('refuses all but 3 of 30 logins of one user racing in three processes', async () => {
    const userId = freshUser();
    const [child, ...here] = await Promise.all([
      loginInChild(userId, 10, { onLimit: 'reject' }),
      ...running.apps.map((app) => loginHere(app, userId, 10, 10, 'reject')),
    ]);
    const admitted = [child, ...here].flatMap((result) => result.handles);
    expect(admitted).toHaveLength(3);
    expect([child, ...here].reduce((refused, result) => refused + result.refused, 0)).toBe(27);
    expect(await listed(userId)).toEqual(admitted.sort());
    expect(await sessionKeysInRedis(running.apps[0], userId)).toEqual(keysOf(admitted));
  });

  it("admits all 40 logins with evict-oldest (the child's through RedisSessionStore too), leaving 3, every other announced", async () => {
    const { events, stop } = await sessionEvents(running.apps[1]);
    try {
      const userId = freshUser();
      const store = new RedisSessionStore(running.apps[0].get(SessionService));
      const saved = Array.from({ length: 10 }, () => freshId());
      const results = await Promise.all([
        loginInChild(userId, 10),
        loginInChild(userId, 10, { store: true }),
        ...running.apps.map((app) => loginHere(app, userId, 5, 5)),
        Promise.all(saved.map((sid) => store.set(sid, sessionOf({ userId })))).then(() => ({
          handles: saved.map(RedisSessionStore.handleOf),
          refused: 0,
        })),
      ]);
      const admitted = results.flatMap((result) => result.handles);
      expect(admitted).toHaveLength(40);
      const live = await listed(userId);
      expect(live).toHaveLength(3);
      expect(await sessionKeysInRedis(running.apps[0], userId)).toEqual(keysOf(live));
      await vi.waitFor(() => expect(evictedOf(events, userId)).toEqual(admitted.filter((handle) => !live.includes(handle)).sort()));
    } finally {
      stop();
    }
  });

  it('leaves no more than the limit, and no session outside the index, when the child is killed (kill -9) amid its logins', async () => {
    const { events, stop } = await sessionEvents(running.apps[0]);
    try {
      const userId = freshUser();
      // Never answered: the child dies first (the request gives up on its own, unawaited).
      void loginInChild(userId, 2_000, { concurrency: 4 }).catch(() => undefined);
      const here = loginHere(running.apps[1], userId, 40, 4);
      // Killed once its logins have been evicting for a while.
      await vi.waitFor(() => expect(evictedOf(events, userId).length).toBeGreaterThan(20), { timeout: 15_000 });
      running.worker.kill('SIGKILL');
      expect(await running.worker.exited).toBeNull();
      await here;
      const live = await listed(userId);
      expect(live).toHaveLength(3);
      expect(await sessionKeysInRedis(running.apps[0], userId)).toEqual(keysOf(live));
      // The user logs in at once: the newest 3 then, with the one just made.
      const again = await running.apps[0].get(SessionService).create(userId);
      expect(await listed(userId)).toContain(again.handle);
      expect(await sessionKeysInRedis(running.apps[0], userId)).toHaveLength(3);
    } finally {
      stop();
    }
  });
});
