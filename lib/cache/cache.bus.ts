import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Subscription } from 'rxjs';
// Node's own timers, not the globals: an app's tests that fake the global timers still get their invalidations sent.
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutageLog } from '../core/outage-log.js';
import { backoffDelay } from '../core/redis-connection.factory.js';
import { describeError, RedisUnavailableError } from '../core/store-failure.js';
import type { PubSubService } from '../pubsub/pubsub.service.js';
import { PublisherSequences } from './cache.bus-sequences.js';
import { L1Source, type L1Cache } from './cache.l1.js';
import type { L1Invalidations } from './cache.l1-tier.js';

/** What one instance tells the others after a write: which L1 entries to drop. */
export interface InvalidationMessage {
  from: string;
  /** The publisher's count of its messages (heartbeats included), from 1: a number skipped is a message missed. */
  seq?: number;
  /** Redis keys of entries that changed. */
  keys?: string[];
  /** A SCAN pattern (only `*` and `?` wildcards) of entries that were deleted. */
  pattern?: string;
}

/** How invalidation messages travel between instances. */
export interface InvalidationTransport {
  publish(message: InvalidationMessage): Promise<void>;
  /**
   * Starts delivering messages, and calls `onGap` whenever some may have been missed. Resolves once
   * nothing published from then on can be missed (while the connection holds), or once `stopped`
   * aborts. Rejects when Redis cannot be reached; it may then be called again.
   */
  listen(onMessage: (message: InvalidationMessage) => void, onGap: () => void, stopped: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}

const CHANNEL = 'cache:invalidate';
/** A publisher not heard from for this many heartbeats is forgotten (when heard again, it counts as a gap). */
const FORGET_AFTER_HEARTBEATS = 10;
/** For this many heartbeats after it starts listening, an instance hears the running publishers for the first time. */
const STARTUP_GRACE_HEARTBEATS = 3;
/** How many of its own messages an instance remembers the sending time of, waiting for their echo. */
const MAX_UNECHOED = 1_000;
/** Keys announced together beyond this many start another message. */
const MAX_KEYS_PER_MESSAGE = 1_000;
/**
 * After a message of keys leaves, the next one waits until this long has passed, and takes the keys
 * announced meanwhile: writes in a row (one caller writing in a loop) then send one message a
 * millisecond instead of one each. At one caller a Keyv `set` cost about 25-50 µs of CPU more with
 * the bus than without (its `PUBLISH`, and the echo this instance reads back), at 110-150 µs a
 * write. A message after a quiet millisecond leaves at once.
 */
const MESSAGE_INTERVAL_MS = 1;

/** Keys waiting for their message, and when it will have left. */
interface PendingMessage {
  keys: string[];
  sent: Promise<void>;
  /** Sends it now, if it has not left yet. */
  leave(): void;
}

/** Invalidation over pub/sub: at most once, so a reconnect of the subscriber counts as a gap. */
export class PubSubTransport implements InvalidationTransport {
  private readonly subscriptions: Subscription[] = [];

  constructor(private readonly pubsub: PubSubService) {}

  async publish(message: InvalidationMessage): Promise<void> {
    await this.pubsub.publish(CHANNEL, message);
  }

  listen(onMessage: (message: InvalidationMessage) => void, onGap: () => void): Promise<void> {
    // Subscriptions wait for the connection themselves: made once, however often this is called,
    // unless one failed (pub/sub has logged why): the bus's next attempt subscribes again.
    if (this.subscriptions.length === 0)
      this.subscriptions.push(
        this.pubsub.subscribe<InvalidationMessage>(CHANNEL).subscribe({ next: onMessage, error: () => this.unsubscribe() }),
        this.pubsub.reconnected.subscribe(onGap),
      );
    return this.pubsub.whenSubscribed(CHANNEL);
  }

  async stop(): Promise<void> {
    this.unsubscribe();
  }

  private unsubscribe(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }
}

/**
 * Keeps the L1 tiers of all instances coherent (`l1.invalidation: 'bus'`): each write publishes
 * the keys it changed (after the Redis write succeeded), the other instances drop them, and an
 * instance ignores its own messages. Every message carries its publisher's sequence number, and
 * each instance publishes a heartbeat every `heartbeatMs`, so:
 * - a message lost without any reconnect (the next one of its publisher, at the latest its next
 *   heartbeat, skips a number) clears L1, as does a reconnect of the subscriber or a stream trimmed
 *   past the last entry read;
 * - L1 serves only while this instance's own last heartbeat came back less than two heartbeats
 *   ago: everything published before it has then been received (one channel delivers in order),
 *   so a subscriber that stalls without dropping (a paused process, a stuck socket) stops serving
 *   instead of serving what it no longer hears about.
 */
export class CacheInvalidationBus implements L1Invalidations {
  private readonly logger = new Logger('RedisPatterns:Cache');
  private readonly outage = new OutageLog(this.logger, 'cache invalidations', 'other instances keep their L1 copies until their TTL ends');
  private readonly instanceId = randomUUID();
  private started = false;
  private readonly stopping = new AbortController();
  /** What covers every L1 entry in this mode: live once the transport listens. */
  private readonly source: L1Source;
  private readonly publishers: PublisherSequences;
  private sequence = 0;
  /** When each of this instance's recent messages left, by sequence number: its echo confirms delivery up to then. */
  private readonly sentAt = new Map<number, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private listeningSince = 0;
  /** The keys announced since the last message left, and when their message will have left. */
  private announcing: PendingMessage | undefined;
  /** When the last message of keys left (`performance.now()`). */
  private lastMessageAt = -Infinity;

  constructor(
    private readonly transport: InvalidationTransport,
    private readonly l1: L1Cache,
    /** False when invalidation is turned off: L1 entries then live out their TTL. */
    private readonly enabled: boolean,
    private readonly heartbeatMs: number,
  ) {
    this.source = enabled ? new L1Source() : L1Source.always();
    this.publishers = new PublisherSequences(FORGET_AFTER_HEARTBEATS * heartbeatMs);
  }

  start(): void {
    if (this.started || !this.enabled) return;
    this.started = true;
    void this.listen();
  }

  stop(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.heartbeat);
    this.announcing?.leave();
    return this.transport.stop();
  }

  sourceFor(): L1Source | undefined {
    return this.source.live ? this.source : undefined;
  }

  /** Listens for invalidations, retrying with backoff while Redis cannot be reached: L1 stays off until then. */
  private async listen(): Promise<void> {
    const onGap = () => this.gap('the channel reconnected or lost messages');
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      try {
        await this.transport.listen((message) => this.receive(message), onGap, this.stopping.signal);
        if (this.stopping.signal.aborted) return;
        this.source.live = true;
        this.listeningSince = performance.now();
        this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
        this.heartbeat.unref();
        this.beat();
        if (attempt > 1) this.logger.log('L1 is on: the cache listens for invalidations');
        return;
      } catch (error) {
        if (attempt === 1)
          this.logger.warn(`L1 stays off until the cache can listen for invalidations (${describeError(error)}); retrying with backoff`);
        await sleep(backoffDelay(attempt, 100, 5_000), undefined, { signal: this.stopping.signal }).catch(() => undefined);
      }
    }
  }

  /**
   * Tells the other instances that these entries changed (never throws). Keys announced together
   * share one message, at most {@link MAX_KEYS_PER_MESSAGE} to one. A message leaves from a promise
   * job queued at its first announcement, which runs after the jobs already queued (the other
   * writes finishing alongside): 200 concurrent writes measured one message on one server and four
   * on a Cluster. Within {@link MESSAGE_INTERVAL_MS} of the last message it waits for the rest of
   * that millisecond, taking the keys announced meanwhile.
   * @returns settles once the message holding them has left.
   */
  announce(keys: readonly string[]): Promise<void> {
    let sent = Promise.resolve();
    if (!this.enabled) return sent;
    for (const key of keys) {
      this.announcing ??= this.nextMessage();
      this.announcing.keys.push(key);
      sent = this.announcing.sent;
      if (this.announcing.keys.length >= MAX_KEYS_PER_MESSAGE) this.announcing.leave();
    }
    return sent;
  }

  /**
   * A message that takes keys until it leaves: after the promise jobs queued before it, or, within
   * {@link MESSAGE_INTERVAL_MS} of the last message, once that much time has passed; at once when
   * it is full or the bus stops (`leave`).
   */
  private nextMessage(): PendingMessage {
    const keys: string[] = [];
    let settle: (sending: Promise<void>) => void = () => undefined;
    const sent = new Promise<void>((resolve) => (settle = resolve));
    const wait = this.lastMessageAt + MESSAGE_INTERVAL_MS - performance.now();
    const leave = (): void => {
      if (this.announcing?.keys !== keys) return;
      this.announcing = undefined;
      clearTimeout(timer);
      this.lastMessageAt = performance.now();
      settle(this.publish({ keys }));
    };
    const timer = wait > 0 ? setTimeout(leave, wait) : undefined;
    if (timer === undefined) void Promise.resolve().then(leave);
    return { keys, sent, leave };
  }

  /** Never throws: a lost invalidation is found by its publisher's next message, and clears the other L1s. */
  async publish(change: Omit<InvalidationMessage, 'from' | 'seq'>): Promise<void> {
    if (!this.enabled) return;
    const seq = ++this.sequence;
    this.sentAt.set(seq, performance.now());
    if (this.sentAt.size > MAX_UNECHOED) this.sentAt.delete(this.sentAt.keys().next().value as number);
    try {
      await this.transport.publish({ from: this.instanceId, seq, ...change });
      this.outage.succeeded();
    } catch (error) {
      // Pub/sub has logged its outage already; the stream transport's is logged here, once.
      if (error instanceof RedisUnavailableError) return;
      this.outage.report(error, 'publish a cache invalidation');
    }
  }

  /** A heartbeat: a message without keys, for the sequence numbers and this instance's own delivery check. */
  private beat(): void {
    this.publishers.forgetSilent(performance.now());
    void this.publish({});
  }

  private receive(message: InvalidationMessage): void {
    if (message.from === this.instanceId) {
      this.echoed(message.seq);
      return;
    }
    if (message.seq !== undefined && this.publishers.skipped(message.from, message.seq, performance.now()))
      this.gap('a message was missed', performance.now() - this.listeningSince < STARTUP_GRACE_HEARTBEATS * this.heartbeatMs);
    if (message.keys) this.l1.delete(message.keys);
    if (message.pattern !== undefined) this.l1.deleteMatching(globToRegExp(message.pattern));
  }

  /** One of this instance's messages came back: everything published before it was sent has been received. */
  private echoed(seq: number | undefined): void {
    const sentAt = seq === undefined ? undefined : this.sentAt.get(seq);
    if (sentAt === undefined || seq === undefined) return;
    for (const sent of this.sentAt.keys()) {
      if (sent > seq) break;
      this.sentAt.delete(sent);
    }
    if (this.source.live) this.source.servingUntil = Math.max(this.source.servingUntil, sentAt + 2 * this.heartbeatMs);
  }

  /**
   * Messages may have been missed: L1 is cleared. `quiet` at startup, where publishers that were
   * already running are heard from for the first time (L1 holds next to nothing yet).
   */
  private gap(reason: string, quiet = false): void {
    if (!quiet) this.logger.warn(`Cleared the L1 cache: ${reason}, so invalidations may have been missed`);
    this.l1.clear();
  }
}

/** A RegExp for a pattern whose only wildcards are `*` and `?`. */
export function globToRegExp(pattern: string): RegExp {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`);
}
