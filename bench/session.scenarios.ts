import { randomBytes } from 'node:crypto';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisStore } from 'connect-redis';
import type { SessionData, Store } from 'express-session';
import { Redis } from 'ioredis';
import { RedisPatternsModule, SessionService } from '../lib/index.js';
import { RedisSessionStore } from '../lib/session/express-session.store.js';
import { sampleValue } from './core.scenarios.js';
import type { Scenario } from './harness.js';

const READ = 'session read';
const WRITE = 'session write';
const REQUEST = 'session request';
/** How many sessions each flavour creates before anything is measured. */
export const SESSION_COUNT = 1000;
/** The idle timeout every flavour gives its sessions: the module's default (30m), connect-redis's `ttl`, the raw PX. */
const IDLE_MS = 30 * 60_000;
const RAW_PREFIX = 'sess:';
const CONNECT_REDIS_PREFIX = 'bench-connect-redis-sess:';
const MODULE_PREFIX = 'bench-session:';

/** An id as express-session makes them (uid-safe, 24 bytes: 32 base64url characters). */
const expressSessionId = () => randomBytes(24).toString('base64url');
const userOf = (k: number) => `user-${k}`;

/**
 * One session's data, the same for every flavour: what express-session keeps (its cookie), a user
 * id, the last page seen (what the writes change), and about 1 KB of profile. About 1.2 KB of JSON.
 */
function sessionData(k: number, lastPage = '/'): Record<string, unknown> {
  return {
    cookie: { originalMaxAge: null, expires: null, secure: true, httpOnly: true, path: '/', sameSite: 'lax' },
    userId: userOf(k),
    lastPage,
    profile: sampleValue(k),
  };
}

/** express-session's callback API as a promise. */
function storeGet(store: Store, sid: string): Promise<SessionData | null | undefined> {
  return new Promise((resolve, reject) => store.get(sid, (error, session) => (error ? reject(error) : resolve(session))));
}
function storeTouch(store: Store, sid: string, session: SessionData): Promise<void> {
  // express-session's types give touch's callback no error argument; stores pass one.
  const touch = store.touch!.bind(store) as (sid: string, session: SessionData, callback: (error?: unknown) => void) => void;
  return new Promise((resolve, reject) => touch(sid, session, (error) => (error ? reject(error) : resolve())));
}
function storeSet(store: Store, sid: string, session: SessionData): Promise<void> {
  return new Promise((resolve, reject) => store.set(sid, session, (error) => (error ? reject(error) : resolve())));
}

/** A way of finding user-k's session data, measured in a group. */
interface SessionLookup {
  name: string;
  baseline?: boolean;
  find(k: number): Promise<{ userId?: unknown } | null | undefined>;
}

/** Throws unless `data` is user-k's session. */
function check(name: string, k: number, data: { userId?: unknown } | null | undefined): { userId?: unknown } {
  if (!data) throw new Error(`${name}: session ${k} was not found`);
  if (data.userId !== userOf(k)) throw new Error(`${name}: session ${k} belongs to ${String(data.userId)}, not ${userOf(k)}`);
  return data;
}

/** The group's scenarios of `lookups`, each call checked to find user-k's session. */
function checkedScenarios(group: string, lookups: readonly SessionLookup[]): Scenario[] {
  return lookups.map(({ name, baseline, find }) => ({
    group,
    name,
    baseline,
    run: async (i) => {
      const k = i % SESSION_COUNT;
      return check(`${group}: ${name}`, k, await find(k));
    },
  }));
}

/**
 * Sessions, over SESSION_COUNT pre-created sessions per flavour (each flavour its own, with the
 * same data, about 1.2 KB of JSON).
 *
 * 'session read': the hand-written pattern (raw ioredis `GET sess:<id>` + JSON.parse, the
 * baseline); `SessionService.get` (module defaults: touchInterval 1m, so a read slides the idle
 * timeout, and writes, at most once a minute per session); connect-redis 8's `RedisStore.get` on an
 * ioredis client; and this module's express-session store, `RedisSessionStore.get`.
 *
 * 'session write': raw `SET sess:<id> <json> PX` of the whole session (the baseline);
 * `SessionService.update(id, { lastPage })`, one field; connect-redis's `set` of the whole
 * session; and `RedisSessionStore.set`, what express-session calls to save (the whole session).
 *
 * 'session request': what express-session asks of its store on a request that loads a session
 * and does not change it, a `get` and then a `touch` (which slides the idle timeout): raw
 * `GET` + JSON.parse and `PEXPIRE` (the baseline), connect-redis's `get` + `touch`, and
 * `RedisSessionStore`'s (whose touch is not sent before the session's slide is due).
 *
 * Every read must find its session, and the right one (its userId is checked); every update
 * must find its session: anything else throws and stops the run.
 */
export async function sessionScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const connectRedisClient = new Redis(url);
  const connectRedis = new RedisStore({ client: connectRedisClient, prefix: CONNECT_REDIS_PREFIX, ttl: IDLE_MS / 1000 });

  // `session: {}`: every session default (idleTtl 30m, absoluteTtl 12h, touchInterval 1m).
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: MODULE_PREFIX, session: {} })] })
  class SessionBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(SessionBenchModule, { logger: false });
  const sessions = app.get(SessionService);
  const store = new RedisSessionStore(sessions);

  // The ids of each flavour's sessions; index k holds user-k's session.
  const rawIds = Array.from({ length: SESSION_COUNT }, expressSessionId);
  const connectRedisIds = Array.from({ length: SESSION_COUNT }, expressSessionId);
  const storeIds = Array.from({ length: SESSION_COUNT }, expressSessionId);
  const serviceIds: string[] = [];

  const pipeline = raw.pipeline();
  rawIds.forEach((id, k) => pipeline.set(RAW_PREFIX + id, JSON.stringify(sessionData(k)), 'PX', IDLE_MS));
  await pipeline.exec();
  for (let k = 0; k < SESSION_COUNT; k++) {
    const [created] = await Promise.all([
      sessions.create(userOf(k), sessionData(k)),
      storeSet(connectRedis, connectRedisIds[k], sessionData(k) as unknown as SessionData),
      storeSet(store, storeIds[k], sessionData(k) as unknown as SessionData),
    ]);
    serviceIds.push(created.id);
  }

  // connect-redis tells node-redis from ioredis by duck typing; make sure it took the ioredis path
  // (`SET key value EX ttl`), so its sessions expire like the others.
  const connectRedisTtl = await raw.pttl(CONNECT_REDIS_PREFIX + connectRedisIds[0]);
  if (!(connectRedisTtl > 0 && connectRedisTtl <= IDLE_MS))
    throw new Error(`connect-redis wrote its session with PTTL ${connectRedisTtl}, not a ${IDLE_MS}ms expiry`);

  const reads: SessionLookup[] = [
    {
      name: 'raw ioredis GET sess:<id> + JSON.parse',
      baseline: true,
      find: async (k) => {
        const json = await raw.get(RAW_PREFIX + rawIds[k]);
        return json === null ? null : (JSON.parse(json) as { userId?: unknown });
      },
    },
    { name: 'SessionService.get (touchInterval 1m)', find: async (k) => (await sessions.get(serviceIds[k]))?.data },
    {
      name: 'connect-redis 8 RedisStore.get (ioredis client)',
      find: (k) => storeGet(connectRedis, connectRedisIds[k]) as Promise<{ userId?: unknown } | null | undefined>,
    },
    {
      name: 'RedisSessionStore.get (express-session store)',
      find: (k) => storeGet(store, storeIds[k]) as Promise<{ userId?: unknown } | null | undefined>,
    },
  ];

  const writes: { name: string; baseline?: boolean; write(k: number, lastPage: string): Promise<void> }[] = [
    {
      name: 'raw ioredis SET sess:<id> <json> PX (whole session)',
      baseline: true,
      write: async (k, lastPage) => {
        await raw.set(RAW_PREFIX + rawIds[k], JSON.stringify(sessionData(k, lastPage)), 'PX', IDLE_MS);
      },
    },
    {
      name: 'SessionService.update(id, { lastPage }) (one field)',
      write: async (k, lastPage) => {
        if (!(await sessions.update(serviceIds[k], { lastPage }))) throw new Error(`SessionService.update: session ${k} was not found`);
      },
    },
    {
      name: 'connect-redis 8 RedisStore.set (whole session)',
      write: (k, lastPage) => storeSet(connectRedis, connectRedisIds[k], sessionData(k, lastPage) as unknown as SessionData),
    },
    {
      name: 'RedisSessionStore.set (whole session)',
      write: (k, lastPage) => storeSet(store, storeIds[k], sessionData(k, lastPage) as unknown as SessionData),
    },
  ];

  /** express-session's request on a session it loads and does not change: `get`, then `touch` with what it loaded. */
  const requestOf = (store: Store, ids: string[]) => async (k: number) => {
    const session = await storeGet(store, ids[k]);
    await storeTouch(store, ids[k], session!);
    return session as { userId?: unknown } | null | undefined;
  };
  const requests: SessionLookup[] = [
    {
      name: 'raw ioredis GET + JSON.parse, PEXPIRE',
      baseline: true,
      find: async (k) => {
        const json = await raw.get(RAW_PREFIX + rawIds[k]);
        await raw.pexpire(RAW_PREFIX + rawIds[k], IDLE_MS);
        return json === null ? null : (JSON.parse(json) as { userId?: unknown });
      },
    },
    { name: 'connect-redis 8 RedisStore get + touch', find: requestOf(connectRedis, connectRedisIds) },
    { name: 'RedisSessionStore get + touch (express-session store)', find: requestOf(store, storeIds) },
  ];

  const scenarios: Scenario[] = [
    ...checkedScenarios(READ, reads),
    ...checkedScenarios(REQUEST, requests),
    ...writes.map(({ name, baseline, write }): Scenario => ({
      group: WRITE,
      name,
      baseline,
      run: (i) => write(i % SESSION_COUNT, `/page/${i}`),
    })),
  ];

  /** Every session of every flavour is still there, and is its user's. */
  const verifyAll = async (when: string) => {
    for (const { name, find } of reads) {
      for (let k = 0; k < SESSION_COUNT; k += 100) {
        const found = await Promise.all(Array.from({ length: 100 }, (_, n) => find(k + n)));
        found.forEach((data, n) => check(`${when}: ${name}`, k + n, data));
      }
    }
  };
  await verifyAll('before the run');
  for (const { write } of writes) await write(0, '/');

  return {
    scenarios,
    async close() {
      try {
        await verifyAll('after the run');
      } finally {
        await Promise.all([raw.quit(), connectRedisClient.quit(), app.close()]);
      }
    },
  };
}
