import { Redis } from 'ioredis';
import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Module } from '@nestjs/common';
import { REDIS_CLIENT, REDIS_CODEC, RedisPatternsModule, type RedisCodec } from '../lib/index.js';
import type { Scenario } from './harness.js';

export const KEY_COUNT = 1000;

/** A value of about 1 KB, as JSON. */
export function sampleValue(i: number): Record<string, unknown> {
  return {
    id: i,
    name: `user-${i}`,
    email: `user-${i}@example.com`,
    active: i % 2 === 0,
    tags: ['alpha', 'beta', 'gamma', 'delta'],
    scores: Array.from({ length: 40 }, (_, n) => (i * 31 + n) % 997),
    bio: 'x'.repeat(600),
  };
}

export const keyOf = (i: number) => `bench:value:${i % KEY_COUNT}`;

/** Writes the shared data set: KEY_COUNT keys of about 1 KB of JSON. */
export async function seed(redis: Redis): Promise<void> {
  const pipeline = redis.pipeline();
  for (let i = 0; i < KEY_COUNT; i++) pipeline.set(keyOf(i), JSON.stringify(sampleValue(i)));
  await pipeline.exec();
}

/**
 * The baselines every feature is compared with: raw ioredis GET + JSON.parse, with and without
 * auto-pipelining, and the same read through this module's client and codec.
 */
export async function coreScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const pipelined = new Redis(url, { enableAutoPipelining: true });
  const timed = new Redis(url, { commandTimeout: 1000 });

  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url } })] })
  class BenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  const client = app.get<Redis>(REDIS_CLIENT);
  const codec = app.get<RedisCodec>(REDIS_CODEC);

  const scenarios: Scenario[] = [
    {
      group: 'read 1 KB',
      name: 'raw ioredis GET + JSON.parse',
      baseline: true,
      run: async (i) => JSON.parse((await raw.get(keyOf(i))) as string),
    },
    { group: 'read 1 KB', name: 'raw ioredis, auto-pipelining', run: async (i) => JSON.parse((await pipelined.get(keyOf(i))) as string) },
    { group: 'read 1 KB', name: 'raw ioredis, commandTimeout 1s', run: async (i) => JSON.parse((await timed.get(keyOf(i))) as string) },
    {
      group: 'read 1 KB',
      name: 'module client + JsonCodec.decode',
      run: async (i) => codec.decode((await client.get(keyOf(i))) as string),
    },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), pipelined.quit(), timed.quit(), app.close()]);
    },
  };
}
