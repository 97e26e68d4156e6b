import type { INestApplicationContext } from '@nestjs/common';
import type { SessionData } from 'express-session';
import { afterAll, beforeAll, vi } from 'vitest';
import { RedisConnections, RedisKeys, SessionService, type RedisClient, type SessionOptions } from '../../lib/index.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { startContext, type topologies } from '../support/testing-app.js';

/** A session as express-session saves it, with `fields` and a cookie expiring in `expiresInMs` (none without). */
export const sessionOf = (fields: Record<string, unknown> = {}, expiresInMs?: number) =>
  ({
    ...fields,
    cookie: { originalMaxAge: expiresInMs ?? null, ...(expiresInMs === undefined ? {} : { expires: new Date(Date.now() + expiresInMs) }) },
  }) as unknown as SessionData;

/** As JSON brings it back. */
export const asStored = (session: SessionData) => JSON.parse(JSON.stringify(session)) as SessionData;

let ids = 0;
/** A session id (or user id) no other test uses. */
export const freshId = (prefix = 'sid') => `${prefix}-${++ids}-${Math.random().toString(36).slice(2, 8)}`;

/** A module context on `connection` (timeouts 100s idle and 150s absolute unless `session` says otherwise), its SessionService and a RedisSessionStore on it. */
export async function startStore(
  connection: (typeof topologies)[number]['connection'],
  session: SessionOptions = { idleTtl: '100s', absoluteTtl: '150s' },
) {
  const app = await startContext({ connection: connection(), session });
  const sessions = app.get(SessionService);
  return { app, sessions, store: new RedisSessionStore(sessions) };
}

/** The PTTL of the key of the store's session `sid` (-2: there is none). */
export function sessionPttl(app: INestApplicationContext, sid: string): Promise<number> {
  return app
    .get(RedisConnections)
    .get()
    .pttl(app.get(RedisKeys).tagged(['s', RedisSessionStore.handleOf(sid)]));
}

/** The commands that carry session events. */
const ANNOUNCEMENTS = new Set(['publish', 'spublish']);

/** A store started (see {@link startStore}) before a suite's tests and closed after them; read its parts in the tests. */
export function useStore(connection: (typeof topologies)[number]['connection']): Awaited<ReturnType<typeof startStore>> {
  const started = {} as Awaited<ReturnType<typeof startStore>>;
  beforeAll(async () => Object.assign(started, await startStore(connection)));
  afterAll(() => started.app.close());
  return started;
}

/**
 * The commands `redis` (a real client, watched) sends while `action` runs, by name. Session events
 * (PUBLISH, SPUBLISH on a Cluster) are left out: they are announced without being awaited, so one
 * for an earlier write (a session created) may leave while `action` runs.
 */
export async function commandsSent(redis: RedisClient, action: () => Promise<unknown>): Promise<string[]> {
  const sent = vi.spyOn(redis, 'sendCommand');
  try {
    await action();
    return sent.mock.calls.map(([command]) => command.name.toLowerCase()).filter((name) => !ANNOUNCEMENTS.has(name));
  } finally {
    sent.mockRestore();
  }
}
