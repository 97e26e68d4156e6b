import { Logger } from '@nestjs/common';
import type { RedisCodec } from '../core/codec.js';
import { backoffDelay, createBlockingConnection } from '../core/redis-connection.factory.js';
import { untilReady, type RedisClient } from '../core/redis-client.js';
import { streamField } from '../core/stream-fields.js';
import type { InvalidationMessage, InvalidationTransport } from './cache.bus.js';

/** How long one read waits for new entries. */
const BLOCK_MS = 1_000;
/** About how many invalidations the stream keeps for instances that come back. */
const MAX_LENGTH = 10_000;

/**
 * Invalidation over a Redis stream: every instance reads every entry from the last id it saw, so
 * an instance whose connection dropped replays what it missed. Only when the stream no longer holds
 * that id (trimmed past it, or lost in a Redis restart) is it a gap, and L1 is cleared.
 */
export class StreamTransport implements InvalidationTransport {
  private readonly logger = new Logger('RedisPatterns:Cache');
  private reader: RedisClient | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private lastId = '0-0';

  constructor(
    private readonly client: RedisClient,
    private readonly streamKey: string,
    private readonly codec: RedisCodec,
    private readonly commandTimeoutMs: number,
  ) {}

  async publish(message: InvalidationMessage): Promise<void> {
    await this.client.xadd(this.streamKey, 'MAXLEN', '~', MAX_LENGTH, '*', 'd', this.codec.encode(message, this.streamKey));
  }

  async listen(onMessage: (message: InvalidationMessage) => void, onGap: () => void, stopped: AbortSignal): Promise<void> {
    // Start after the newest entry: nothing before this instance's L1 existed matters to it.
    const [newest] = (await this.client.xrevrange(this.streamKey, '+', '-', 'COUNT', 1)) as [string, string[]][];
    this.lastId = newest?.[0] ?? '0-0';
    if (!this.reader) {
      this.reader = createBlockingConnection(this.client, BLOCK_MS, this.commandTimeoutMs);
      this.reader.on('error', () => undefined); // failed reads are handled in read()
    }
    // Listening means reading: not before the reader is connected.
    await untilReady(this.reader, stopped);
    if (!stopped.aborted) this.running = this.read(this.reader, onMessage, onGap);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reader?.disconnect();
    await this.running;
  }

  private async read(reader: RedisClient, onMessage: (message: InvalidationMessage) => void, onGap: () => void): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (failures > 0) {
          if (await this.lostPosition()) onGap();
          failures = 0;
        }
        const reply = (await reader.xread('BLOCK', BLOCK_MS, 'STREAMS', this.streamKey, this.lastId)) as
          [string, [string, string[]][]][] | null;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          this.lastId = id;
          const payload = streamField(fields, 'd');
          try {
            if (payload === undefined) throw new Error('no payload field');
            onMessage(this.codec.decode<InvalidationMessage>(payload, this.streamKey));
          } catch {
            this.logger.warn(`Skipped invalidation ${id}: it could not be decoded`);
          }
        }
      } catch {
        if (this.stopped) break;
        failures++;
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(failures, 50, 2_000)));
      }
    }
  }

  /**
   * After a failed read: whether entries may be gone that were never read. Trimming removes the
   * oldest entries first, so while the last entry read is still in the stream, everything after
   * it is too. With nothing read yet, continuity cannot be shown, and it counts as a gap.
   */
  private async lostPosition(): Promise<boolean> {
    if (this.lastId === '0-0') return true;
    const atPosition = (await this.client.xrange(this.streamKey, this.lastId, this.lastId)) as unknown[];
    return atPosition.length === 0;
  }
}
