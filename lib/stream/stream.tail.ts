import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { RedisCodec } from '../core/codec.js';
import type { OutageLog } from '../core/outage-log.js';
import { backoffDelay } from '../core/redis-connection.factory.js';
import { untilReady, type RedisClient } from '../core/redis-client.js';
import { streamField } from '../core/stream-fields.js';

type Field = string | Buffer;

/** Everything one tail needs, resolved by StreamService. */
export interface StreamTailSettings {
  stream: string;
  streamKey: string;
  batch: number;
  blockMs: number;
  /** `0-0` for the whole stream, `$` for entries added from the first read on. */
  startId: string;
  blockingClient: RedisClient;
  codec: RedisCodec;
  outage: OutageLog;
  handler: (event: unknown, id: string) => unknown;
  onStopped: () => void;
}

/**
 * A reader of one stream without a consumer group (XREAD): every entry after the start, in order,
 * to this reader alone, nothing acknowledged. For streams a single process owns, such as the reply
 * stream of a requester. While Redis is away it waits (the outage is logged once) and resumes
 * after the last entry it read. Created by `StreamService.tail()`.
 *
 * @example
 * const tail = this.streams.tail<Reply>('replies:7f3a', (reply) => this.settle(reply));
 * await tail.stop();
 */
export class StreamTail {
  private readonly logger = new Logger('RedisPatterns:Stream');
  private readonly stopSignal = new AbortController();
  private stopping = false;
  private failures = 0;
  private lastId: string;
  private readonly running: Promise<void>;

  constructor(private readonly settings: StreamTailSettings) {
    this.lastId = settings.startId;
    settings.blockingClient.on('error', () => undefined);
    this.running = this.run();
  }

  /** Stops reading; resolves once the handler of the entry being read has returned. */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopSignal.abort();
      this.settings.blockingClient.disconnect();
      this.settings.onStopped();
    }
    await this.running;
  }

  private async run(): Promise<void> {
    const { blockingClient, outage } = this.settings;
    while (!this.stopping) {
      try {
        await untilReady(blockingClient, this.stopSignal.signal);
        if (this.stopping) break;
        for (const [id, fields] of await this.read()) {
          this.lastId = id;
          await this.deliver(id, fields);
        }
        outage.succeeded();
        this.failures = 0;
      } catch (error) {
        if (this.stopping) break;
        this.failures++;
        if (outage.failed(error) === undefined && this.failures === 1)
          this.logger.error(
            `Reading stream "${this.settings.stream}" failed: ${(error as Error)?.message ?? error}; retrying with backoff`,
          );
        await sleep(backoffDelay(this.failures, 50, 2_000), undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
      }
    }
  }

  private async read(): Promise<[string, Field[]][]> {
    const { blockingClient, batch, blockMs, streamKey, codec } = this.settings;
    const args = ['COUNT', batch, 'BLOCK', blockMs, 'STREAMS', streamKey, this.lastId] as const;
    const reply = (await (codec.binary ? blockingClient.xreadBuffer(...args) : blockingClient.xread(...args))) as
      [Field, [Field, Field[]][]][] | null;
    return (reply?.[0]?.[1] ?? []).map(([id, fields]) => [String(id), fields]);
  }

  private async deliver(id: string, fields: Field[]): Promise<void> {
    const { codec, streamKey, stream, handler } = this.settings;
    let event: unknown;
    try {
      const payload = streamField(fields, 'd');
      if (payload === undefined) throw new Error('no payload field');
      event = codec.decode(payload, streamKey);
    } catch {
      this.logger.warn(`Entry ${id} of stream "${stream}" could not be decoded; skipped`);
      return;
    }
    try {
      await handler(event, id);
    } catch (error) {
      this.logger.error(`Handler failed on entry ${id} of stream "${stream}": ${(error as Error)?.message ?? error}`);
    }
  }
}
