import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ActivityService,
  ActivityTracker,
  InjectActivityTracker,
  InvalidOptionError,
  MalformedTextError,
  RedisConnections,
  RedisKeys,
  RedisUnavailableError,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { QUICK_OUTAGES, startContext, topologies, uniquePrefix } from '../support/testing-app.js';

const DAY = 86_400_000;
const FIRST_DAY = Date.UTC(2027, 4, 10);

@Injectable()
class Users {
  constructor(@InjectActivityTracker('users') readonly users: ActivityTracker) {}
}

/** A deterministic pseudo-random generator (mulberry32), so the data is the same on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** 300 users over 10 days: each user has a habit (how often they come), and comes or not each day. */
function generatedActivity(): boolean[][] {
  const next = random(42);
  return Array.from({ length: 300 }, () => {
    const habit = next();
    return Array.from({ length: 10 }, () => next() < habit);
  });
}

describe.each(topologies)('activity bitmaps on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  let activity: ActivityService;
  let redis: ReturnType<RedisConnections['get']>;
  let keys: RedisKeys;
  beforeAll(async () => {
    apps = await Promise.all(
      [1, 2].map(() =>
        startContext({ connection: connection(), keyPrefix, activity: { users: { period: 'day', retain: 35 } } }, { providers: [Users] }),
      ),
    );
    activity = apps[0].get(ActivityService);
    redis = apps[0].get(RedisConnections).get();
    keys = apps[0].get(RedisKeys);
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  const key = (name: string, ...parts: string[]) => keys.tagged(['act', name], ...parts);

  it('counts actives, every-day and any-day actives and retention exactly, over 300 users and 10 days', async () => {
    const data = generatedActivity();
    const day = (d: number) => FIRST_DAY + d * DAY + 13 * 3_600_000;
    const now = day(9);
    const tracker = activity.tracker('generated', { period: 'day', retain: 35, clock: () => now });
    const marks = data.flatMap((days, user) => days.flatMap((active, d) => (active ? [[`user-${user}`, d] as const] : [])));
    for (let from = 0; from < marks.length; from += 500)
      await Promise.all(marks.slice(from, from + 500).map(([user, d]) => tracker.mark(user, day(d))));

    const activeOn = (d: number) => data.filter((days) => days[d]).length;
    for (let d = 0; d < 10; d++) expect(await tracker.count(day(d))).toBe(activeOn(d));
    expect(await tracker.count()).toBe(activeOn(9));
    const week = [0, 1, 2, 3, 4, 5, 6];
    expect(await tracker.countAll(week.map(day))).toBe(data.filter((days) => week.every((d) => days[d])).length);
    expect(await tracker.countAny(week.map(day))).toBe(data.filter((days) => week.some((d) => days[d])).length);
    expect(await tracker.countAll([day(2)])).toBe(activeOn(2));
    // A day with no marks empties an AND and adds nothing to an OR.
    expect(await tracker.countAll([day(0), day(20)])).toBe(0);
    expect(await tracker.countAny([day(0), day(20)])).toBe(activeOn(0));

    const offsets = [1, 3, 7, 9, 20];
    const cohort = data.filter((days) => days[0]);
    const expected = offsets.map((offset) => {
      const active = offset < 10 ? cohort.filter((days) => days[offset]).length : 0;
      return { offset, active, rate: active / cohort.length };
    });
    expect(await tracker.retention(day(0), offsets)).toEqual({ cohort: cohort.length, periods: expected });
    expect(cohort.length).toBeGreaterThan(50);
    expect(expected[0].active).toBeGreaterThan(0);
    // An empty cohort: rates of 0, not NaN.
    expect(await tracker.retention(day(-3), [1, 2])).toEqual({
      cohort: 0,
      periods: [
        { offset: 1, active: 0, rate: 0 },
        { offset: 2, active: 0, rate: 0 },
      ],
    });
    // Marking again is not new; wasActive reads one bit.
    expect(await tracker.mark('user-0', day(0))).toBe(!data[0][0]);
    expect(await tracker.wasActive('user-1', day(3))).toBe(data[1][3]);
    // The scratch key of combinations is gone.
    expect(await redis.exists(key('generated', 'scratch'))).toBe(0);
  });

  it('gives each new id exactly one dense offset when two instances mark the same ids at once', async () => {
    const [a, b] = apps.map((app) => app.get(ActivityService).tracker('shared'));
    const ids = Array.from({ length: 200 }, (_, i) => `new-${i}`);
    const results = await Promise.all(ids.map((id) => Promise.all([a.mark(id), b.mark(id)])));
    // Exactly one of the two marks of each id set its bit.
    expect(results.every(([first, second]) => first !== second)).toBe(true);
    const map = await redis.hgetall(key('shared', 'ids'));
    expect(Object.keys(map).sort()).toEqual([...ids].sort());
    expect(
      Object.values(map)
        .map(Number)
        .sort((x, y) => x - y),
    ).toEqual(ids.map((_, i) => i));
    expect(await redis.get(key('shared', 'next'))).toBe('200');
    expect(await a.count()).toBe(200);
    expect(await b.count()).toBe(200);
    // The map never expires.
    expect(await redis.pttl(key('shared', 'ids'))).toBe(-1);
    expect(await redis.pttl(key('shared', 'next'))).toBe(-1);
  });

  it('wasActive of an unknown id is false and creates nothing', async () => {
    const tracker = activity.tracker('readers');
    await tracker.mark('known');
    expect(await tracker.wasActive('known')).toBe(true);
    expect(await tracker.wasActive('known', Date.now() - DAY)).toBe(false);
    expect(await tracker.wasActive('stranger')).toBe(false);
    expect(await redis.hlen(key('readers', 'ids'))).toBe(1);
    expect(await redis.get(key('readers', 'next'))).toBe('1');
  });

  it('uses integer ids as offsets, with no id map', async () => {
    const tracker = activity.tracker('numbers', { ids: 'integer' });
    expect(await tracker.mark(0)).toBe(true);
    expect(await tracker.mark(7)).toBe(true);
    expect(await tracker.mark(7)).toBe(false);
    expect(await tracker.mark(1000)).toBe(true);
    expect(await tracker.count()).toBe(3);
    expect(await tracker.wasActive(7)).toBe(true);
    expect(await tracker.wasActive(8)).toBe(false);
    const bitmap = key('numbers', tracker.periodId);
    expect(await redis.getbit(bitmap, 1000)).toBe(1);
    expect(await redis.strlen(bitmap)).toBe(126);
    expect(await redis.exists(key('numbers', 'ids'), key('numbers', 'next'))).toBe(0);
  });

  it('expires each period exactly retain periods after its end, in its time zone', async () => {
    const daily = activity.tracker('daily', { clock: () => Date.UTC(2027, 4, 10, 12) });
    expect(daily.periodId).toBe('d:2027-05-10');
    await daily.mark('a');
    // The default retain is 35: kept through 2027-06-14, gone when 2027-06-15 begins.
    expect(await redis.pexpiretime(key('daily', 'd:2027-05-10'))).toBe(Date.UTC(2027, 5, 15));
    // Europe/Paris moves to summer time on 2027-03-28 (23 hours): the next day begins at 22:00 UTC.
    const paris = activity.tracker('paris', { timeZone: 'Europe/Paris', retain: 1, clock: () => Date.UTC(2027, 2, 27, 12) });
    await paris.mark('a');
    expect(await redis.pexpiretime(key('paris', 'd:2027-03-27'))).toBe(Date.UTC(2027, 2, 28, 22));
    const weekly = activity.tracker('weekly', { period: 'week', weekStart: 0, retain: 4, clock: () => Date.UTC(2027, 0, 6) });
    expect(weekly.periodId).toBe('w:2027-01-03');
    await weekly.mark('a');
    expect(await redis.pexpiretime(key('weekly', 'w:2027-01-03'))).toBe(Date.UTC(2027, 1, 7));
    const hourly = activity.tracker('hourly', { period: 'hour', retain: 24, clock: () => Date.UTC(2027, 0, 1, 10, 45) });
    await hourly.mark('a');
    expect(await redis.pexpiretime(key('hourly', 'h:2027-01-01T10:00Z'))).toBe(Date.UTC(2027, 0, 2, 11));
    // Remembered periods end where the next begins.
    expect(await hourly.mark('a', Date.UTC(2027, 0, 1, 11) - 1)).toBe(false);
    expect(await hourly.mark('a', Date.UTC(2027, 0, 1, 11))).toBe(true);
    expect(await redis.pexpiretime(key('hourly', 'h:2027-01-01T11:00Z'))).toBe(Date.UTC(2027, 0, 2, 12));
    const monthly = activity.tracker('monthly', { period: 'month', retain: 2, clock: () => Date.UTC(2027, 10, 30) });
    await monthly.mark('a');
    expect(await redis.pexpiretime(key('monthly', 'm:2027-11'))).toBe(Date.UTC(2028, 1, 1));
  });

  it('warns once per tracker when a bitmap passes warnAtBytes', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const tracker = activity.tracker('big', { ids: 'integer', warnAtBytes: 2 });
      await tracker.mark(15);
      const warnings = () => warn.mock.calls.filter(([message]) => String(message).includes('Activity tracker "big"'));
      expect(warnings()).toHaveLength(0);
      await tracker.mark(16);
      expect(warnings()).toHaveLength(1);
      expect(String(warnings()[0][0])).toMatch(/3 bytes, over warnAtBytes \(2\)/);
      await tracker.mark(100);
      await tracker.mark(1000, Date.now() - DAY);
      expect(warnings()).toHaveLength(1);
      // String ids warn by their offset too.
      const named = activity.tracker('big-names', { warnAtBytes: 1 });
      for (let i = 0; i < 10; i++) await named.mark(`n${i}`);
      expect(warn.mock.calls.filter(([message]) => String(message).includes('"big-names"'))).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses bad ids, times, periods and options by name, before anything is written', async () => {
    const now = FIRST_DAY;
    const strings = activity.tracker('bad', { retain: 3, clock: () => now });
    await expect(strings.mark('')).rejects.toThrow(/"id"/);
    await expect(strings.mark(42)).rejects.toThrow(/"id"/);
    await expect(strings.mark(null as unknown as string)).rejects.toThrow(InvalidOptionError);
    await expect(strings.mark('\uD800')).rejects.toBeInstanceOf(MalformedTextError);
    await expect(strings.mark('x'.repeat(1025))).rejects.toThrow(/"id"/);
    await expect(strings.wasActive('')).rejects.toThrow(/"id"/);
    await expect(strings.mark('x', Number.NaN)).rejects.toThrow(/"at"/);
    await expect(strings.mark('x', FIRST_DAY - 4 * DAY)).rejects.toThrow(/"at".*still retained/);
    await expect(strings.countAll([])).rejects.toThrow(/"periods"/);
    await expect(strings.countAny([1, 2, 3, 4, 5])).rejects.toThrow(/"periods".*1 to 4/);
    await expect(strings.countAll([now, Number.NaN])).rejects.toThrow(/"periods\[1\]"/);
    await expect(strings.retention(now, [])).rejects.toThrow(/"offsets"/);
    await expect(strings.retention(now, [1, 4])).rejects.toThrow(/"offsets\[1\]"/);
    await expect(strings.retention(now, [-1])).rejects.toThrow(/"offsets\[0\]"/);
    await expect(strings.retention(new Date(Number.NaN), [1])).rejects.toThrow(/"cohort"/);
    expect(await redis.exists(key('bad', 'ids'), key('bad', 'next'), key('bad', 'scratch'))).toBe(0);
    // The oldest period retained is still markable.
    expect(await strings.mark('x', FIRST_DAY - 3 * DAY)).toBe(true);

    // When all 2^32 offsets are taken, a new id is refused and nothing is written; known ids still mark.
    await redis.set(key('bad', 'next'), 2 ** 32);
    await expect(strings.mark('one-too-many')).rejects.toThrow(/all 2\^32 bit offsets are taken/);
    expect(await redis.hkeys(key('bad', 'ids'))).toEqual(['x']);
    expect(await strings.mark('x')).toBe(true);

    const integers = activity.tracker('bad-integers', { ids: 'integer' });
    for (const id of [-1, 1.5, 2 ** 32, Number.NaN, '5', 2 ** 53]) await expect(integers.mark(id)).rejects.toThrow(/"id".*ids: 'integer'/);
    expect(await integers.count()).toBe(0);
    expect(await redis.exists(key('bad-integers', integers.periodId))).toBe(0);

    expect(() => activity.tracker('', {})).toThrow(/"name"/);
    expect(() => activity.tracker('x', { period: 'none' as 'day' })).toThrow(/activity\.x\.period/);
    expect(() => activity.tracker('x', { timeZone: 'Mars/Olympus' })).toThrow(/activity\.x\.timeZone/);
    expect(() => activity.tracker('x', { retain: -1 })).toThrow(/activity\.x\.retain/);
    expect(() => activity.tracker('x', { ids: 'uuid' as 'string' })).toThrow(/activity\.x\.ids/);
    expect(() => activity.tracker('x', { warnAtBytes: 0 })).toThrow(/activity\.x\.warnAtBytes/);
    expect(() => activity.tracker('x', { colour: 'red' } as never)).toThrow(/colour/);
  });

  it('@InjectActivityTracker gives the tracker declared under activity, shared by the instances', async () => {
    const [a, b] = apps.map((app) => app.get(Users).users);
    expect(a).toBeInstanceOf(ActivityTracker);
    await a.mark('u1');
    await b.mark('u2');
    await b.mark('u1');
    expect(await a.count()).toBe(2);
    expect(await b.wasActive('u2')).toBe(true);
    expect(await redis.pexpiretime(key('users', a.periodId))).toBeGreaterThan(Date.now() + 35 * DAY);
  });
});

describe('activity bitmaps when Redis goes away', () => {
  const own = ownRedisServer();
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: own.server.address, ...QUICK_OUTAGES, activity: { users: {} } }, { providers: [Users] });
  });
  afterAll(() => app?.close());

  it('every call rejects with RedisUnavailableError (503), logged once, and works again when Redis is back', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const { users } = app.get(Users);
      expect(await users.mark('u1')).toBe(true);
      await own.server.stop();
      const calls = [
        () => users.mark('u2'),
        () => users.wasActive('u1'),
        () => users.count(),
        () => users.countAll([Date.now()]),
        () => users.countAny([Date.now()]),
        () => users.retention(Date.now(), [1]),
      ];
      for (const call of calls) {
        const failed = await call().catch((error: unknown) => error);
        expect(failed).toBeInstanceOf(RedisUnavailableError);
        expect((failed as RedisUnavailableError).getStatus()).toBe(503);
      }
      expect(warn.mock.calls.filter(([message]) => String(message).includes('unavailable to activity tracking'))).toHaveLength(1);
      // Back (empty: the test server keeps nothing over a restart), marking works again.
      await own.server.start();
      await expect
        .poll(
          () =>
            users
              .mark('w1')
              .then(() => users.count())
              .catch(() => -1),
          { timeout: 5_000 },
        )
        .toBe(1);
    } finally {
      warn.mockRestore();
    }
  });
});
