import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Subscription } from 'rxjs';
import type { PubSubService } from '../pubsub/pubsub.service.js';
import type { L1Cache } from './cache.l1.js';

/** What one instance tells the others after a write: which L1 entries to drop. */
export interface InvalidationMessage {
  from: string;
  /** Redis keys of entries that changed. */
  keys?: string[];
  /** A SCAN pattern (only `*` and `?` wildcards) of entries that were deleted. */
  pattern?: string;
  /** A tag, pattern or clear invalidation: loads in flight must not store their results. */
  bulk?: boolean;
}

/** How invalidation messages travel between instances. */
export interface InvalidationTransport {
  publish(message: InvalidationMessage): Promise<void>;
  /**
   * Starts delivering messages, and calls `onGap` whenever some may have been missed. Resolves once
   * nothing published from then on can be missed (while the connection holds).
   */
  listen(onMessage: (message: InvalidationMessage) => void, onGap: () => void): Promise<void>;
  stop(): Promise<void>;
}

const CHANNEL = 'cache:invalidate';

/** Invalidation over pub/sub: at most once, so a reconnect of the subscriber counts as a gap. */
export class PubSubTransport implements InvalidationTransport {
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly pubsub: PubSubService) {}

  async publish(message: InvalidationMessage): Promise<void> {
    await this.pubsub.publish(CHANNEL, message);
  }

  listen(onMessage: (message: InvalidationMessage) => void, onGap: () => void): Promise<void> {
    this.subscriptions.push(this.pubsub.subscribe<InvalidationMessage>(CHANNEL).subscribe(onMessage), this.pubsub.reconnected.subscribe(onGap));
    return this.pubsub.whenSubscribed(CHANNEL);
  }

  async stop(): Promise<void> {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }
}

/**
 * Keeps the L1 tiers of all instances coherent: each write publishes the keys it changed (after
 * the Redis write succeeded), the other instances drop them, and an instance ignores its own
 * messages. When messages may have been missed (a pub/sub reconnect, or a stream trimmed past the
 * last entry read), L1 is cleared.
 */
export class CacheInvalidationBus {
  private readonly logger = new Logger('RedisPatterns:Cache');
  private readonly instanceId = randomUUID();
  private started = false;
  /** True once the transport listens: only then may L1 hold entries. */
  listening = false;

  constructor(
    private readonly transport: InvalidationTransport,
    private readonly l1: L1Cache,
    /** False when invalidation is turned off. */
    private readonly enabled: boolean,
    private readonly onBulkInvalidation: () => void,
  ) {}

  start(): void {
    if (this.started) return;
    this.started = true;
    const onGap = () => {
      this.logger.warn('Cleared the L1 cache: invalidations may have been missed');
      this.l1.clear();
    };
    this.transport.listen((message) => this.receive(message), onGap).then(
      () => (this.listening = true),
      (error: Error) => this.logger.error(`L1 stays off: cannot listen for invalidations: ${error.message}`),
    );
  }

  stop(): Promise<void> {
    return this.transport.stop();
  }

  /** Never throws: a lost invalidation only leaves other L1s stale until their short TTL. */
  async publish(change: Omit<InvalidationMessage, 'from'>): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.transport.publish({ from: this.instanceId, ...change });
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
