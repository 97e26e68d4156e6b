import type { INestApplicationContext } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, SessionService, type RedisClient } from '../../lib/index.js';
import { isCluster } from '../../lib/core/redis-client.js';
import { RedisSessionStore } from '../../lib/session/express-session.store.js';
import { handleOf } from '../../lib/session/session-ids.js';
import { commandCalls, ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { freshId, sessionOf } from './store-sessions.js';

/** `count` data fields named f0, f1... with values made of `tag`. */
const fieldsOf = (count: number, tag: string) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${i}`, `${tag}-${i}`]));

// A server of the suite's own: the commands it counts are this suite's alone.
describe.each(ownRedisSetups([]))('each write of a session sets its fields in one HSET, on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplicationContext;
  let sessions: SessionService;
  let store: RedisSessionStore;
  /** Runs `write`, and says how many HSETs and HDELs the servers (every master of a Cluster) ran meanwhile. */
  const countWrites = async (write: () => Promise<unknown>) => {
    const client = app.get(RedisConnections).get();
    const masters: Redis[] = isCluster(client) ? client.nodes('master') : [client];
    await Promise.all(masters.map((master) => master.config('RESETSTAT')));
    await write();
    const counts = { hset: 0, hdel: 0 };
    for (const master of masters) {
      const info = await master.info('commandstats');
      counts.hset += commandCalls(info, 'hset');
      counts.hdel += commandCalls(info, 'hdel');
    }
    return counts;
  };

  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, keyPrefix: 'writes:', session: { idleTtl: '100s', absoluteTtl: '150s' } });
    sessions = app.get(SessionService);
    store = new RedisSessionStore(sessions);
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await redis?.destroy();
  });

  it('SessionService: a create of three fields, an update of two, an update of two deleted and one set (its document rewritten)', async () => {
    let id = '';
    expect(await countWrites(async () => (id = (await sessions.create('ada', fieldsOf(3, 'a'))).id))).toEqual({ hset: 1, hdel: 0 });
    expect(await countWrites(() => sessions.update(id, { f0: 'b-0', f1: 'b-1' }))).toEqual({ hset: 1, hdel: 0 });
    expect(await countWrites(() => sessions.update(id, { f0: undefined, f1: undefined, f2: 'c-2' }))).toEqual({ hset: 1, hdel: 0 });
    expect((await sessions.get(id))!).toMatchObject({ userId: 'ada', data: { f2: 'c-2' } });
  });

  it('RedisSessionStore: a save that starts a session and one that replaces it', async () => {
    const sid = freshId();
    expect(await countWrites(() => store.set(sid, sessionOf({ n: 1 })))).toEqual({ hset: 1, hdel: 0 });
    expect(await countWrites(() => store.set(sid, sessionOf({ n: 2 })))).toEqual({ hset: 1, hdel: 0 });
    expect(await store.get(sid)).toMatchObject({ n: 2 });
  });
});

describe.each(topologies)('sessions with more fields than one HSET takes, on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let sessions: SessionService;
  let redis: RedisClient;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix: uniquePrefix(), session: { idleTtl: '100s', absoluteTtl: '150s' } });
    sessions = app.get(SessionService);
    redis = app.get(RedisConnections).get();
  });
  afterAll(() => app.close());

  it('creates, updates and deletes 600 fields at once, and keeps the meta field', async () => {
    const { id } = await sessions.create('linus', fieldsOf(600, 'a'));
    const key = app.get(RedisKeys).tagged(['s', handleOf(id)]);
    expect((await redis.hkeys(key)).sort()).toEqual(['j', 'm']);
    expect((await sessions.get(id))!.data).toEqual(fieldsOf(600, 'a'));
    // 600 set, then 500 deleted.
    expect(await sessions.update(id, fieldsOf(600, 'b'))).toBe(true);
    expect((await sessions.get(id))!).toMatchObject({ userId: 'linus', data: fieldsOf(600, 'b') });
    const deleted = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`f${i}`, undefined]));
    expect(await sessions.update(id, deleted)).toBe(true);
    expect((await redis.hkeys(key)).sort()).toEqual(['j', 'm']);
    expect((await sessions.get(id))!.data).toEqual(
      Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`f${i + 500}`, `b-${i + 500}`])),
    );
  });

  it('creates a session of 600 fields under a seat limit', async () => {
    const { id } = await sessions.create('ken', fieldsOf(600, 'k'), { maxSessionsPerUser: 2 });
    expect((await sessions.get(id))!).toMatchObject({ userId: 'ken', data: fieldsOf(600, 'k') });
  });
});
