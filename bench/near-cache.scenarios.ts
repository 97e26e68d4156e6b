import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { Cacheable, CacheService, RedisPatternsModule, type L1Options } from '../lib/index.js';
import { KEY_COUNT, keyOf, sampleValue } from './core.scenarios.js';
import { median, percentile, table, type Scenario } from './harness.js';

/** The groups of this file, for BENCH_FILTER: its apps start only when one of them is asked for. */
export const NEAR_CACHE_GROUPS = ['near cache hit, L1', 'near cache write', 'invalidation delay'] as const;

type Mode = NonNullable<L1Options['invalidation']>;

const key = (i: number) => `nc:${i % KEY_COUNT}`;

@Injectable()
class Catalog {
  @Cacheable({ key: (i: number) => key(i), l1: true })
  async find(i: number) {
    return sampleValue(i % KEY_COUNT);
  }
}

/** An app whose cache L1 hears of changes through `mode` (`'none'`: the bus without messages, L1 entries live out their TTL). */
async function nearCacheApp(url: string, keyPrefix: string, mode: Mode | 'none', shared = false): Promise<INestApplicationContext> {
  const l1 = { maxEntries: 10_000, ttl: '1h', shared, invalidation: mode === 'none' ? 'bus' : mode } as const;
  @Module({
    imports: [
      RedisPatternsModule.forRoot({
        connection: { url },
        keyPrefix,
        cache: mode === 'none' ? { ttl: '1h', l1, invalidation: false } : { ttl: '1h', l1 },
      }),
    ],
    providers: [Catalog],
  })
  class NearCacheModule {}
  return NestFactory.createApplicationContext(NearCacheModule, { logger: false });
}

/** Fills Redis and L1 with every key (L1 fills once the instance hears invalidations). */
async function warm(app: INestApplicationContext): Promise<void> {
  const catalog = app.get(Catalog);
  for (let round = 0; round < 40 && app.get(CacheService).stats().l1.hits < KEY_COUNT; round++) {
    for (let i = 0; i < KEY_COUNT; i++) await catalog.find(i);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * L1 hits with the bus against L1 hits with Redis's tracking (copies and shared), and what a write
 * costs in each mode with three instances listening (against the same write without invalidation,
 * and a raw SET with and without three BCAST listeners on its prefix), beside raw ioredis in the
 * same run. All instances share this process, so the listeners' work is counted too.
 */
export async function nearCacheScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const apps: INestApplicationContext[] = [];
  const start = async (keyPrefix: string, mode: Mode | 'none', shared = false) => {
    const app = await nearCacheApp(url, keyPrefix, mode, shared);
    apps.push(app);
    return app;
  };
  const [bus, tracking, busShared, trackingShared, uninformed] = await Promise.all([
    start('bench-nc-bus:', 'bus'),
    start('bench-nc-tracking:', 'tracking'),
    start('bench-nc-bus-shared:', 'bus', true),
    start('bench-nc-tracking-shared:', 'tracking', true),
    start('bench-nc-none:', 'none'),
  ]);
  // Two more instances listening in each mode: a write reaches three.
  await Promise.all([start('bench-nc-bus:', 'bus'), start('bench-nc-bus:', 'bus'), start('bench-nc-tracking:', 'tracking')]);
  await start('bench-nc-tracking:', 'tracking');
  for (const app of [bus, tracking, busShared, trackingShared]) await warm(app);
  // Three BCAST listeners on a prefix of raw keys: what tracking costs the server on a plain SET.
  const listeners = await Promise.all([1, 2, 3].map(() => rawTrackingListener(url, 'bench-nc-raw-tracked:')));

  const value = sampleValue(1);
  const payload = JSON.stringify(value);
  let writes = 0;
  const hitBaseline = (group: string): Scenario => ({
    group,
    name: 'raw ioredis GET + JSON.parse',
    baseline: true,
    run: async (i) => JSON.parse((await raw.get(keyOf(i))) as string),
  });
  const scenarios: Scenario[] = [
    hitBaseline('near cache hit, L1'),
    { group: 'near cache hit, L1', name: '@Cacheable l1, bus (copies)', run: (i) => bus.get(Catalog).find(i) },
    { group: 'near cache hit, L1', name: '@Cacheable l1, tracking (copies)', run: (i) => tracking.get(Catalog).find(i) },
    { group: 'near cache hit, L1', name: '@Cacheable l1, bus (shared)', run: (i) => busShared.get(Catalog).find(i) },
    { group: 'near cache hit, L1', name: '@Cacheable l1, tracking (shared)', run: (i) => trackingShared.get(Catalog).find(i) },
    {
      group: 'near cache write',
      name: 'raw ioredis SET PX (untracked key)',
      baseline: true,
      run: (i) => raw.set(`bench-nc-raw:${i % KEY_COUNT}`, payload, 'PX', 60_000),
    },
    {
      group: 'near cache write',
      name: 'raw ioredis SET PX (3 BCAST listeners on its prefix)',
      run: (i) => raw.set(`bench-nc-raw-tracked:${i % KEY_COUNT}`, payload, 'PX', 60_000),
    },
    {
      group: 'near cache write',
      name: 'CacheService.set, no invalidation (1 instance)',
      run: () => uninformed.get(CacheService).set(`w:${writes++ % KEY_COUNT}`, value),
    },
    {
      group: 'near cache write',
      name: 'CacheService.set, bus (3 instances)',
      run: () => bus.get(CacheService).set(`w:${writes++ % KEY_COUNT}`, value),
    },
    {
      group: 'near cache write',
      name: 'CacheService.set, tracking (3 instances)',
      run: () => tracking.get(CacheService).set(`w:${writes++ % KEY_COUNT}`, value),
    },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), ...listeners.map((listener) => listener.quit()), ...apps.map((app) => app.close())]);
    },
  };
}

/** A RESP2 connection tracking `prefix` in BCAST mode with REDIRECT to itself, subscribed to the invalidations. */
async function rawTrackingListener(url: string, prefix: string): Promise<Redis> {
  const listener = new Redis(url, { protocol: 2 });
  const id = (await listener.client('ID')) as number;
  await listener.client('TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', prefix);
  await listener.subscribe('__redis__:invalidate');
  return listener;
}

/**
 * How long a write takes to reach another instance's L1: `samples` writes of a key that the
 * reader holds in L1, each timed from when the write was sent, and from when the writer had its
 * answer, to when the reader's L1 stops answering the old value (it polls between I/O events).
 * With tracking the writer is a plain ioredis client (a write from outside the library); with the
 * bus, another instance's `CacheService.set`. Reader and writer share this process.
 */
export async function invalidationDelayReport(url: string, samples = 500): Promise<string> {
  const rows: string[][] = [];
  for (const mode of ['tracking', 'bus'] as const) {
    const keyPrefix = `bench-delay-${mode}:`;
    const [reader, writerApp] = await Promise.all([nearCacheApp(url, keyPrefix, mode), nearCacheApp(url, keyPrefix, mode)]);
    const plain = new Redis(url);
    const cache = reader.get(CacheService);
    const write =
      mode === 'tracking'
        ? (name: string, i: number) => plain.set(`${keyPrefix}{c:${name}}`, `${Date.now() + 3_600_000}|${i}`)
        : (name: string, i: number) => writerApp.get(CacheService).set(name, i);
    const fromSend: number[] = [];
    const fromAck: number[] = [];
    for (let i = 0; i < samples; i++) {
      const name = `delay:${i % 20}`;
      await write(name, -i);
      await untilInL1(cache, name, -i);
      const sent = performance.now();
      await write(name, i);
      const acknowledged = performance.now();
      for (;;) {
        const { value, fromL1 } = await peek(cache, name);
        if (!fromL1 || value !== -i) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      const dropped = performance.now();
      fromSend.push(dropped - sent);
      fromAck.push(Math.max(0, dropped - acknowledged));
    }
    const ms = (values: number[], at: number | 'max') => {
      const sorted = [...values].sort((a, b) => a - b);
      return (at === 'max' ? sorted[sorted.length - 1] : at === 0.5 ? median(sorted) : percentile(sorted, at)).toFixed(2);
    };
    const writer = mode === 'tracking' ? 'plain ioredis SET' : 'CacheService.set (another instance)';
    rows.push([
      mode,
      writer,
      String(samples),
      ms(fromSend, 0.5),
      ms(fromSend, 0.99),
      ms(fromSend, 'max'),
      ms(fromAck, 0.5),
      ms(fromAck, 'max'),
    ]);
    plain.disconnect();
    await Promise.all([reader.close(), writerApp.close()]);
  }
  return table(['L1 invalidation', 'writer', 'writes', 'p50 ms', 'p99 ms', 'max ms', 'p50 after ack', 'max after ack'], rows, 2);
}

/** Reads `name` with L1: the value, and whether L1 answered (a miss reads Redis and may fill L1 again). */
async function peek(cache: CacheService, name: string): Promise<{ value: unknown; fromL1: boolean }> {
  const hits = cache.stats().l1.hits;
  const value = await cache.get(name, { l1: true });
  return { value, fromL1: cache.stats().l1.hits > hits };
}

/** Waits until L1 answers `name` with `expected`. */
async function untilInL1(cache: CacheService, name: string, expected: unknown): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const { value, fromL1 } = await peek(cache, name);
    if (fromL1 && value === expected) return;
    if (attempt > 5_000) throw new Error(`L1 never kept ${name}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
