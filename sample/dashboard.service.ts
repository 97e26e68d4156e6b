import { Inject, Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { exhaustMap, interval, map, startWith, type Observable } from 'rxjs';
import {
  CacheService,
  InjectLeaderboard,
  InjectQueue,
  InjectRedis,
  RedisInsightsService,
  RedisKeys,
  type Leaderboard,
  type LeaderboardEntry,
  type Queue,
  type QueueCounts,
  type RedisServerSnapshot,
} from '../lib/index.js';
import type { Email } from './emails.worker.js';
import { METRICS_REGISTRY } from './metrics.controller.js';
import { cacheHitRatio } from './products.controller.js';

/** What the dashboard shows at one moment; counters are totals since the app started. */
export interface DashboardSnapshot {
  /** When it was taken, in ms since the epoch. */
  at: number;
  cache: { hits: number; lookups: number; hitRatio: number };
  /** Rate-limit decisions of every policy, by outcome. */
  rateLimit: { allowed: number; limited: number; unchecked: number; unavailable: number };
  /** Lock acquisitions by outcome, and the wait from asking to the outcome (null before any). */
  locks: { acquired: number; busy: number; meanWaitMs: number | null; p95WaitMs: number | null };
  /** The all-time top 10 of the arcade board. */
  leaderboard: LeaderboardEntry[];
  /** The emails queue's counts, and the jobs completed (on any instance). */
  queue: QueueCounts & { completed: number };
  /**
   * The `fulfilment` group of the orders stream: entries delivered but not yet acknowledged
   * (pending), entries not yet delivered (lag: null when Redis cannot tell), and outcomes.
   */
  stream: { pending: number; lag: number | null; handled: number; deadLettered: number };
  redis: RedisUsage;
}

/** A snapshot, and how fast its counters went up since the previous one. */
export interface DashboardUpdate extends DashboardSnapshot {
  perSecond: { allowed: number; limited: number; acquired: number; completed: number; handled: number };
}

/** What Redis itself says about its memory and load. */
export interface RedisUsage {
  usedMemoryBytes: number;
  opsPerSecond: number;
}

/** Memory and load of the nodes that answered, from the library's server insights (INFO, parsed). */
export function redisUsage(snapshot: RedisServerSnapshot): RedisUsage {
  const usage = { usedMemoryBytes: 0, opsPerSecond: 0 };
  for (const node of snapshot.nodes) {
    if (!node.available) continue;
    usage.usedMemoryBytes += node.memory.usedBytes;
    usage.opsPerSecond += node.opsPerSecond;
  }
  return usage;
}

/** The library's metric names, with the default prefix (the sample keeps it). */
const PREFIX = 'redis_patterns_';

type Series = { labels: Partial<Record<string, string | number>>; value: number; metricName?: string }[];

/** Sums the series whose labels match `where`, by the value of `label`. */
function sumBy(series: Series, label: string, where: Record<string, string> = {}): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const { labels, value } of series) {
    if (Object.entries(where).some(([name, expected]) => labels[name] !== expected)) continue;
    const key = String(labels[label]);
    sums[key] = (sums[key] ?? 0) + value;
  }
  return sums;
}

/** Mean and 95th percentile (the upper bound of its bucket) of a histogram's series, in ms. */
export function waitSummary(series: Series): { meanWaitMs: number | null; p95WaitMs: number | null } {
  const total = (suffix: string) => series.filter((value) => value.metricName?.endsWith(suffix)).reduce((sum, { value }) => sum + value, 0);
  const count = total('_count');
  if (count === 0) return { meanWaitMs: null, p95WaitMs: null };
  const buckets = sumBy(
    series.filter((value) => value.metricName?.endsWith('_bucket')),
    'le',
  );
  const bounds = Object.keys(buckets)
    .map(Number)
    .sort((a, b) => a - b);
  const p95 = bounds.find((bound) => buckets[String(bound)] >= 0.95 * count) ?? Infinity;
  return { meanWaitMs: (total('_sum') / count) * 1000, p95WaitMs: Number.isFinite(p95) ? p95 * 1000 : null };
}

/** How fast the counters went up from `before` to `after`, per second (0 for a first snapshot). */
function ratesBetween(before: DashboardSnapshot | undefined, after: DashboardSnapshot): DashboardUpdate['perSecond'] {
  const seconds = before ? (after.at - before.at) / 1000 : 0;
  const rate = (from: number | undefined, to: number) => (from === undefined || seconds <= 0 ? 0 : Math.max(0, to - from) / seconds);
  return {
    allowed: rate(before?.rateLimit.allowed, after.rateLimit.allowed),
    limited: rate(before?.rateLimit.limited, after.rateLimit.limited),
    acquired: rate(before?.locks.acquired, after.locks.acquired),
    completed: rate(before?.queue.completed, after.queue.completed),
    handled: rate(before?.stream.handled, after.stream.handled),
  };
}

/**
 * Gathers what `GET /dashboard` shows: the cache's stats, the registry's rate-limit, lock, queue
 * and stream counters, the arcade board, the emails queue, the orders stream's group (XINFO
 * GROUPS) and the server's memory and load (RedisInsightsService).
 */
@Injectable()
export class DashboardService {
  private readonly ordersStream: string;

  constructor(
    private readonly cache: CacheService,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
    @InjectLeaderboard('arcade') private readonly arcade: Leaderboard,
    @InjectQueue('emails') private readonly emails: Queue<Email>,
    @InjectRedis() private readonly redis: Redis,
    private readonly insights: RedisInsightsService,
    keys: RedisKeys,
  ) {
    // The key StreamService gives the `orders` stream.
    this.ordersStream = keys.tagged(['stream', 'orders']);
  }

  async snapshot(): Promise<DashboardSnapshot> {
    const [decisions, acquisitions, waits, jobs, entries, leaderboard, queue, stream, info] = await Promise.all([
      this.series('ratelimit_decisions_total'),
      this.series('lock_acquisitions_total'),
      this.series('lock_wait_seconds'),
      this.series('queue_jobs_total'),
      this.series('stream_entries_total'),
      this.arcade.top(10),
      this.emails.counts(),
      this.fulfilmentGroup(),
      this.insights.snapshot(),
    ]);
    const outcomes = sumBy(decisions, 'outcome');
    const { acquired = 0, ...busy } = sumBy(acquisitions, 'outcome');
    const streamOutcomes = sumBy(entries, 'outcome', { stream: 'orders' });
    return {
      at: Date.now(),
      cache: cacheHitRatio(this.cache.stats()),
      rateLimit: {
        allowed: outcomes.allowed ?? 0,
        limited: outcomes.limited ?? 0,
        unchecked: outcomes.unchecked ?? 0,
        unavailable: outcomes.unavailable ?? 0,
      },
      locks: { acquired, busy: Object.values(busy).reduce((sum, value) => sum + value, 0), ...waitSummary(waits) },
      leaderboard,
      queue: { ...queue, completed: sumBy(jobs, 'outcome', { queue: 'emails' }).completed ?? 0 },
      stream: { ...stream, handled: streamOutcomes.handled ?? 0, deadLettered: streamOutcomes['dead-lettered'] ?? 0 },
      redis: redisUsage(info),
    };
  }

  /**
   * A snapshot every `periodMs`, the first at once, with the rates since the previous one. A
   * snapshot that fails (Redis away) is sent as `{ error }`, and the updates go on.
   */
  updates(periodMs = 1000): Observable<DashboardUpdate | { error: string }> {
    let previous: DashboardSnapshot | undefined;
    return interval(periodMs).pipe(
      startWith(-1),
      // A slow snapshot skips ticks rather than piling them up.
      exhaustMap(() => this.snapshot().catch((error: Error) => ({ error: error.message }))),
      map((next) => {
        if ('error' in next) return next;
        const update = { ...next, perSecond: ratesBetween(previous, next) };
        previous = next;
        return update;
      }),
    );
  }

  private async series(name: string): Promise<Series> {
    const metric = this.registry.getSingleMetric(PREFIX + name);
    return metric ? ((await metric.get()).values as Series) : [];
  }

  /** XINFO GROUPS of the orders stream: the `fulfilment` group's pending entries and lag. */
  private async fulfilmentGroup(): Promise<{ pending: number; lag: number | null }> {
    const groups = (await this.redis.xinfo('GROUPS', this.ordersStream).catch((error: Error) => {
      if (/no such key/i.test(error.message)) return []; // no order yet, and no consumer created the stream
      throw error;
    })) as unknown[][];
    for (const fields of groups) {
      const group = new Map<unknown, unknown>();
      for (let i = 0; i + 1 < fields.length; i += 2) group.set(String(fields[i]), fields[i + 1]);
      if (group.get('name') === 'fulfilment')
        return { pending: Number(group.get('pending') ?? 0), lag: group.get('lag') == null ? null : Number(group.get('lag')) };
    }
    return { pending: 0, lag: 0 };
  }
}
