import { randomBytes } from 'node:crypto';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { ActivityService, RedisKeys, RedisPatternsModule } from '../lib/index.js';
import { periodAfter, periodAt } from '../lib/core/calendar.js';
import type { Scenario } from './harness.js';

const MARK = 'activity mark';
const COUNT = 'activity count';
const COUNT_ALL = 'activity countAll, 7 days';
/** Users of the bench: each day's bitmap holds USER_COUNT bits (125 KB), about half of them set. */
export const USER_COUNT = 1_000_000;
/** Distinct string ids marked (each given an offset in the first turns). */
const STRING_IDS = 100_000;
const PREFIX = 'bench-act:';

/**
 * Activity bitmaps of USER_COUNT users over 7 days (random bytes, the same in the raw keys and the
 * tracker's):
 * - 'activity mark': raw `SETBIT` + `PEXPIREAT` pipelined (the baseline: a mark by hand), raw
 *   `SETBIT` alone (no expiry), `ActivityTracker.mark` with integer ids (SETBIT, and PEXPIREAT
 *   with a new bit, in one script) and with string ids (the id's offset looked up, or given, in
 *   the same script);
 * - 'activity count': raw `BITCOUNT` of a day (the baseline) and `ActivityTracker.count`;
 * - 'activity countAll, 7 days': raw `BITOP AND` + `BITCOUNT` + `DEL` pipelined (the baseline) and
 *   `ActivityTracker.countAll` (the same three in one script).
 */
export async function activityScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: PREFIX })] })
  class ActivityBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(ActivityBenchModule, { logger: false });
  const now = Date.now();
  const activity = app.get(ActivityService);
  const integers = activity.tracker('integers', { ids: 'integer', clock: () => now });
  const strings = activity.tracker('strings', { clock: () => now });
  const keys = new RedisKeys(PREFIX);
  const calendar = { unit: 'day', timeZone: 'UTC', weekStart: 1 } as const;
  const today = periodAt(now, calendar);
  const days = Array.from({ length: 7 }, (_, d) => periodAfter(today, -d, calendar));
  const week = days.map((day) => day.start);
  for (const [d, day] of days.entries()) {
    const bits = randomBytes(USER_COUNT / 8);
    await raw.set(`bench-raw-act:${d}`, bits);
    await raw.set(keys.tagged(['act', 'integers'], day.id), bits, 'PX', 86_400_000);
  }

  const scenarios: Scenario[] = [
    {
      group: MARK,
      name: 'raw ioredis SETBIT + PEXPIREAT, pipelined',
      baseline: true,
      run: (i) =>
        raw
          .pipeline()
          .setbit('bench-raw-act:0', i % USER_COUNT, 1)
          .pexpireat('bench-raw-act:0', now + 8 * 86_400_000)
          .exec(),
    },
    { group: MARK, name: 'raw ioredis SETBIT alone (no expiry)', run: (i) => raw.setbit('bench-raw-act:0', i % USER_COUNT, 1) },
    { group: MARK, name: 'ActivityTracker.mark, integer ids', run: (i) => integers.mark(i % USER_COUNT) },
    { group: MARK, name: `ActivityTracker.mark, string ids (${STRING_IDS} ids)`, run: (i) => strings.mark(`user-${i % STRING_IDS}`) },
    { group: COUNT, name: 'raw ioredis BITCOUNT', baseline: true, run: () => raw.bitcount('bench-raw-act:1') },
    { group: COUNT, name: 'ActivityTracker.count', run: () => integers.count(week[1]) },
    {
      group: COUNT_ALL,
      name: 'raw ioredis BITOP AND + BITCOUNT + DEL, pipelined',
      baseline: true,
      run: (i) =>
        raw
          .pipeline()
          .bitop('AND', `bench-raw-act:tmp:${i % 64}`, ...days.map((_, d) => `bench-raw-act:${d}`))
          .bitcount(`bench-raw-act:tmp:${i % 64}`)
          .del(`bench-raw-act:tmp:${i % 64}`)
          .exec(),
    },
    { group: COUNT_ALL, name: 'ActivityTracker.countAll (one script)', run: () => integers.countAll(week) },
  ];
  return {
    scenarios,
    async close() {
      await raw.quit();
      await app.close();
    },
  };
}
