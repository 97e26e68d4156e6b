import { Logger } from '@nestjs/common';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { KeyTracking, type KeyTrackingListener, type TrackedNode } from '../core/key-tracking.js';
import type { RedisClient } from '../core/redis-client.js';
import { describeError } from '../core/store-failure.js';
import { L1Source, type L1Cache } from './cache.l1.js';
import type { L1Invalidations } from './cache.l1-tier.js';

/**
 * L1 kept honest by Redis itself (`l1.invalidation: 'tracking'`): Redis reports every change to a
 * cache entry, from anywhere (this library, another service, a script, `redis-cli`, expiry,
 * eviction, FLUSHDB), over one tracked connection per server (see `KeyTracking`). Each tracked
 * server is an {@link L1Source}: its entries are dropped whenever its reports may have been
 * missed (the connection dropped, a health check failed, it failed over or handed slots over),
 * kept again only once tracking is back, and served only while its last heartbeat is younger than
 * two heartbeat periods.
 *
 * Only value keys (`<prefix>{c:<key>}`) are L1 entries: the reports of the keys beside them (the
 * stampede lock and generation, `...}:l` and `...}:g`) are skipped.
 */
export class TrackingInvalidations implements L1Invalidations, KeyTrackingListener {
  private readonly logger = new Logger('RedisPatterns:Cache');
  private readonly keyTracking: KeyTracking;
  private readonly sources = new Map<TrackedNode, L1Source>();
  /** Nodes whose loss or refusal was logged: their return is logged too, and a refusal retried with backoff only once. */
  private readonly reported = new Map<string, 'lost' | 'refused'>();
  private readonly leaseMs: number;
  private started = false;

  constructor(
    redis: RedisClient,
    /** The prefix of every value key: `<keyPrefix>{c:`. */
    valuePrefix: string,
    private readonly l1: L1Cache,
    heartbeatMs: number,
    options: ResolvedCoreOptions,
  ) {
    this.leaseMs = 2 * heartbeatMs;
    this.keyTracking = new KeyTracking(redis, valuePrefix, options, heartbeatMs, this);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.keyTracking.start();
  }

  async stop(): Promise<void> {
    this.started = false;
    this.keyTracking.stop();
  }

  sourceFor(valueKey: string): L1Source | undefined {
    const node = this.keyTracking.nodeOf(valueKey);
    const source = node && this.sources.get(node);
    return source?.live ? source : undefined;
  }

  invalidated(node: TrackedNode, keys: readonly string[] | null): void {
    if (keys === null) {
      this.l1.clearSource(this.sourceOf(node));
      return;
    }
    const entries = keys.filter((key) => key.endsWith('}'));
    if (entries.length > 0) this.l1.delete(entries);
  }

  tracked(node: TrackedNode, since: number): void {
    const source = this.sourceOf(node);
    // What was kept before may have missed changes made while the node was not tracked.
    this.l1.clearSource(source);
    source.live = true;
    source.servingUntil = since + this.leaseMs;
    if (this.reported.delete(node.address)) this.logger.log(`L1 keeps entries of ${this.describe(node)} again: its changes are tracked`);
  }

  confirmed(node: TrackedNode, sentAt: number): void {
    const source = this.sourceOf(node);
    source.servingUntil = Math.max(source.servingUntil, sentAt + this.leaseMs);
  }

  lost(node: TrackedNode, reason: string): void {
    const source = this.sourceOf(node);
    source.live = false;
    source.servingUntil = 0;
    this.l1.clearSource(source);
    this.sources.delete(node);
    if (!this.started) return;
    this.reported.set(node.address, 'lost');
    this.logger.warn(`Dropped the L1 entries of ${this.describe(node)}: ${reason}, so changes may have gone unreported`);
  }

  refused(node: TrackedNode, error: unknown): void {
    if (this.reported.get(node.address) === 'refused') return;
    this.reported.set(node.address, 'refused');
    this.logger.error(
      `L1 keeps no entries of ${this.describe(node)}: Redis refused client tracking (${describeError(error)}); ` +
        'it needs Redis 6 or later and the CLIENT command. Retrying with backoff.',
    );
  }

  private sourceOf(node: TrackedNode): L1Source {
    let source = this.sources.get(node);
    if (!source) {
      source = new L1Source();
      this.sources.set(node, source);
    }
    return source;
  }

  private describe(node: TrackedNode): string {
    return node.address === 'server' ? 'the Redis server' : `the Cluster master ${node.address}`;
  }
}
