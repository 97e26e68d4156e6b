import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { PubSubService } from '../pubsub/pubsub.service.js';
import type { L1Cache } from './cache.l1.js';

/** What one instance tells the others after a write: which L1 entries to drop. */
interface InvalidationMessage {
  from: string;
  /** Redis keys of entries that changed. */
  keys?: string[];
  /** A SCAN pattern (only `*` and `?` wildcards) of entries that were deleted. */
  pattern?: string;
  /** A tag, pattern or clear invalidation: loads in flight must not store their results. */
  bulk?: boolean;
}

const CHANNEL = 'cache:invalidate';

/**
 * Keeps the L1 tiers of all instances coherent over pub/sub: each write publishes the keys it
 * changed (after the Redis write succeeded), the other instances drop them, and an instance
 * ignores its own messages. Pub/sub is at most once, so when the subscriber connection comes back
 * after a disconnect, L1 is cleared.
 */
export class CacheInvalidationBus {
  private readonly logger = new Logger('RedisPatterns:Cache');
  private readonly instanceId = randomUUID();
  private readonly subscriptions: Subscription[] = [];
  private started = false;
  /** True once Redis confirmed the subscription: only then may L1 hold entries. */
  listening = false;

  constructor(
    private readonly pubsub: PubSubService,
    private readonly l1: L1Cache,
    /** False when invalidation is turned off. */
    private readonly enabled: boolean,
    private readonly onBulkInvalidation: () => void,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    this.subscriptions.push(
      this.pubsub.subscribe<InvalidationMessage>(CHANNEL).subscribe((message) => this.receive(message)),
      this.pubsub.reconnected.subscribe(() => {
        this.logger.warn('Cleared the L1 cache: invalidations may have been missed while the subscriber was disconnected');
        this.l1.clear();
      }),
    );
    this.pubsub.whenSubscribed(CHANNEL).then(
      () => (this.listening = true),
      (error: Error) => this.logger.error(`L1 stays off: the invalidation channel could not be subscribed: ${error.message}`),
    );
  }

  stop(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  /** Never throws: a lost invalidation only leaves other L1s stale until their short TTL. */
  async publish(change: Omit<InvalidationMessage, 'from'>): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.pubsub.publish(CHANNEL, { from: this.instanceId, ...change } satisfies InvalidationMessage);
    } catch (error) {
      this.logger.warn(`Could not publish a cache invalidation: ${(error as Error).message}`);
    }
  }

  private receive(message: InvalidationMessage): void {
    if (message.from === this.instanceId) return;
    if (message.bulk) this.onBulkInvalidation();
    if (message.keys) this.l1.delete(message.keys);
    if (message.pattern !== undefined) this.l1.deleteMatching(globToRegExp(message.pattern));
  }
}

/** A RegExp for a pattern whose only wildcards are `*` and `?`. */
export function globToRegExp(pattern: string): RegExp {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`);
}
