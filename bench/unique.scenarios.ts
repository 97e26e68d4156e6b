import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { RedisPatternsModule, UniqueCounterService } from '../lib/index.js';
import type { Scenario } from './harness.js';

const ADD = 'unique count add';
const COUNT = 'unique count range';
const DAY = 86_400_000;
/** Distinct items added to each of the 7 days before today before anything is measured. */
const ITEMS_PER_DAY = 20_000;

const item = (i: number) => `visitor-${i % 100_000}`;

/**
 * Unique counts on HyperLogLog, against the raw commands doing the same work:
 * - 'unique count add': raw `PFADD` + `PEXPIREAT` pipelined (the baseline) against
 *   `UniqueCounter.add` (one script: PFADD and the period's expiry);
 * - 'unique count range': raw `PFCOUNT` over the 7 keys of the week before today (the baseline)
 *   against `UniqueCounter.count({ from, to })` over the same 7 days, which hold the same items
 *   (checked). The adds go to today's keys, outside the range: a range over them would count HLLs
 *   of different contents (ours takes more adds per second), which `PFCOUNT` merged at 280 µs of
 *   the server's time per call against 139 µs for the raw keys after one run of the adds.
 */
export async function uniqueScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-uc:' })] })
  class UniqueBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(UniqueBenchModule, { logger: false });
  const now = Date.now();
  const counter = app.get(UniqueCounterService).counter('visitors', { period: 'day', retain: 7 });
  // Key `day` holds the day `day` days ago: 0 is today's, which the adds write.
  const rawKeys = Array.from({ length: 8 }, (_, day) => `{bench-raw-uc}:${day}`);
  const expiresAt = now + 8 * DAY;
  for (let day = 1; day <= 7; day++) {
    const items = Array.from({ length: ITEMS_PER_DAY }, (_, i) => item(day * 7_000 + i));
    await counter.add(items, now - day * DAY);
    for (let from = 0; from < items.length; from += 1_000) await raw.pfadd(rawKeys[day], ...items.slice(from, from + 1_000));
  }
  const week = { from: now - 7 * DAY, to: now - DAY };
  const weekKeys = rawKeys.slice(1);
  const [ours, theirs] = [await counter.count(week), await raw.pfcount(...weekKeys)];
  if (ours !== theirs) throw new Error(`UniqueCounter.count counted ${ours} over the week, raw PFCOUNT ${theirs}`);

  const scenarios: Scenario[] = [
    {
      group: ADD,
      name: 'raw ioredis PFADD + PEXPIREAT, pipelined',
      baseline: true,
      run: (i) => raw.pipeline().pfadd(rawKeys[0], item(i)).pexpireat(rawKeys[0], expiresAt).exec(),
    },
    { group: ADD, name: 'UniqueCounter.add', run: (i) => counter.add(item(i)) },
    { group: COUNT, name: 'raw ioredis PFCOUNT over 7 keys', baseline: true, run: () => raw.pfcount(...weekKeys) },
    { group: COUNT, name: 'UniqueCounter.count({ from, to }), 7 days', run: () => counter.count(week) },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), app.close()]);
    },
  };
}
