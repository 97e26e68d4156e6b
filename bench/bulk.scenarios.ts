import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { CacheService, RedisKeys, RedisPatternsModule } from '../lib/index.js';
import { median, table } from './harness.js';

/** A value of about 100 bytes, as a catalogue entry might be. */
const valueOf = (i: number) => ({ id: i, name: `item-${i}`, price: i % 997, tags: ['catalogue'] });

/**
 * The scale group: `invalidateTags` over one tag of N entries (written with `cache.warm`, default
 * options), against the floor, UNLINK of the same N value keys, 1,000 a command, pipelined, and the
 * worst reply time another client's PING loop saw while the invalidation ran. Sizes from 10^3 up to
 * BENCH_SCALE_MAX (default 10^6); three rounds each below 10^6 (the median is printed), one at 10^6.
 */
export async function bulkReport(url: string): Promise<string> {
  const max = Number(process.env.BENCH_SCALE_MAX ?? 1_000_000);
  const admin = new Redis(url);
  const prober = new Redis(url);
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-bulk:', cache: {} })] })
  class BulkModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(BulkModule, { logger: false });
  const cache = app.get(CacheService);
  const prefix = app.get(RedisKeys).prefix;
  const rows: string[][] = [];
  try {
    for (let size = 1_000; size <= max; size *= 10) {
      const rounds = size >= 1_000_000 ? 1 : 3;
      const ours: number[] = [];
      const floors: number[] = [];
      let worstPing = 0;
      for (let round = 0; round < rounds; round++) {
        process.stderr.write(`\r[bulk] ${size.toLocaleString('en-US')} entries, round ${round + 1}/${rounds}   `);
        await cache.warm(
          Array.from({ length: size }, (_, i) => ({
            key: `item:${i}`,
            value: valueOf(i),
            options: { tags: ['catalogue'], ttl: '1h' as const },
          })),
        );
        const probing = probe(prober);
        const started = performance.now();
        const deleted = await cache.invalidateTags(['catalogue']);
        ours.push(performance.now() - started);
        worstPing = Math.max(worstPing, await probing.stop());
        if (deleted !== size) throw new Error(`invalidateTags deleted ${deleted} of ${size}`);
        floors.push(
          await floor(
            admin,
            Array.from({ length: size }, (_, i) => `${prefix}{c:item:${i}}`),
          ),
        );
      }
      const [oursMs, floorMs] = [median(ours), median(floors)];
      rows.push([
        size.toLocaleString('en-US'),
        oursMs.toFixed(1),
        ((oursMs * 1000) / size).toFixed(2),
        floorMs.toFixed(1),
        `${(oursMs / floorMs).toFixed(2)}x`,
        worstPing.toFixed(1),
      ]);
    }
    process.stderr.write('\r\x1b[K');
    return table(
      ['entries under the tag', 'invalidateTags ms', 'µs per entry', 'floor: UNLINK ms', 'ratio', 'worst PING ms meanwhile'],
      rows,
      1,
    );
  } finally {
    await app.close();
    admin.disconnect();
    prober.disconnect();
  }
}

/** Writes the keys (pipelined), then times their UNLINK, 1,000 a command, in one pipeline. */
async function floor(redis: Redis, keys: readonly string[]): Promise<number> {
  for (let at = 0; at < keys.length; at += 10_000) {
    const pipeline = redis.pipeline();
    for (const key of keys.slice(at, at + 10_000)) pipeline.set(key, 'x'.repeat(100), 'PX', 3_600_000);
    await pipeline.exec();
  }
  const started = performance.now();
  const pipeline = redis.pipeline();
  for (let at = 0; at < keys.length; at += 1_000) pipeline.unlink(...keys.slice(at, at + 1_000));
  await pipeline.exec();
  return performance.now() - started;
}

/** A PING after PING on its own connection, until stopped: the longest reply time (ms). */
function probe(redis: Redis): { stop(): Promise<number> } {
  let running = true;
  let worst = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await redis.ping();
      worst = Math.max(worst, performance.now() - started);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return worst;
    },
  };
}
