import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { BloomFilterService, RedisPatternsModule, type BloomFilter } from '../lib/index.js';
import { bitPositions } from '../lib/bloom/bloom.hash.js';
import { resolveBloomOptions } from '../lib/bloom/bloom.options-validator.js';
import type { Scenario } from './harness.js';

const CAPACITY = 1_000_000;
const ERROR_RATE = 0.01;
/** Items in a batched call. */
export const BATCH = 100;
const { bits: BITS, hashes: HASHES } = resolveBloomOptions({ capacity: CAPACITY, errorRate: ERROR_RATE }, 'bench');

const item = (i: number) => `item-${i % CAPACITY}`;
const batchOf = (i: number) => Array.from({ length: BATCH }, (_, k) => item(i * BATCH + k));

/**
 * Bloom filters sized for 1M items at 1%: `add` and `mightContain`, one item and BATCH items per
 * call. Baselines: the hand-written bitmap filter, a pipeline of SETBITs (GETBITs) at positions
 * computed the same way. With RedisBloom (a second server, when REDIS_BLOOM_MODULE names the
 * module): raw BF.ADD/BF.EXISTS/BF.MADD/BF.MEXISTS and the RedisBloom backend.
 */
export async function bloomScenarios(url: string, moduleUrl?: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const contexts: INestApplicationContext[] = [];
  const clients: Redis[] = [raw];
  const open = async (serverUrl: string, backend: 'bitmap' | 'redisbloom'): Promise<BloomFilter> => {
    @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url: serverUrl }, keyPrefix: 'bench-bf:' })] })
    class BloomBenchModule {}
    const app = await NestFactory.createApplicationContext(BloomBenchModule, { logger: false });
    contexts.push(app);
    const filter = app.get(BloomFilterService).filter(`bench-${backend}`, { capacity: CAPACITY, errorRate: ERROR_RATE, backend });
    // Half full, as a filter in use would be.
    for (let at = 0; at < CAPACITY / 2; at += 1000) await filter.addMany(Array.from({ length: 1000 }, (_, k) => item(at + k)));
    return filter;
  };
  const bitmap = await open(url, 'bitmap');
  const setBits = (items: readonly string[]) => {
    const pipeline = raw.pipeline();
    for (const one of items) for (const position of bitPositions(one, BITS, HASHES)) pipeline.setbit('bench-raw-bf', position, 1);
    return pipeline.exec();
  };
  const getBits = (items: readonly string[]) => {
    const pipeline = raw.pipeline();
    for (const one of items) for (const position of bitPositions(one, BITS, HASHES)) pipeline.getbit('bench-raw-bf', position);
    return pipeline.exec();
  };
  await setBits(Array.from({ length: 1000 }, (_, k) => item(k)));

  const scenarios: Scenario[] = [
    { group: 'bloom add', name: `raw ioredis pipeline of ${HASHES} SETBIT (bitmap)`, baseline: true, run: (i) => setBits([item(i)]) },
    { group: 'bloom add', name: 'BloomFilter.add, bitmap', run: (i) => bitmap.add(item(i)) },
    { group: 'bloom check', name: `raw ioredis pipeline of ${HASHES} GETBIT (bitmap)`, baseline: true, run: (i) => getBits([item(i)]) },
    { group: 'bloom check', name: 'BloomFilter.mightContain, bitmap', run: (i) => bitmap.mightContain(item(i)) },
    {
      group: `bloom add, ${BATCH} items`,
      name: `raw ioredis pipeline of ${BATCH * HASHES} SETBIT (bitmap)`,
      baseline: true,
      run: (i) => setBits(batchOf(i)),
    },
    { group: `bloom add, ${BATCH} items`, name: 'BloomFilter.addMany, bitmap', run: (i) => bitmap.addMany(batchOf(i)) },
    {
      group: `bloom check, ${BATCH} items`,
      name: `raw ioredis pipeline of ${BATCH * HASHES} GETBIT (bitmap)`,
      baseline: true,
      run: (i) => getBits(batchOf(i)),
    },
    { group: `bloom check, ${BATCH} items`, name: 'BloomFilter.mightContainMany, bitmap', run: (i) => bitmap.mightContainMany(batchOf(i)) },
  ];
  if (moduleUrl) {
    const moduleRaw = new Redis(moduleUrl);
    clients.push(moduleRaw);
    await moduleRaw.call('BF.RESERVE', 'bench-raw-rb', ERROR_RATE, CAPACITY);
    const redisBloom = await open(moduleUrl, 'redisbloom');
    scenarios.push(
      { group: 'bloom add', name: 'raw ioredis BF.ADD (RedisBloom)', run: (i) => moduleRaw.call('BF.ADD', 'bench-raw-rb', item(i)) },
      { group: 'bloom add', name: 'BloomFilter.add, redisbloom', run: (i) => redisBloom.add(item(i)) },
      {
        group: 'bloom check',
        name: 'raw ioredis BF.EXISTS (RedisBloom)',
        run: (i) => moduleRaw.call('BF.EXISTS', 'bench-raw-rb', item(i)),
      },
      { group: 'bloom check', name: 'BloomFilter.mightContain, redisbloom', run: (i) => redisBloom.mightContain(item(i)) },
      {
        group: `bloom add, ${BATCH} items`,
        name: 'raw ioredis BF.MADD (RedisBloom)',
        run: (i) => moduleRaw.call('BF.MADD', 'bench-raw-rb', ...batchOf(i)),
      },
      { group: `bloom add, ${BATCH} items`, name: 'BloomFilter.addMany, redisbloom', run: (i) => redisBloom.addMany(batchOf(i)) },
      {
        group: `bloom check, ${BATCH} items`,
        name: 'raw ioredis BF.MEXISTS (RedisBloom)',
        run: (i) => moduleRaw.call('BF.MEXISTS', 'bench-raw-rb', ...batchOf(i)),
      },
      {
        group: `bloom check, ${BATCH} items`,
        name: 'BloomFilter.mightContainMany, redisbloom',
        run: (i) => redisBloom.mightContainMany(batchOf(i)),
      },
    );
  }
  return {
    scenarios,
    async close() {
      await Promise.all([...clients.map((client) => client.quit()), ...contexts.map((app) => app.close())]);
    },
  };
}
