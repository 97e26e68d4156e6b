import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CountUnique,
  InjectUniqueCounter,
  InvalidOptionError,
  MalformedTextError,
  RedisConnections,
  RedisKeys,
  RedisUnavailableError,
  UniqueCounter,
  UniqueCounterService,
} from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { QUICK_OUTAGES, startContext, topologies, uniquePrefix } from '../support/testing-app.js';

const DAY = 86_400_000;

@Injectable()
class PageViews {
  constructor(@InjectUniqueCounter('visitors') readonly visitors: UniqueCounter) {}

  @CountUnique<[string, string]>('visitors', { by: (_page, user) => user })
  async view(page: string, _user: string): Promise<string> {
    return `page ${page}`;
  }

  @CountUnique<[string]>('visitors', { by: (user) => user })
  async fail(_user: string): Promise<string> {
    throw new Error('the handler failed');
  }

  @CountUnique<[string]>('undeclared', { by: (user) => user })
  async undeclared(_user: string): Promise<string> {
    return 'never';
  }
}

describe.each(topologies)('unique counters on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  let counters: UniqueCounterService;
  let redis: ReturnType<RedisConnections['get']>;
  let keys: RedisKeys;
  let now = Date.now();
  const clock = () => now;
  beforeAll(async () => {
    apps = await Promise.all(
      [1, 2].map(() =>
        startContext(
          { connection: connection(), keyPrefix, uniqueCounters: { visitors: { period: 'day', retain: 2, clock } } },
          { providers: [PageViews] },
        ),
      ),
    );
    counters = apps[0].get(UniqueCounterService);
    redis = apps[0].get(RedisConnections).get();
    keys = apps[0].get(RedisKeys);
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  it('estimates 100,000 distinct items within 3 standard errors (2.43%), in one key of at most 12 KB', async () => {
    const counter = counters.counter('accuracy', { period: 'none' });
    const items = Array.from({ length: 100_000 }, (_, i) => `item-${i}`);
    expect(await counter.add(items)).toBe(true);
    // Adding them again changes nothing.
    expect(await counter.add(items.slice(0, 5_000))).toBe(false);
    const estimate = await counter.count();
    expect(Math.abs(estimate - 100_000) / 100_000).toBeLessThan(3 * 0.0081);
    const key = keys.tagged(['uc', 'accuracy'], 'all');
    expect(await redis.strlen(key)).toBeLessThanOrEqual(12 * 1024 + 16);
    expect(await redis.pttl(key)).toBe(-1);
  });

  it('expires each period exactly retain periods after its end, in its time zone (a DST day of 23 hours)', async () => {
    // Europe/Paris moves to summer time on 2027-03-28: that day is 23 hours long.
    const at = Date.UTC(2027, 2, 27, 12);
    let fixed = at;
    const daily = counters.counter('paris', { period: 'day', timeZone: 'Europe/Paris', retain: 1, clock: () => fixed });
    expect(daily.periodId).toBe('d:2027-03-27');
    await daily.add('a');
    // Kept through the next day (2027-03-28), gone when 2027-03-29 begins in Paris (22:00 UTC, summer time).
    expect(await redis.pexpiretime(keys.tagged(['uc', 'paris'], 'd:2027-03-27'))).toBe(Date.UTC(2027, 2, 28, 22));
    fixed = Date.UTC(2027, 2, 28, 21, 59);
    expect(daily.periodId).toBe('d:2027-03-28');

    // Hours in a zone half an hour off UTC begin at :30 UTC.
    const hourly = counters.counter('kolkata', {
      period: 'hour',
      timeZone: 'Asia/Kolkata',
      retain: 3,
      clock: () => Date.UTC(2027, 0, 1, 10, 45),
    });
    expect(hourly.periodId).toBe('h:2027-01-01T10:30Z');
    await hourly.add('a');
    expect(await redis.pexpiretime(keys.tagged(['uc', 'kolkata'], 'h:2027-01-01T10:30Z'))).toBe(Date.UTC(2027, 0, 1, 14, 30));

    // Weeks begin on weekStart; months on the 1st.
    const weekly = counters.counter('weeks', { period: 'week', weekStart: 0, retain: 0, clock: () => Date.UTC(2027, 0, 6) });
    expect(weekly.periodId).toBe('w:2027-01-03');
    await weekly.add('a');
    expect(await redis.pexpiretime(keys.tagged(['uc', 'weeks'], 'w:2027-01-03'))).toBe(Date.UTC(2027, 0, 10));
    const monthly = counters.counter('months', { period: 'month', retain: 2, clock: () => Date.UTC(2027, 10, 30) });
    await monthly.add('a');
    expect(await redis.pexpiretime(keys.tagged(['uc', 'months'], 'm:2027-11'))).toBe(Date.UTC(2028, 1, 1));
  });

  it('counts one period, or the union of a range in one command, and stores roll-ups', async () => {
    let day = Date.UTC(2027, 4, 10, 9);
    const counter = counters.counter('range', { period: 'day', retain: 6, clock: () => day });
    await counter.add(['ann', 'bob', 'cy']);
    day += DAY;
    await counter.add(['bob', 'dee']);
    day += DAY;
    await counter.add(['eve', 'ann', 'fay', 'gus']);
    expect(await counter.count()).toBe(4);
    expect(await counter.count(day - DAY)).toBe(2);
    expect(await counter.count(new Date(day - 2 * DAY))).toBe(3);
    expect(await counter.count({ from: day - 2 * DAY, to: day })).toBe(7);
    expect(await counter.count({ from: day - DAY, to: day })).toBe(6);
    // A period with nothing counts nothing.
    expect(await counter.count({ from: day - 5 * DAY, to: day - 3 * DAY })).toBe(0);
    // At most retain + 1 periods: older ones have expired.
    await expect(counter.count({ from: day - 7 * DAY, to: day })).rejects.toThrow(InvalidOptionError);
    await expect(counter.count({ from: day - 7 * DAY, to: day })).rejects.toThrow(/range.*at most 7 periods/);
    await expect(counter.count({ from: day, to: day - DAY })).rejects.toThrow(/range\.to/);

    expect(await counter.merge({ from: day - 2 * DAY, to: day }, 'three-days')).toBe(7);
    expect(await counter.rollup('three-days')).toBe(7);
    expect(await counter.rollup('never-made')).toBe(0);
    // The roll-up lives as long as the newest period it holds.
    const newest = keys.tagged(['uc', 'range'], 'd:2027-05-12');
    expect(await redis.pexpiretime(keys.tagged(['uc', 'range'], 'rollup', 'three-days'))).toBe(await redis.pexpiretime(newest));
  });

  it('refuses bad items, times and ranges by name, before anything is written', async () => {
    const counter = counters.counter('bad', { period: 'day' });
    await expect(counter.add('')).rejects.toThrow(/items\[0\]/);
    await expect(counter.add(['ok', 42 as unknown as string])).rejects.toThrow(/items\[1\]/);
    await expect(counter.add('\uD800')).rejects.toBeInstanceOf(MalformedTextError);
    await expect(counter.add('x', Number.NaN)).rejects.toThrow(/\bat\b/);
    await expect(counter.add('x', Date.now() - 30 * DAY)).rejects.toThrow(/still retained/);
    expect(await counter.count()).toBe(0);
    const none = counters.counter('bad-none', { period: 'none' });
    await expect(none.count({ from: 0, to: 1 })).rejects.toThrow(/range.*period: 'none'/);
    expect(() => counters.counter('', {})).toThrow(/\bname\b/);
    expect(() => counters.counter('x', { period: 'year' as 'day' })).toThrow(/uniqueCounters\.x\.period/);
    expect(() => counters.counter('x', { timeZone: 'Mars/Olympus' })).toThrow(/uniqueCounters\.x\.timeZone/);
    expect(() => counters.counter('x', { retain: -1 })).toThrow(/uniqueCounters\.x\.retain/);
    expect(() => counters.counter('x', { colour: 'red' } as never)).toThrow(/colour/);
  });

  it('@CountUnique counts after the method succeeds, across instances, and @InjectUniqueCounter gives the declared counter', async () => {
    now = Date.now();
    const [a, b] = apps.map((app) => app.get(PageViews));
    expect(await a.view('home', 'u1')).toBe('page home');
    await a.view('home', 'u2');
    await b.view('about', 'u1');
    await b.view('home', 'u3');
    await expect(a.fail('u4')).rejects.toThrow('the handler failed');
    await expect.poll(() => a.visitors.count()).toBe(3);
    expect(await b.visitors.count()).toBe(3);
    await expect(a.undeclared('u5')).rejects.toThrow(/no counter "undeclared" is declared under uniqueCounters/);
    expect(counters.lostCounts).toBe(0);
  });
});

describe('unique counters when Redis goes away', () => {
  const own = ownRedisServer();
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext(
      { connection: own.server.address, ...QUICK_OUTAGES, uniqueCounters: { visitors: {} } },
      { providers: [PageViews] },
    );
  });
  afterAll(() => app?.close());

  it('reads and adds reject with RedisUnavailableError (503); @CountUnique answers anyway, counts what it lost, and logs once', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const views = app.get(PageViews);
      await views.view('home', 'u1');
      await expect.poll(() => views.visitors.count()).toBe(1);
      await own.server.stop();
      const failed = await views.visitors.add('u2').catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(RedisUnavailableError);
      expect((failed as RedisUnavailableError).getStatus()).toBe(503);
      for (let i = 0; i < 5; i++) expect(await views.view('home', `v${i}`)).toBe('page home');
      const counters = app.get(UniqueCounterService);
      await expect.poll(() => counters.lostCounts).toBe(5);
      expect(warn.mock.calls.filter(([message]) => String(message).includes('unavailable to unique counters'))).toHaveLength(1);
      // Back (empty: the test server keeps nothing over a restart), counting works again.
      await own.server.start();
      await expect
        .poll(
          () =>
            views.visitors
              .add('w1')
              .then(() => views.visitors.count())
              .catch(() => -1),
          { timeout: 5_000 },
        )
        .toBe(1);
    } finally {
      warn.mockRestore();
    }
  });
});
