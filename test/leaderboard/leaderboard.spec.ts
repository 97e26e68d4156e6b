import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InjectLeaderboard,
  InvalidOptionError,
  Leaderboard,
  LeaderboardFullError,
  LeaderboardService,
  MAX_FIRST_COME_SCORE,
  RedisConnections,
  RedisKeys,
  type LeaderboardOptions,
} from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

let boards = 0;
/** A board name no other test uses. */
const fresh = () => `board-${++boards}`;

describe.each(topologies)('LeaderboardService on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  let service: LeaderboardService;
  const board = (options: LeaderboardOptions = {}, name = fresh()) => service.board(name, options);
  beforeAll(async () => {
    apps = await Promise.all([1, 2].map(() => startContext({ connection: connection(), keyPrefix })));
    service = apps[0].get(LeaderboardService);
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  it('ranks from 1, and equal scores first-come: whoever reached a score first ranks first', async () => {
    const lb = board();
    for (const [member, score] of [
      ['carol', 100],
      ['alice', 100],
      ['bob', 100],
      ['dave', 120],
      ['erin', 90],
    ] as const)
      await lb.submit(member, score);
    // Redis alone would order the ties by name (alice, bob, carol).
    expect(await lb.top(5)).toEqual([
      { member: 'dave', score: 120, rank: 1 },
      { member: 'carol', score: 100, rank: 2 },
      { member: 'alice', score: 100, rank: 3 },
      { member: 'bob', score: 100, rank: 4 },
      { member: 'erin', score: 90, rank: 5 },
    ]);
    expect(await lb.entry('bob')).toEqual({ member: 'bob', score: 100, rank: 4 });
    expect(await lb.rank('nobody')).toBeNull();
    expect(await lb.score('nobody')).toBeNull();
    expect(await lb.count()).toBe(5);
  });

  it('ranks ascending boards lowest first, ties first-come too, with negative scores', async () => {
    const lb = board({ order: 'asc' });
    for (const [member, score] of [
      ['b', 30],
      ['a', 30],
      ['c', -5],
      ['d', 31],
    ] as const)
      await lb.submit(member, score);
    expect((await lb.top(4)).map(({ member, score, rank }) => `${rank}:${member}:${score}`)).toEqual([
      '1:c:-5',
      '2:b:30',
      '3:a:30',
      '4:d:31',
    ]);
  });

  it("shares ranks between equal scores with ties: 'shared' (1, 2, 2, 4), fractions included, and every read agrees", async () => {
    const lb = board({ ties: 'shared' });
    for (const [member, score] of [
      ['w', 10.5],
      ['x', 9.25],
      ['y', 9.25],
      ['z', 8],
    ] as const)
      await lb.submit(member, score);
    // Within a tie, a 'desc' board lists members in Redis's order: by name, reversed.
    expect((await lb.top(4)).map(({ member, score, rank }) => `${rank}:${member}:${score}`)).toEqual([
      '1:w:10.5',
      '2:y:9.25',
      '2:x:9.25',
      '4:z:8',
    ]);
    // A page that starts inside a tie still gives the tie's rank.
    expect(await lb.page(2, 2)).toEqual([
      { member: 'x', score: 9.25, rank: 2 },
      { member: 'z', score: 8, rank: 4 },
    ]);
    expect(await lb.entry('x')).toEqual({ member: 'x', score: 9.25, rank: 2 });
    expect([await lb.rank('y'), await lb.rank('z'), await lb.rank('nobody'), await lb.entry('nobody')]).toEqual([2, 4, null, null]);
    // On an 'asc' board the lower scores rank first, ties shared the same way.
    const asc = board({ ties: 'shared', order: 'asc' });
    for (const [member, score] of [
      ['a', 3],
      ['b', 1],
      ['c', 1],
      ['d', 2],
    ] as const)
      await asc.submit(member, score);
    expect(await Promise.all(['a', 'b', 'c', 'd'].map((member) => asc.rank(member)))).toEqual([4, 1, 1, 3]);
    expect(await lb.around('z', 1)).toEqual([
      { member: 'y', score: 9.25, rank: 2 },
      { member: 'x', score: 9.25, rank: 2 },
      { member: 'z', score: 8, rank: 4 },
    ]);
    expect(await lb.submit('v', 9.25)).toEqual({ member: 'v', score: 9.25, rank: 2 });
  });

  it("updates by mode: 'best' keeps the better score (and its place among ties), 'replace' sets, 'increment' adds", async () => {
    const lb = board();
    expect(await lb.submit('ann', 50)).toEqual({ member: 'ann', score: 50, rank: 1 });
    await lb.submit('ben', 50);
    expect(await lb.submit('ann', 40)).toEqual({ member: 'ann', score: 50, rank: 1 });
    // Reaching the same score again is not better: ann keeps her earlier place.
    expect(await lb.submit('ann', 50)).toEqual({ member: 'ann', score: 50, rank: 1 });
    expect(await lb.submit('ben', 60, { mode: 'best' })).toEqual({ member: 'ben', score: 60, rank: 1 });
    expect(await lb.submit('ben', 10, { mode: 'replace' })).toEqual({ member: 'ben', score: 10, rank: 2 });
    expect(await lb.increment('cid', 7)).toEqual({ member: 'cid', score: 7, rank: 3 });
    expect(await lb.increment('cid', 50)).toEqual({ member: 'cid', score: 57, rank: 1 });
    expect(await lb.submit('cid', -60, { mode: 'increment' })).toEqual({ member: 'cid', score: -3, rank: 3 });

    const fastest = board({ order: 'asc' });
    await fastest.submit('runner', 600);
    expect((await fastest.submit('runner', 580)).score).toBe(580);
    expect((await fastest.submit('runner', 590)).score).toBe(580);
  });

  it('returns 2 * radius + 1 entries around a member, shifted inwards at the top and bottom', async () => {
    const lb = board();
    for (let i = 1; i <= 10; i++) await lb.submit(`p${i}`, 100 - i);
    const ranks = async (member: string, radius: number) => (await lb.around(member, radius)).map((entry) => entry.rank);
    expect(await ranks('p5', 2)).toEqual([3, 4, 5, 6, 7]);
    expect(await ranks('p1', 2)).toEqual([1, 2, 3, 4, 5]);
    expect(await ranks('p10', 2)).toEqual([6, 7, 8, 9, 10]);
    expect(await ranks('p3', 0)).toEqual([3]);
    expect(await ranks('p2', 20)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await lb.around('nobody', 2)).toEqual([]);
  });

  it('pages from 1, and agrees with top and rank', async () => {
    const lb = board();
    for (let i = 1; i <= 7; i++) await lb.submit(`m${i}`, i * 10);
    expect((await lb.page(1, 3)).map((entry) => entry.member)).toEqual(['m7', 'm6', 'm5']);
    expect(await lb.page(2, 3)).toEqual([
      { member: 'm4', score: 40, rank: 4 },
      { member: 'm3', score: 30, rank: 5 },
      { member: 'm2', score: 20, rank: 6 },
    ]);
    expect(await lb.page(3, 3)).toEqual([{ member: 'm1', score: 10, rank: 7 }]);
    expect(await lb.page(4, 3)).toEqual([]);
    expect(await lb.rank('m3')).toBe(5);
  });

  it('keeps only the best maxSize entries, and says when a submission did not make it', async () => {
    const lb = board({ maxSize: 3 });
    for (let i = 1; i <= 5; i++) await lb.submit(`s${i}`, i);
    expect(await lb.count()).toBe(3);
    expect((await lb.top(10)).map((entry) => entry.member)).toEqual(['s5', 's4', 's3']);
    expect(await lb.submit('late', 1)).toEqual({ member: 'late', score: 1, rank: null });
    expect(await lb.count()).toBe(3);
  });

  it('rolls periodic boards over on their clock, in their time zone, and expires old periods after `retain`', async () => {
    // Far enough ahead that Redis, on its real clock, keeps every key this test writes.
    let now = Date.parse('2099-11-24T12:00:00Z'); // a Tuesday
    const name = fresh();
    const weekly = board({ period: 'week', timeZone: 'America/New_York', retain: 2, clock: () => now }, name);
    expect(weekly.periodId).toBe('w:2099-11-23');
    await weekly.submit('ada', 10);
    await weekly.submit('bob', 20);
    now = Date.parse('2099-11-30T04:59:00Z'); // still Sunday 23:59 in New York
    expect(weekly.periodId).toBe('w:2099-11-23');
    now = Date.parse('2099-11-30T05:00:00Z'); // Monday 00:00 in New York: a new week
    expect(weekly.periodId).toBe('w:2099-11-30');
    expect(await weekly.count()).toBe(0);
    await weekly.submit('ada', 5);
    expect(await weekly.top(5)).toEqual([{ member: 'ada', score: 5, rank: 1 }]);
    expect(await weekly.at(Date.parse('2099-11-25T00:00:00Z')).top(5)).toEqual([
      { member: 'bob', score: 20, rank: 1 },
      { member: 'ada', score: 10, rank: 2 },
    ]);
    // Readable for two more weeks after it ends: it and its sequence expire when the week of Dec 7 ends.
    const redis = apps[0].get(RedisConnections).get();
    const keys = apps[0].get(RedisKeys);
    const deadline = Date.parse('2099-12-14T05:00:00Z');
    expect(await redis.pexpiretime(keys.tagged(['lb', name, 'w:2099-11-23'], 'desc-first-come'))).toBe(deadline);
    expect(await redis.pexpiretime(keys.tagged(['lb', name, 'w:2099-11-23'], 'desc-first-come', 'seq'))).toBe(deadline);
    now = deadline;
    await expect(weekly.at(Date.parse('2099-11-25T00:00:00Z')).submit('late', 1)).rejects.toMatchObject({
      name: 'InvalidOptionError',
      option: 'date',
    });

    const daily = board({ period: 'day', timeZone: 'Asia/Tokyo', clock: () => Date.parse('2026-11-24T15:30:00Z') });
    expect(daily.periodId).toBe('d:2026-11-25');
    const monthly = board({ period: 'month', clock: () => Date.parse('2026-02-28T23:59:59Z') });
    expect(monthly.periodId).toBe('m:2026-02');
    const sundayWeeks = board({ period: 'week', weekStart: 0, clock: () => Date.parse('2026-11-28T12:00:00Z') });
    expect(sundayWeeks.periodId).toBe('w:2026-11-22');
  });

  it('begins a day at 01:00 where a DST change skips midnight (America/Santiago, 6 Sep 2099)', async () => {
    const name = fresh();
    const daily = board({ period: 'day', timeZone: 'America/Santiago', retain: 0, clock: () => Date.parse('2099-09-05T12:00:00Z') }, name);
    await daily.submit('ada', 1);
    const redis = apps[0].get(RedisConnections).get();
    expect(await redis.pexpiretime(apps[0].get(RedisKeys).tagged(['lb', name, 'd:2099-09-05'], 'desc-first-come'))).toBe(
      Date.parse('2099-09-06T04:00:00Z'),
    );
  });

  it('counts every concurrent submit from two instances, with one distinct rank each', async () => {
    const name = fresh();
    const [one, two] = apps.map((app) => app.get(LeaderboardService).board(name));
    await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? one : two).increment('shared-total', 1)));
    expect(await one.score('shared-total')).toBe(200);
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).submit(`tied-${i}`, 7)));
    const tied = (await two.top(50)).filter((entry) => entry.score === 7);
    expect(tied.map((entry) => entry.rank)).toEqual(Array.from({ length: 40 }, (_, i) => i + 2));
  });

  it('keeps the lowest maxSize entries of an ascending board, and shares ranks of ascending ties', async () => {
    const lb = board({ order: 'asc', maxSize: 2, ties: 'shared' });
    for (const [member, score] of [
      ['slow', 90],
      ['fast', 60],
      ['also-fast', 60],
    ] as const)
      await lb.submit(member, score);
    expect(await lb.top(5)).toEqual([
      { member: 'also-fast', score: 60, rank: 1 },
      { member: 'fast', score: 60, rank: 1 },
    ]);
  });

  it("keeps a member's place among ties when it submits the same score again, even with 'replace'", async () => {
    const lb = board();
    await lb.submit('first', 10);
    await lb.submit('second', 10);
    expect(await lb.submit('first', 10, { mode: 'replace' })).toEqual({ member: 'first', score: 10, rank: 1 });
    expect(await lb.increment('first', 0)).toEqual({ member: 'first', score: 10, rank: 1 });
  });

  it('stops a first-come board whose sequence is exhausted, writing nothing, until it is reset', async () => {
    const name = fresh();
    const lb = board({}, name);
    await lb.submit('a', 1);
    await apps[0]
      .get(RedisConnections)
      .get()
      .set(apps[0].get(RedisKeys).tagged(['lb', name, 'all'], 'desc-first-come', 'seq'), 2 ** 28 - 1);
    await expect(lb.submit('b', 2)).rejects.toBeInstanceOf(LeaderboardFullError);
    expect(await lb.top(5)).toEqual([{ member: 'a', score: 1, rank: 1 }]);
    await lb.reset();
    expect(await lb.submit('b', 2)).toEqual({ member: 'b', score: 2, rank: 1 });
  });

  it('is another board when opened with other order or ties, never a misread one', async () => {
    const name = fresh();
    await board({}, name).submit('a', 5);
    expect(await board({ ties: 'shared' }, name).score('a')).toBeNull();
    expect(await board({}, name).score('a')).toBe(5);
  });

  it('refuses an increment that would make a shared score infinite, and a clock that is not a number', async () => {
    const lb = board({ ties: 'shared' });
    await lb.submit('huge', 1e308);
    await expect(lb.increment('huge', 1e308)).rejects.toMatchObject({ name: 'InvalidOptionError', option: 'by' });
    expect(await lb.score('huge')).toBe(1e308);
    await expect(board({ period: 'day', clock: () => Number.NaN }).count()).rejects.toMatchObject({
      name: 'InvalidOptionError',
      option: expect.stringMatching(/\.clock$/),
    });
  });

  it('removes members and resets the board', async () => {
    const lb = board();
    await lb.submit('a', 1);
    await lb.submit('b', 2);
    expect(await lb.remove('a')).toBe(true);
    expect(await lb.remove('a')).toBe(false);
    expect(await lb.count()).toBe(1);
    await lb.reset();
    expect(await lb.count()).toBe(0);
    expect((await lb.submit('c', 3)).rank).toBe(1);
  });

  it('rejects bad scores, members and sizes with errors naming them, and writes nothing', async () => {
    const lb = board();
    await lb.submit('top', MAX_FIRST_COME_SCORE - 1);
    const cases: [() => Promise<unknown>, string][] = [
      [() => lb.submit('x', Number.NaN), 'score'],
      [() => lb.submit('x', Number.POSITIVE_INFINITY), 'score'],
      [() => lb.submit('x', 1.5), 'score'],
      [() => lb.submit('x', MAX_FIRST_COME_SCORE + 1), 'score'],
      [() => lb.increment('top', 2), 'by'],
      [() => lb.submit('', 1), 'member'],
      [() => lb.submit('m'.repeat(513), 1), 'member'],
      [() => lb.submit('x', 1, { mode: 'max' as never }), 'mode'],
      [() => lb.page(0, 10), 'page'],
      [() => lb.page(1, -1), 'size'],
      [() => lb.top(0), 'n'],
      [() => lb.around('top', -1), 'radius'],
      [() => lb.page(2 ** 30, 2 ** 30), 'page'],
    ];
    for (const [call, option] of cases) await expect(call()).rejects.toMatchObject({ name: 'InvalidOptionError', option });
    expect(await lb.top(10)).toEqual([{ member: 'top', score: MAX_FIRST_COME_SCORE - 1, rank: 1 }]);
  });

  it('refuses members that are not well-formed Unicode, which UTF-8 would turn into one member', async () => {
    const lb = board();
    await lb.submit('ZQY\uFFFD', 10);
    for (const member of ['ZQY\ud801', 'ZQY\ud802', '\udc00x']) {
      await expect(lb.submit(member, 99)).rejects.toMatchObject({
        name: 'MalformedTextError',
        option: 'member',
        message: expect.stringContaining('expected well-formed Unicode text'),
      });
      await expect(lb.rank(member)).rejects.toMatchObject({ option: 'member' });
    }
    // A well-formed pair of surrogates is an ordinary member.
    expect(await lb.submit('ZQY\ud801\udc00', 5)).toMatchObject({ member: 'ZQY\ud801\udc00', score: 5, rank: 2 });
    expect(await lb.top(10)).toEqual([
      { member: 'ZQY\uFFFD', score: 10, rank: 1 },
      { member: 'ZQY\ud801\udc00', score: 5, rank: 2 },
    ]);
    expect(() => service.board('b\ud800')).toThrow(expect.objectContaining({ option: 'name' }));
  });
});

describe('leaderboard options', () => {
  it.each([
    [{ order: 'up' }, 'order'],
    [{ ties: 'dense' }, 'ties'],
    [{ period: 'year' }, 'period'],
    [{ timeZone: 'Mars/Olympus_Mons' }, 'timeZone'],
    [{ weekStart: 7 }, 'weekStart'],
    [{ retain: -1 }, 'retain'],
    [{ maxSize: 0 }, 'maxSize'],
    [{ colour: 'red' }, 'colour'],
  ])('reject %o, naming the option', async (options, option) => {
    const app = await startContext({ connection: topologies[0].connection() });
    expect(() => app.get(LeaderboardService).board('b', options as LeaderboardOptions)).toThrow(InvalidOptionError);
    expect(() => app.get(LeaderboardService).board('b', options as LeaderboardOptions)).toThrow(`"leaderboard "b".${option}"`);
    await app.close();
  });

  @Injectable()
  class Arcade {
    constructor(@InjectLeaderboard('weekly') readonly weekly: Leaderboard) {}
  }

  it('inject boards registered in the module options, and fail at startup on bad ones', async () => {
    const app = await startContext(
      { connection: topologies[0].connection(), leaderboards: { weekly: { period: 'week' } } },
      { providers: [Arcade] },
    );
    const { weekly } = app.get(Arcade);
    expect(weekly).toBeInstanceOf(Leaderboard);
    expect(weekly.name).toBe('weekly');
    expect(weekly.periodId).toMatch(/^w:\d{4}-\d{2}-\d{2}$/);
    await app.close();
    await expect(
      startContext(
        { connection: topologies[0].connection(), leaderboards: { weekly: { period: 'fortnight' as never } } },
        { providers: [Arcade] },
      ),
    ).rejects.toThrow('"leaderboard "weekly".period"');
  });
});
