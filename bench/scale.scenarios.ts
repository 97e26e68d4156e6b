import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { BloomFilterService, CacheService, LeaderboardService, RedisPatternsModule, SessionService, StreamService } from '../lib/index.js';
import { median, table } from './harness.js';

/** How many calls each measurement times, one after another (c=1); the median is printed. */
const CALLS = 300;

/** One row: an operation at growing sizes, with the complexity expected of it. */
interface Curve {
  operation: string;
  /** What N counts. */
  size: string;
  expected: string;
  /** Makes the data for size n, and answers the call to time (the median of CALLS calls is printed)... */
  prepare?(n: number): Promise<(i: number) => Promise<unknown>>;
  /** ...or measures size n itself, answering µs per unit of work. */
  measure?(n: number): Promise<number>;
  sizes: readonly number[];
}

/**
 * How cost grows with the data (`BENCH_FILTER=scale`): each operation timed at c=1 (median of
 * CALLS calls, in µs) at sizes up to BENCH_SCALE_MAX (default 10^6), with the complexity expected
 * of it and the growth measured: the time at the largest size over the time at the smallest. For
 * tag invalidation by size, see the bulk group.
 */
export async function scaleReport(url: string): Promise<string> {
  const max = Number(process.env.BENCH_SCALE_MAX ?? 1_000_000);
  const admin = new Redis(url);
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-scale:', cache: {} })] })
  class ScaleModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(ScaleModule, { logger: false });
  const decades = (from: number, to: number) => [from, from * 10, from * 100, from * 1000].filter((n) => n <= Math.min(to, max));
  const curves: Curve[] = [
    ...leaderboardCurves(app.get(LeaderboardService), decades(1_000, 1_000_000)),
    {
      operation: 'CacheService.deleteByPattern (2 matching keys)',
      size: 'keys in Redis',
      expected: 'O(N): SCAN walks every key',
      sizes: decades(1_000, 1_000_000),
      prepare: async (n) => {
        await admin.flushall();
        await admin.call('DEBUG', 'POPULATE', String(n), 'other');
        const cache = app.get(CacheService);
        return async (i) => {
          await cache.set(`scan:${i}:a`, i);
          await cache.set(`scan:${i}:b`, i);
          return cache.deleteByPattern(`scan:${i}:*`);
        };
      },
    },
    {
      operation: 'SessionService.listForUser',
      size: 'sessions of the user',
      expected: 'O(N): every session is read',
      sizes: decades(10, 10_000).slice(0, 3),
      prepare: async (n) => {
        const sessions = app.get(SessionService);
        const user = `user-${n}`;
        for (let made = 0; made < n; made += 100)
          await Promise.all(Array.from({ length: Math.min(100, n - made) }, () => sessions.create(user, { n }, { idleTtl: '1h' })));
        return () => sessions.listForUser(user);
      },
    },
    ...bloomCurves(app.get(BloomFilterService), decades(1_000, 1_000_000)),
    streamDrainCurve(app.get(StreamService), decades(1_000, 100_000)),
  ];
  const rows: string[][] = [];
  try {
    for (const curve of curves) {
      const times: number[] = [];
      for (const n of curve.sizes) {
        process.stderr.write(`\r[scale] ${curve.operation}, N = ${n.toLocaleString('en-US')}   `);
        times.push(curve.measure ? await curve.measure(n) : await timeCalls(await curve.prepare!(n)));
      }
      const growth = times[times.length - 1] / times[0];
      const span = curve.sizes[curve.sizes.length - 1] / curve.sizes[0];
      rows.push([
        curve.operation,
        curve.size,
        curve.expected,
        ...curve.sizes.map((n, index) => `${n.toLocaleString('en-US')}: ${times[index].toFixed(0)}`),
        `x${growth.toFixed(1)} for N x${span.toLocaleString('en-US')}`,
      ]);
    }
  } finally {
    process.stderr.write('\r\x1b[K');
    await admin.flushall();
    await Promise.all([admin.quit(), app.close()]);
  }
  const width = Math.max(...rows.map((row) => row.length));
  const padded = rows.map((row) => [...row.slice(0, 3), ...Array.from({ length: width - row.length }, () => ''), ...row.slice(3)]);
  const sizeColumns = Array.from({ length: width - 4 }, (_, index) => `N: µs/call (${index + 1})`);
  return table(['operation', 'N counts', 'expected', ...sizeColumns, 'measured growth'], padded, 3);
}

function leaderboardCurves(leaderboards: LeaderboardService, sizes: readonly number[]): Curve[] {
  const filled = new Map<number, ReturnType<LeaderboardService['board']>>();
  const boardOf = async (n: number) => {
    let board = filled.get(n);
    if (!board) {
      board = leaderboards.board(`scale-${n}`);
      for (let from = 0; from < n; from += 1_000)
        await Promise.all(Array.from({ length: Math.min(1_000, n - from) }, (_, k) => board!.submit(`p${from + k}`, (from + k) % 100_000)));
      filled.set(n, board);
    }
    return board;
  };
  const member = (n: number, i: number) => `p${(i * 7_919) % n}`;
  return [
    {
      operation: 'Leaderboard.rank',
      size: 'members',
      expected: 'O(log N)',
      sizes,
      prepare: async (n) => {
        const board = await boardOf(n);
        return (i) => board.rank(member(n, i));
      },
    },
    {
      operation: 'Leaderboard.top(10)',
      size: 'members',
      expected: 'O(log N + 10)',
      sizes,
      prepare: async (n) => {
        const board = await boardOf(n);
        return () => board.top(10);
      },
    },
    {
      operation: 'Leaderboard.around(member, 5)',
      size: 'members',
      expected: 'O(log N + 11)',
      sizes,
      prepare: async (n) => {
        const board = await boardOf(n);
        return (i) => board.around(member(n, i), 5);
      },
    },
  ];
}

function bloomCurves(filters: BloomFilterService, sizes: readonly number[]): Curve[] {
  const filterOf = (n: number) => filters.filter(`scale-${n}`, { capacity: n, errorRate: 0.01 });
  return [
    {
      operation: 'BloomFilter.add (bitmap)',
      size: 'capacity',
      expected: 'O(k), k hashes: flat',
      sizes,
      prepare: async (n) => {
        const filter = filterOf(n);
        return (i) => filter.add(`item-${n}-${i}`);
      },
    },
    {
      operation: 'BloomFilter.mightContain (bitmap)',
      size: 'capacity',
      expected: 'O(k): flat',
      sizes,
      prepare: async (n) => {
        const filter = filterOf(n);
        return (i) => filter.mightContain(`item-${n}-${i}`);
      },
    },
  ];
}

/** The median time of CALLS calls one after another, in µs. */
/**
 * A consumer that starts behind a backlog of N entries: µs per entry from its start until its
 * handler has had all of them (read 10 a time, the default batch, each acknowledged after it).
 */
function streamDrainCurve(streams: StreamService, sizes: readonly number[]): Curve {
  return {
    operation: 'StreamService consumer draining a backlog (µs per entry)',
    size: 'entries behind',
    expected: 'O(1) per entry',
    sizes,
    measure: async (n) => {
      const stream = `scale-backlog-${n}`;
      for (let added = 0; added < n; added += 1_000)
        await Promise.all(Array.from({ length: Math.min(1_000, n - added) }, (_, k) => streams.add(stream, { k: added + k })));
      let handled = 0;
      let drained!: () => void;
      const done = new Promise<void>((resolve) => (drained = resolve));
      const started = performance.now();
      const consumer = await streams.consume(stream, 'drain', () => {
        if (++handled === n) drained();
      });
      await done;
      const perEntry = ((performance.now() - started) * 1000) / n;
      await consumer.stop();
      return perEntry;
    },
  };
}

async function timeCalls(call: (i: number) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    await call(i);
    times.push((performance.now() - started) * 1000);
  }
  return median(times);
}
