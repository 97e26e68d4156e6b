import type { INestApplicationContext } from '@nestjs/common';
import { ThrottlerStorageService, type ThrottlerStorage } from '@nestjs/throttler';
import calculateSlot from 'cluster-key-slot';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, MalformedTextError, RedisConnections, RedisThrottlerStorage } from '../../lib/index.js';
import { scanKeys } from '../support/scan.js';
import { sleep } from '../support/redis-server.js';
import { standaloneConnection, startContext, topologies, uniquePrefix } from '../support/testing-app.js';

/** One step of a scenario: `hits` calls of increment in a row (with another `ttl`, if given), or a pause. */
type Step = { hits: number; ttl?: number } | { wait: number };
type Throttler = { ttl: number; limit: number; blockDuration: number };
type Answer = Awaited<ReturnType<ThrottlerStorage['increment']>>;

let scenario = 0;

/**
 * Plays the same steps on two storages in lockstep (each hit on ours, then on theirs), so both see
 * the same elapsed times, and returns both lists of answers.
 */
async function lockstep(ours: ThrottlerStorage, theirs: ThrottlerStorage, throttler: Throttler, steps: readonly Step[]) {
  const key = `scenario-${++scenario}`;
  const answers: { ours: Answer[]; theirs: Answer[] } = { ours: [], theirs: [] };
  for (const step of steps) {
    if ('wait' in step) {
      await sleep(step.wait);
      continue;
    }
    for (let hit = 0; hit < step.hits; hit++) {
      const { limit, blockDuration } = throttler;
      const ttl = step.ttl ?? throttler.ttl;
      answers.ours.push(await ours.increment(key, ttl, limit, blockDuration, 'default'));
      answers.theirs.push(await theirs.increment(key, ttl, limit, blockDuration, 'default'));
    }
  }
  return answers;
}

/**
 * The in-memory storage answers a `timeToBlockExpire` when not blocked too: the seconds since its
 * block ended, or minus the epoch in seconds when it never blocked (the guard reads it only when
 * blocked). Ours answers 0 then: compare the rest.
 */
function whenBlocked(answers: readonly Answer[]): Answer[] {
  return answers.map((answer) => {
    if (!answer.isBlocked) expect(answer.timeToBlockExpire).toBeLessThanOrEqual(0);
    return answer.isBlocked ? answer : { ...answer, timeToBlockExpire: 0 };
  });
}

describe.each(topologies)('RedisThrottlerStorage on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let app: INestApplicationContext;
  let storage: RedisThrottlerStorage;
  let inMemory: ThrottlerStorageService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix });
    storage = app.get(RedisThrottlerStorage);
    inMemory = new ThrottlerStorageService();
  });
  afterAll(async () => {
    inMemory.onApplicationShutdown();
    await app.close();
  });

  describe('answers as the in-memory storage of @nestjs/throttler does, hit for hit', () => {
    it('blocks on the hit past the limit, counts nothing during the block, and starts afresh after it', async () => {
      const throttler = { ttl: 3000, limit: 2, blockDuration: 1500 };
      const { ours, theirs } = await lockstep(storage, inMemory, throttler, [{ hits: 4 }, { wait: 1600 }, { hits: 3 }]);
      expect(ours).toEqual(whenBlocked(theirs));
      expect(ours.map((answer) => [answer.totalHits, answer.isBlocked])).toEqual([
        [1, false],
        [2, false],
        [3, true],
        [3, true],
        [1, false],
        [2, false],
        [3, true],
      ]);
      expect(ours[2]).toMatchObject({ timeToExpire: 3, timeToBlockExpire: 2 });
    });

    it('without a block, refuses a hit over the limit uncounted until the oldest counted hit expires', async () => {
      const throttler = { ttl: 2000, limit: 2, blockDuration: 0 };
      const { ours, theirs } = await lockstep(storage, inMemory, throttler, [
        { hits: 1 },
        { wait: 1000 },
        { hits: 2 },
        { wait: 1300 },
        { hits: 2 },
      ]);
      expect(ours).toEqual(whenBlocked(theirs));
      // Each hit counts for its own ttl: after 2.3 s the second hit still counts, so one more passes (a window would pass two).
      expect(ours.map((answer) => [answer.totalHits, answer.isBlocked])).toEqual([
        [1, false],
        [2, false],
        [3, true],
        [2, false],
        [3, true],
      ]);
      expect(ours[2].timeToBlockExpire).toBe(1);
    });

    it('starts a new window at the first hit after one ended', async () => {
      const throttler = { ttl: 1000, limit: 10, blockDuration: 1000 };
      const { ours, theirs } = await lockstep(storage, inMemory, throttler, [{ hits: 2 }, { wait: 1300 }, { hits: 1 }]);
      expect(ours).toEqual(whenBlocked(theirs));
      expect(ours.map((answer) => [answer.totalHits, answer.timeToExpire])).toEqual([
        [1, 1],
        [2, 1],
        [1, 1],
      ]);
    });

    it('counts each hit for the ttl it came with, when the ttl varies by request', async () => {
      const throttler = { ttl: 3000, limit: 3, blockDuration: 0 };
      const { ours, theirs } = await lockstep(storage, inMemory, throttler, [
        { hits: 1 },
        { hits: 1, ttl: 1000 },
        { hits: 1, ttl: 2000 },
        { hits: 1 },
        { wait: 1300 },
        { hits: 1 },
        { hits: 1 },
      ]);
      expect(ours).toEqual(whenBlocked(theirs));
      // After 1.3 s, the 1 s hit no longer counts: one more passes.
      expect(ours.map((answer) => [answer.totalHits, answer.isBlocked])).toEqual([
        [1, false],
        [2, false],
        [3, false],
        [4, true],
        [3, false],
        [4, true],
      ]);
      expect(ours[5].timeToBlockExpire).toBe(1);
    });

    it('keeps counting the hits of an ended window for their own ttl, however the ttl varies', async () => {
      const throttler = { ttl: 1000, limit: 3, blockDuration: 0 };
      const { ours, theirs } = await lockstep(storage, inMemory, throttler, [
        { hits: 1 },
        { hits: 1, ttl: 3000 },
        { wait: 1300 },
        { hits: 3 },
        { wait: 1100 },
        { hits: 3 },
      ]);
      expect(ours).toEqual(whenBlocked(theirs));
      expect(ours.map((answer) => [answer.totalHits, answer.isBlocked])).toEqual([
        [1, false],
        [2, false],
        // The 3 s hit still counts after its window: two more pass.
        [2, false],
        [3, false],
        [4, true],
        // Only the 3 s hit is left.
        [2, false],
        [3, false],
        [4, true],
      ]);
    });

    it('takes a ttl of 0 (each hit counts for no time) and a limit of 0 (every hit blocked)', async () => {
      const zeroTtl = await lockstep(storage, inMemory, { ttl: 0, limit: 5, blockDuration: 0 }, [{ hits: 3 }]);
      expect(zeroTtl.ours).toEqual(whenBlocked(zeroTtl.theirs));
      expect(zeroTtl.ours.map((answer) => answer.totalHits)).toEqual([1, 1, 1]);
      const zeroLimit = await lockstep(storage, inMemory, { ttl: 1000, limit: 0, blockDuration: 1000 }, [{ hits: 2 }]);
      expect(zeroLimit.ours).toEqual(whenBlocked(zeroLimit.theirs));
      expect(zeroLimit.ours.every((answer) => answer.isBlocked)).toBe(true);
    });
  });

  it('counts each throttler of a key on its own', async () => {
    await storage.increment('shared', 60_000, 1, 60_000, 'short');
    expect(await storage.increment('shared', 60_000, 1, 60_000, 'short')).toMatchObject({ isBlocked: true, totalHits: 2 });
    expect(await storage.increment('shared', 60_000, 1, 60_000, 'long')).toMatchObject({ isBlocked: false, totalHits: 1 });
  });

  it('keeps a record and the counted hits under one hash tag, the parts encoded, expiring with the window and the block', async () => {
    await storage.increment('route:{a} b', 2000, 5, 4000, 'per route');
    const redis = app.get(RedisConnections).get();
    const keys = (await scanKeys(redis, `${keyPrefix}{th:route*`)).sort();
    const record = `${keyPrefix}{th:route%3A%7Ba%7D%20b:per%20route}`;
    expect(keys).toEqual([record, `${record}:hits`]);
    expect(calculateSlot(keys[0])).toBe(calculateSlot(keys[1]));
    // "<window end> <block end> <longest ttl>", on the server's clock; the hits, by when each expires.
    const [windowEnd, blockEnd, longest] = (await redis.get(record))!.split(' ').map(Number);
    expect([blockEnd, longest]).toEqual([0, 2000]);
    expect(await redis.lrange(`${record}:hits`, 0, -1)).toEqual([String(windowEnd)]);
    // The record expires with its window; the hits once no hit of the window can count any more.
    expect(await redis.pexpiretime(record)).toBe(windowEnd);
    expect(await redis.pexpiretime(`${record}:hits`)).toBe(windowEnd + 2000);

    // A block keeps the record (and so the block) alive past the window, and as long as the hits.
    for (let hit = 0; hit < 5; hit++) await storage.increment('route:{a} b', 2000, 5, 4000, 'per route');
    const [, blockedUntil] = (await redis.get(record))!.split(' ').map(Number);
    expect(blockedUntil).toBeGreaterThan(windowEnd);
    expect(await redis.pexpiretime(record)).toBe(Math.max(blockedUntil, windowEnd + 2000));
    expect(await redis.llen(`${record}:hits`)).toBe(6);
  });

  it('throws an error that is not an outage (here WRONGTYPE) instead of admitting the hit', async () => {
    await app.get(RedisConnections).get().lpush(storage.keyOf('typed', 'short'), 'not a record');
    await expect(storage.increment('typed', 1000, 1, 0, 'short')).rejects.toThrow(/WRONGTYPE/);
  });

  it('refuses times and limits that are not finite numbers of at least 0, and keys that are not well-formed text', async () => {
    await expect(storage.increment('k', Number.NaN, 1, 0, 'short')).rejects.toThrow(
      new InvalidOptionError('throttler "short" ttl', 'a finite number of at least 0', Number.NaN),
    );
    await expect(storage.increment('k', 1000, -1, 0, 'short')).rejects.toThrow(/Invalid option "throttler "short" limit"/);
    await expect(storage.increment('k', 1000, 1, Infinity, 'short')).rejects.toThrow(/Invalid option "throttler "short" blockDuration"/);
    await expect(storage.increment('k', '1000' as never, 1, 0, 'short')).rejects.toThrow(/"throttler "short" ttl"/);
    await expect(storage.increment('k\ud800', 1000, 1, 0, 'short')).rejects.toBeInstanceOf(MalformedTextError);
  });
});

it('counts its answers in ratelimit_decisions_total, as the policy throttler:<name>', async () => {
  const registry = new Registry();
  const app = await startContext({ connection: standaloneConnection(), metrics: { prometheus: { registry } } });
  try {
    const storage = app.get(RedisThrottlerStorage);
    for (let hit = 0; hit < 3; hit++) await storage.increment('metered', 60_000, 1, 60_000, 'burst');
    const lines = (await registry.metrics()).split('\n').filter((line) => line.includes('policy="throttler:burst"'));
    expect(lines.sort()).toEqual([
      'redis_patterns_ratelimit_decisions_total{policy="throttler:burst",outcome="allowed"} 1',
      'redis_patterns_ratelimit_decisions_total{policy="throttler:burst",outcome="limited"} 2',
    ]);
  } finally {
    await app.close();
  }
});
