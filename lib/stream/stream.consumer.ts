import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { backoffDelay } from '../core/redis-connection.factory.js';
import { untilReady } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import type { StreamConsumerSettings } from './stream.consumer-settings.js';
import { normalize, StreamEntryHandling, type Field, type RawEntry } from './stream.entry-handling.js';

const leaveGroupScript = RedisScript.fromFile(new URL('./leave-group.lua', import.meta.url));

/**
 * One member of a consumer group: reads new entries with XREADGROUP, acknowledges each after its
 * handler succeeds, claims entries that stayed pending longer than `claimIdle` (XAUTOCLAIM), and
 * moves entries delivered `maxDeliveries` times, or that cannot be decoded, to the dead-letter
 * stream. It reads only while its connections are ready: while Redis is away it waits (the outage
 * is logged once), and resumes when it is back. Created by `StreamService.consume()`.
 *
 * @example
 * const consumer = await this.streams.consume<Order>('orders', 'billing', (order) => this.bill(order));
 * await consumer.stop();
 */
export class StreamConsumer {
  private readonly logger = new Logger('RedisPatterns:Stream');
  /** Aborted by stop(): ends waits for a connection and backoff pauses at once. */
  private readonly stopSignal = new AbortController();
  private stopping = false;
  private running: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private nextClaimAt = 0;
  private failures = 0;
  private groupReady = false;
  private readonly entries: StreamEntryHandling;

  constructor(private readonly settings: StreamConsumerSettings) {
    this.entries = new StreamEntryHandling(settings, this.stopSignal.signal);
    // Connection errors surface as failed reads: an outage, which the outage log reports once.
    settings.blockingClient.on('error', () => undefined);
  }

  /** This member's name in the group. */
  get name(): string {
    return this.settings.consumer;
  }

  /**
   * Starts reading. Resolves once the group exists, or, when Redis cannot be reached, once that
   * has been logged: the consumer then waits for Redis and starts when it is back.
   * @throws any error of Redis that is not an outage (the stream's key holds another type): the consumer is not started.
   */
  async start(): Promise<void> {
    try {
      await this.ensureGroup();
    } catch (error) {
      if (this.settings.outage.failed(error) === undefined) {
        this.settings.blockingClient.disconnect();
        this.settings.onStopped();
        throw error;
      }
    }
    this.running = this.run();
  }

  /**
   * Stops reading, lets the handler in flight finish (and acknowledge) for up to the module's
   * `shutdownTimeout`, then closes the reading connection. Entries fetched but not yet handled stay
   * pending and are claimed by another member.
   */
  stop(): Promise<void> {
    // A second call waits for the first one, bounded as it is (never for a handler that hangs).
    this.stopped ??= this.stopOnce();
    return this.stopped;
  }

  private async stopOnce(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    this.settings.blockingClient.disconnect();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.running?.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(resolve, this.settings.stopTimeoutMs, false);
      }),
    ]);
    clearTimeout(timer);
    if (finished === false)
      this.logger.warn(
        `Consumer "${this.name}" of stream "${this.settings.stream}" stopped with a handler still running; its entry will be delivered again`,
      );
    else await this.leaveGroupIfIdle();
    this.settings.onStopped();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        // Never a read on a connection that is not ready (at startup, it is still connecting).
        await untilReady(this.settings.client, this.stopSignal.signal);
        await untilReady(this.settings.blockingClient, this.stopSignal.signal);
        if (this.stopping) break;
        if (!this.groupReady) await this.ensureGroup();
        if (Date.now() >= this.nextClaimAt) await this.claimStale();
        const entries = await this.readNew();
        this.settings.outage.succeeded();
        await this.handleBatch(entries);
        this.failures = 0;
      } catch (error) {
        if (this.stopping) break;
        await this.recover(error);
      }
    }
  }

  /**
   * Handles a read's entries one after the other. Each entry's XACK leaves as soon as its handler
   * succeeds, and is confirmed while the next entry is handled (one round trip less per entry); the
   * batch is over once every acknowledgement is confirmed, and a failed one fails the batch as a
   * failed read does.
   */
  private async handleBatch(entries: RawEntry[]): Promise<void> {
    const readAt = Date.now();
    const acks: Promise<void>[] = [];
    let failed = false;
    let failure: unknown;
    try {
      for (const [id, fields] of entries) {
        if (this.stopping) break;
        // Entries waiting behind a slow handler past claimIdle may have been claimed by another member.
        if (Date.now() - readAt >= this.settings.claimIdleMs && !(await this.stillOwned(id))) continue;
        await this.entries.handle(id, fields, 1, acks);
      }
    } catch (error) {
      [failed, failure] = [true, error];
    }
    const unconfirmed = (await Promise.allSettled(acks)).find((settled) => settled.status === 'rejected');
    if (failed) throw failure;
    if (unconfirmed) throw unconfirmed.reason;
  }

  private async readNew(): Promise<RawEntry[]> {
    const { blockingClient, group, consumer, batch, blockMs, streamKey, codec } = this.settings;
    const args = ['GROUP', group, consumer, 'COUNT', batch, 'BLOCK', blockMs, 'STREAMS', streamKey, '>'] as const;
    const reply = (await (codec.binary ? blockingClient.xreadgroupBuffer(...args) : blockingClient.xreadgroup(...args))) as
      [Field, [Field, Field[]][]][] | null;
    return normalize(reply?.[0]?.[1] ?? []);
  }

  /** Claims entries idle for longer than claimIdle, and dead-letters those delivered too often. */
  private async claimStale(): Promise<void> {
    const { client, streamKey, group, consumer, claimIdleMs, batch, maxDeliveries } = this.settings;
    this.nextClaimAt = Date.now() + Math.max(100, claimIdleMs / 2);
    let cursor = '0-0';
    do {
      const args = [streamKey, group, consumer, claimIdleMs, cursor, 'COUNT', batch] as const;
      const [next, entries, deleted = []] = (await (this.settings.codec.binary
        ? client.callBuffer('XAUTOCLAIM', ...args)
        : client.xautoclaim(...args))) as [Field, [Field, Field[]][], Field[]?];
      cursor = String(next);
      // Entries trimmed away while pending can never be handled; take them off the pending list.
      if (deleted.length > 0) await client.xack(streamKey, group, ...deleted.map(String));
      const claimed = normalize(entries.filter((entry) => Array.isArray(entry?.[1])));
      if (claimed.length === 0) continue;
      const deliveries = await this.deliveryCounts(claimed.map(([id]) => id));
      for (const [id, fields] of claimed) {
        if (this.stopping) return;
        const count = deliveries.get(id);
        if (count === undefined) continue; // acknowledged or claimed by another member meanwhile
        if (count > maxDeliveries) await this.entries.deadLetter(id, fields, count - 1, 'max-deliveries');
        else await this.entries.handle(id, fields, count);
      }
    } while (cursor !== '0-0' && !this.stopping);
  }

  /** Delivery counts of the entries this consumer holds, asked one id at a time (in one round trip). */
  private async deliveryCounts(ids: string[]): Promise<Map<string, number>> {
    const { client, streamKey, group, consumer } = this.settings;
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.xpending(streamKey, group, id, id, 1, consumer);
    const replies = (await pipeline.exec()) ?? [];
    const counts = new Map<string, number>();
    for (const [error, pending] of replies) {
      if (error) throw error;
      for (const [id, , , count] of pending as [string, string, number, number][]) counts.set(id, Number(count));
    }
    return counts;
  }

  private async stillOwned(id: string): Promise<boolean> {
    return (await this.deliveryCounts([id])).has(id);
  }

  private async ensureGroup(): Promise<void> {
    const { client, streamKey, group, startId } = this.settings;
    try {
      await client.xgroup('CREATE', streamKey, group, startId, 'MKSTREAM');
    } catch (error) {
      if (!(error as Error).message.startsWith('BUSYGROUP')) throw error;
    }
    this.groupReady = true;
  }

  /**
   * After a failed read: recreate a vanished group, or pause with backoff. An outage is logged once
   * for all consumers and add(), in the library's words; anything else (a WRONGTYPE) is a bug,
   * logged with Redis's reply on its first occurrence.
   */
  private async recover(error: unknown): Promise<void> {
    this.failures++;
    if (error instanceof Error && error.message.startsWith('NOGROUP')) {
      this.groupReady = false;
      return;
    }
    if (this.settings.outage.failed(error) === undefined && this.failures === 1) {
      this.logger.error(
        `Consumer "${this.name}" of stream "${this.settings.stream}" failed: ${(error as Error)?.message ?? error}; retrying with backoff`,
      );
    }
    await sleep(backoffDelay(this.failures, 50, 2_000), undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }

  /** Removes this consumer from the group when it holds no pending entries, so names do not pile up. */
  private async leaveGroupIfIdle(): Promise<void> {
    const { client, streamKey, group, consumer } = this.settings;
    try {
      await leaveGroupScript.run(client, [streamKey], [group, consumer]);
    } catch {
      // Redis is away: the name stays in the group, which is harmless.
    }
  }
}
