import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { DEFAULT_CONNECTION } from '../core/core.options.js';
import { InvalidOptionError } from '../core/errors.js';
import { KEY_SEGMENTS } from '../core/feature.js';
import { RedisKeys } from '../core/keys.js';
import { RedisMetrics } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import { isCluster, masterNodes, type RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisHealthIndicator } from '../core/redis.health.js';
import { describeOutage, outageOf } from '../core/store-failure.js';
import { sampleBigKeys, type RedisBigKeysReport } from './insights.big-keys.js';
import { reportServerMetrics } from './insights.metrics.js';
import { INSIGHTS_OPTIONS } from './insights.options.js';
import type { ResolvedInsightsOptions } from './insights.options-validator.js';
import { RefusalLog } from './insights.refusals.js';
import { readSlowlog, type RedisSlowlog } from './insights.slowlog.js';
import {
  addressOf,
  parseInfo,
  unavailableNode,
  summarize,
  type RedisNodeUnavailable,
  type RedisServerSnapshot,
  type RedisServerSummary,
} from './insights.snapshot.js';

/** Which connection a call looks at. */
export interface InsightsCallOptions {
  /** @default 'default' */
  connection?: string;
}

/** Options of {@link RedisInsightsService.snapshot} and {@link RedisInsightsService.slowlog}. */
export interface InsightsNodeOptions extends InsightsCallOptions {
  /**
   * On a Cluster, read its replicas too (after the masters; `role` tells them apart). A replica
   * that cannot be reached is unavailable, with the reason, rather than failing the call. A
   * standalone or Sentinel connection has only its own server. @default false
   */
  replicas?: boolean;
}

/** Options of {@link RedisInsightsService.bigKeys}. */
export interface BigKeysOptions extends InsightsCallOptions {
  /** How many keys to look at, at most. @default 10000 */
  sample?: number;
  /** How many of the largest keys to list per feature. @default 10 */
  top?: number;
}

/** The longest slow log asked for (Redis keeps 128 entries by default). */
const MAX_SLOWLOG = 1_000;

/**
 * What the Redis servers behind a connection are doing, for dashboards and investigations: their
 * numbers (`snapshot`), their slow log (`slowlog`) and the keys that take the most memory, per
 * feature (`bigKeys`). On a Cluster each reads every master (`replicas: true`: the replicas too). The numbers also go to the `redis_*`
 * gauges (see the `insights` section) and to health reports (`server`).
 *
 * A command the server refuses (an ACL user without INFO, SLOWLOG or MEMORY; a managed service that
 * disables one) is logged once per connection, and the answer says what is missing: calls never
 * reject for it. Redis being unreachable rejects with `RedisUnavailableError` (503).
 *
 * @example
 * const { nodes } = await this.insights.snapshot();
 * const slow = await this.insights.slowlog(20);
 * const { features } = await this.insights.bigKeys({ sample: 5_000 });
 */
@Injectable()
export class RedisInsightsService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('RedisPatterns:Insights');
  private readonly refusals = new RefusalLog(this.logger);
  private readonly outages = new Map<string, OutageLog>();
  /** The latest snapshot of each connection, for the gauges and health reports. */
  private readonly latest = new Map<string, RedisServerSnapshot>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  private closing = false;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(KEY_SEGMENTS) private readonly segments: ReadonlyMap<string, string>,
    @Inject(INSIGHTS_OPTIONS) private readonly settings: ResolvedInsightsOptions,
    metrics: RedisMetrics,
    health: RedisHealthIndicator,
  ) {
    reportServerMetrics(metrics, () => this.latest.values());
    if (settings.health) health.addDetails({ name: 'server', read: (connection) => this.summary(connection) });
  }

  /**
   * The numbers of each master (of the one server; with `replicas`, of a Cluster's replicas too),
   * from INFO: memory, keyspace hits and misses, evictions, expirations, clients, operations per
   * second, role. A node that refuses INFO is `available: false` with the reason.
   * @example
   * const snapshot = await insights.snapshot();
   * for (const node of snapshot.nodes) if (node.available) console.log(node.node, node.memory.usedBytes, node.keyspace.hitRatio);
   * const replicas = (await insights.snapshot({ replicas: true })).nodes.filter((node) => node.available && node.role === 'replica');
   */
  async snapshot({ connection = DEFAULT_CONNECTION, replicas = false }: InsightsNodeOptions = {}): Promise<RedisServerSnapshot> {
    const nodes = await this.guard(connection, (client) =>
      eachNode(client, replicas, async (node) => {
        const info = await this.refusals.attempt(connection, 'INFO', () => node.info());
        return 'refused' in info ? unavailableNode(node, info.refused) : parseInfo(addressOf(node), info.value);
      }),
    );
    const snapshot = { connection, takenAt: new Date(), nodes };
    // The gauges and health summaries are of the masters.
    if (!replicas) this.latest.set(connection, snapshot);
    return snapshot;
  }

  /**
   * The last `count` (1 to 1000) entries of the slow log of each master (of the one server; with
   * `replicas`, of a Cluster's replicas too), newest first. Arguments are left out, as they may hold user data: each entry has the command,
   * how many arguments it had and how many of them were keys.
   * @example
   * const { nodes } = await insights.slowlog(10);
   * // [{ node: '10.0.0.5:6379', available: true, entries: [{ id: 41, command: 'EVALSHA', script: 'cache-miss', durationMicros: 12045, argumentCount: 5, keyCount: 3, ... }] }]
   */
  async slowlog(count = 10, { connection = DEFAULT_CONNECTION, replicas = false }: InsightsNodeOptions = {}): Promise<RedisSlowlog> {
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SLOWLOG)
      throw new InvalidOptionError('count', `an integer from 1 to ${MAX_SLOWLOG}`, count);
    const nodes = await this.guard(connection, (client) =>
      eachNode(client, replicas, (node) => readSlowlog(node, count, { connection, refusals: this.refusals })),
    );
    return { connection, nodes };
  }

  /**
   * Looks at up to `sample` keys under the module's key prefix (SCAN in batches, every master of a
   * Cluster in turn) with their `MEMORY USAGE`, and answers, per feature, how many keys and bytes
   * it found and its largest keys. The feature of a key is told by its first part after the
   * prefix; keys of no feature (your own under the prefix, optimistic transactions') are `'other'`.
   * Key names are in the answer: they may hold user data (a rate-limit key has its tracker).
   * @example
   * const { features, complete } = await insights.bigKeys({ sample: 5_000, top: 3 });
   * // features[0]: { feature: 'cache', keys: 1200, bytes: 3480112, largest: [{ key: 'nrp:{c:report:2026}', bytes: 912400, node: '10.0.0.5:6379' }, ...] }
   */
  async bigKeys({ sample = 10_000, top = 10, connection = DEFAULT_CONNECTION }: BigKeysOptions = {}): Promise<RedisBigKeysReport> {
    if (!Number.isSafeInteger(sample) || sample < 1) throw new InvalidOptionError('sample', 'a positive integer', sample);
    if (!Number.isSafeInteger(top) || top < 1) throw new InvalidOptionError('top', 'a positive integer', top);
    const plan = {
      connection,
      match: `${this.keys.prefix}*`,
      sample,
      top,
      featureOf: (key: string) => this.segments.get(this.keys.segmentOf(key) ?? '') ?? 'other',
      refusals: this.refusals,
    };
    return this.guard(connection, (client) => sampleBigKeys(masterNodes(client), plan));
  }

  /**
   * A snapshot in a few numbers, as health reports carry it: the latest snapshot when the
   * interval keeps it fresh, else a new one.
   * @example
   * const summary = await insights.summary();
   * if (summary.available) console.log(summary.opsPerSecond, summary.keyspaceHitRatio);
   */
  async summary(connection = DEFAULT_CONNECTION): Promise<RedisServerSummary> {
    const latest = this.latest.get(connection);
    const { intervalMs } = this.settings;
    const fresh = latest !== undefined && intervalMs !== undefined && Date.now() - latest.takenAt.getTime() <= 2 * intervalMs;
    return summarize(fresh ? latest : await this.snapshot({ connection }));
  }

  onApplicationBootstrap(): void {
    const { intervalMs } = this.settings;
    if (intervalMs === undefined) return;
    this.timer = setInterval(() => void this.refresh(), intervalMs).unref();
    void this.refresh();
  }

  onModuleDestroy(): void {
    this.closing = true;
    clearInterval(this.timer);
  }

  /** A snapshot of each connection the interval watches; one that fails has no gauges until the next. */
  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    const snapshots = this.settings.connections.map((connection) =>
      this.snapshot({ connection }).catch((error: unknown) => {
        this.latest.delete(connection);
        if (!this.closing) this.outageLog(connection).report(error, `take a snapshot of Redis connection "${connection}"`);
      }),
    );
    await Promise.all(snapshots);
    this.refreshing = false;
  }

  /** Runs `read` on the connection's client: an outage rejects with `RedisUnavailableError` (logged once). */
  private guard<T>(connection: string, read: (client: RedisClient) => Promise<T>): Promise<T> {
    const client = this.connections.get(connection);
    const outage = this.outageLog(connection);
    return outage.guard(Promise.resolve().then(() => read(client)));
  }

  private outageLog(connection: string): OutageLog {
    let log = this.outages.get(connection);
    if (log === undefined) {
      log = new OutageLog(
        this.logger,
        'server insights',
        'snapshot(), slowlog() and bigKeys() reject with RedisUnavailableError (503)',
        connection,
      );
      this.outages.set(connection, log);
    }
    return log;
  }
}

/**
 * `read` of every master (of the one server), and with `replicas` of every replica of a Cluster
 * after them. A master's outage rejects; an unreachable replica is unavailable, with the reason.
 */
async function eachNode<T>(
  client: RedisClient,
  replicas: boolean,
  read: (node: Redis) => Promise<T>,
): Promise<(T | RedisNodeUnavailable)[]> {
  const masters = masterNodes(client).map(read);
  const others = replicas && isCluster(client) ? client.nodes('slave') : [];
  const readReplica = (node: Redis) =>
    read(node).catch((error: unknown) => {
      const outage = outageOf(error);
      if (outage === undefined) throw error;
      return unavailableNode(node, `unreachable: ${describeOutage(outage)}`);
    });
  return Promise.all([...masters, ...others.map(readReplica)]);
}
