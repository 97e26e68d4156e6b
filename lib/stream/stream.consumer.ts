import { Logger } from '@nestjs/common';
import type { RedisCodec } from '../core/codec.js';
import { backoffDelay } from '../core/redis-connection.factory.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { streamField } from '../core/stream-fields.js';
import type { StreamHandler } from './stream.interfaces.js';

const deadLetterScript = RedisScript.fromFile(new URL('./dead-letter.lua', import.meta.url));
const leaveGroupScript = RedisScript.fromFile(new URL('./leave-group.lua', import.meta.url));

/** How many entries a dead-letter stream keeps, at least. */
const DEAD_LETTER_MAX_LEN = 10_000;

/** Field values are Buffers when the codec is binary. */
type Field = string | Buffer;
type RawEntry = [id: string, fields: Field[]];

/** Everything one consumer needs, resolved by StreamService. */
export interface StreamConsumerSettings {
  stream: string;
  group: string;
  consumer: string;
  streamKey: string;
  deadLetterKey: string;
  batch: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  startId: '0' | '$';
  /** How long stop() waits for the handler in flight. */
  stopTimeoutMs: number;
  client: RedisClient;
  blockingClient: RedisClient;
  codec: RedisCodec;
  handler: StreamHandler<unknown>;
  /** Called once the consumer has stopped. */
  onStopped: () => void;
}

/**
 * One member of a consumer group: reads new entries with XREADGROUP, acknowledges each after its
 * handler succeeds, claims entries that stayed pending longer than `claimIdle` (XAUTOCLAIM), and
 * moves entries delivered `maxDeliveries` times, or that cannot be decoded, to the dead-letter
 * stream. Created by `StreamService.consume()`.
 */
export class StreamConsumer {
  private readonly logger = new Logger('RedisPatterns:Stream');
  private stopping = false;
  private running: Promise<void> | undefined;
  private nextClaimAt = 0;
  private failures = 0;
  private groupReady = false;

  constructor(private readonly settings: StreamConsumerSettings) {
    // Connection errors surface as failed reads, which recover() logs once.
    settings.blockingClient.on('error', () => undefined);
  }

  get name(): string {
    return this.settings.consumer;
  }

  /**
   * Starts reading. Resolves once the group exists, or, when Redis cannot be reached, once that
   * has been logged: the consumer then keeps trying in the background.
   */
  async start(): Promise<void> {
    try {
      await this.ensureGroup();
    } catch (error) {
      this.failures++;
      this.logger.warn(`Consumer "${this.name}" of stream "${this.settings.stream}" cannot reach Redis yet (${(error as Error).message}); retrying with backoff`);
    }
    this.running = this.run();
  }

  /**
   * Stops reading, lets the handler in flight finish (and acknowledge) for up to the module's
   * `shutdownTimeout`, then closes the reading connection. Entries fetched but not yet handled stay
   * pending and are claimed by another member.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.running;
    this.stopping = true;
    this.settings.blockingClient.disconnect();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      this.running?.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(resolve, this.settings.stopTimeoutMs, false);
      }),
    ]);
    clearTimeout(timer);
    if (finished === false) this.logger.warn(`Consumer "${this.name}" of stream "${this.settings.stream}" stopped with a handler still running; its entry will be delivered again`);
    else await this.leaveGroupIfIdle();
    this.settings.onStopped();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        if (!this.groupReady) await this.ensureGroup();
        if (Date.now() >= this.nextClaimAt) await this.claimStale();
        const entries = await this.readNew();
        const readAt = Date.now();
        for (const [id, fields] of entries) {
          if (this.stopping) break;
          // Entries waiting behind a slow handler past claimIdle may have been claimed by another member.
          if (Date.now() - readAt >= this.settings.claimIdleMs && !(await this.stillOwned(id))) continue;
          await this.process(id, fields, 1);
        }
        this.failures = 0;
      } catch (error) {
        if (this.stopping) break;
        await this.recover(error as Error);
      }
    }
  }

  private async readNew(): Promise<RawEntry[]> {
    const { blockingClient, group, consumer, batch, blockMs, streamKey, codec } = this.settings;
    const args = ['GROUP', group, consumer, 'COUNT', batch, 'BLOCK', blockMs, 'STREAMS', streamKey, '>'] as const;
    const reply = (await (codec.binary ? blockingClient.xreadgroupBuffer(...args) : blockingClient.xreadgroup(...args))) as [Field, [Field, Field[]][]][] | null;
    return normalize(reply?.[0]?.[1] ?? []);
  }

  /** Claims entries idle for longer than claimIdle, and dead-letters those delivered too often. */
  private async claimStale(): Promise<void> {
    const { client, streamKey, group, consumer, claimIdleMs, batch, maxDeliveries } = this.settings;
    this.nextClaimAt = Date.now() + Math.max(100, claimIdleMs / 2);
    let cursor = '0-0';
    do {
      const args = [streamKey, group, consumer, claimIdleMs, cursor, 'COUNT', batch] as const;
      const [next, entries, deleted = []] = (await (this.settings.codec.binary ? client.callBuffer('XAUTOCLAIM', ...args) : client.xautoclaim(...args))) as [Field, [Field, Field[]][], Field[]?];
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
        if (count > maxDeliveries) await this.deadLetter(id, fields, count - 1, 'max-deliveries');
        else await this.process(id, fields, count);
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

  private async process(id: string, fields: Field[], deliveries: number): Promise<void> {
    const { codec, handler, stream, group, client, streamKey } = this.settings;
    const payload = streamField(fields, 'd');
    let event: unknown;
    try {
      if (payload === undefined) throw new Error('no payload field');
      event = codec.decode(payload, streamKey);
    } catch {
      // The parser's message may quote the payload, so it is not logged.
      this.logger.warn(`Entry ${id} of stream "${stream}" could not be decoded; moved to the dead-letter stream`);
      await this.deadLetter(id, fields, deliveries, 'malformed');
      return;
    }
    try {
      await handler(event, { id, stream, group, deliveries });
    } catch (error) {
      this.logger.error(`Handler failed on entry ${id} of stream "${stream}" (delivery ${deliveries}); it will be retried: ${(error as Error)?.message ?? error}`);
      return;
    }
    await client.xack(streamKey, group, id);
  }

  private async deadLetter(id: string, fields: Field[], deliveries: number, reason: 'max-deliveries' | 'malformed'): Promise<void> {
    const { client, streamKey, deadLetterKey, group, stream } = this.settings;
    const moved = await deadLetterScript.run<number>(client, [streamKey, deadLetterKey], [group, id, deliveries, reason, streamField(fields, 'd') ?? '', DEAD_LETTER_MAX_LEN]);
    if (moved === 1 && reason === 'max-deliveries') this.logger.warn(`Entry ${id} of stream "${stream}" failed ${deliveries} deliveries; moved to the dead-letter stream`);
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

  /** After a failed read: recreate a vanished group, or wait with backoff while Redis is away. */
  private async recover(error: Error): Promise<void> {
    this.failures++;
    if (error.message.startsWith('NOGROUP')) {
      this.groupReady = false;
      return;
    }
    if (this.failures === 1) this.logger.warn(`Consumer "${this.name}" of stream "${this.settings.stream}" cannot read (${error.message}); retrying with backoff`);
    await new Promise((resolve) => setTimeout(resolve, backoffDelay(this.failures, 50, 2_000)));
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

function normalize(entries: [Field, Field[]][]): RawEntry[] {
  return entries.map(([id, fields]) => [String(id), fields]);
}
