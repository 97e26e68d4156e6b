import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { backoffDelay } from '../core/redis-connection.factory.js';
import { RedisScript } from '../core/redis-script.js';
import { describeError } from '../core/store-failure.js';
import { streamField } from '../core/stream-fields.js';
import { consumerSpan, type SpanOptions } from '../core/tracing.js';
import type { StreamConsumerSettings } from './stream.consumer-settings.js';

const deadLetterScript = RedisScript.fromFile(new URL('./dead-letter.lua', import.meta.url));
const retryClaimScript = RedisScript.fromFile(new URL('./retry-claim.lua', import.meta.url));

/** How many entries a dead-letter stream keeps, at least. */
const DEAD_LETTER_MAX_LEN = 10_000;

/** Field values are Buffers when the codec is binary. */
export type Field = string | Buffer;
export type RawEntry = [id: string, fields: Field[]];

/** Entries as Redis returns them, with their ids as strings. */
export function normalize(entries: [Field, Field[]][]): RawEntry[] {
  return entries.map(([id, fields]) => [String(id), fields]);
}

/**
 * What a consumer does with one entry it holds: decodes it, runs the handler in a span,
 * acknowledges it, retries it after `retryBackoff`, or moves it to the dead-letter stream.
 */
export class StreamEntryHandling {
  private readonly logger = new Logger('RedisPatterns:Stream');
  private readonly span: SpanOptions;

  /** `stopped`: the consumer's stop, which ends a retry's backoff. */
  constructor(
    private readonly settings: StreamConsumerSettings,
    private readonly stopped: AbortSignal,
  ) {
    this.span = consumerSpan(settings.stream, settings.group);
  }

  /** Handles an entry; with `acks`, its acknowledgement is added there instead of awaited. */
  async handle(id: string, fields: Field[], deliveries: number, acks?: Promise<void>[]): Promise<void> {
    const { codec, handler, tracing, stream, group, client, streamKey } = this.settings;
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
      await tracing.span('stream.handle', async () => handler(event, { id, stream, group, deliveries }), this.span);
    } catch (error) {
      this.settings.entries.add({ stream, outcome: 'failed' });
      const reason = describeError(error);
      if (deliveries >= this.settings.maxDeliveries) {
        await this.deadLetter(id, fields, deliveries, 'max-deliveries', reason);
        return;
      }
      this.logger.error(`Handler failed on entry ${id} of stream "${stream}" (delivery ${deliveries}); it will be retried: ${reason}`);
      await this.retryAfterBackoff(id, deliveries);
      return;
    }
    const ack = client.xack(streamKey, group, id).then(() => this.settings.entries.add({ stream, outcome: 'handled' }));
    if (!acks) return await ack;
    // Its failure is read with the read's other acknowledgements; meanwhile it is not an unhandled rejection.
    void ack.catch(() => undefined);
    acks.push(ack);
  }

  /**
   * Waits the backoff of this delivery, then takes the entry back (XCLAIM, which counts a delivery)
   * if this consumer still holds it at that delivery (no other member claimed it meanwhile), and
   * handles it again.
   */
  private async retryAfterBackoff(id: string, deliveries: number): Promise<void> {
    const { retryBackoff, client, streamKey, group, consumer, codec } = this.settings;
    if (retryBackoff === undefined) return;
    const delayMs = backoffDelay(deliveries, retryBackoff.minMs, retryBackoff.maxMs);
    const waited = await sleep(delayMs, true, { signal: this.stopped }).catch(() => false);
    if (!waited || this.stopped.aborted) return;
    const claimed = await retryClaimScript.run<[Field, Field[]][]>(client, [streamKey], [group, consumer, id, deliveries], {
      buffers: codec.binary,
    });
    const [entry] = normalize(claimed.filter((candidate) => Array.isArray(candidate?.[1])));
    if (entry !== undefined) await this.handle(id, entry[1], deliveries + 1);
  }

  /** Moves an entry to the dead-letter stream, if this group still holds it pending (one script). */
  async deadLetter(id: string, fields: Field[], deliveries: number, reason: 'max-deliveries' | 'malformed', error = ''): Promise<void> {
    const { client, streamKey, deadLetterKey, group, stream } = this.settings;
    const moved = await deadLetterScript.run<number>(
      client,
      [streamKey, deadLetterKey],
      [group, id, deliveries, reason, streamField(fields, 'd') ?? '', DEAD_LETTER_MAX_LEN, error],
    );
    if (moved === 1) this.settings.entries.add({ stream, outcome: 'dead-lettered' });
    if (moved === 1 && reason === 'max-deliveries')
      this.logger.warn(`Entry ${id} of stream "${stream}" failed ${deliveries} deliveries; moved to the dead-letter stream`);
  }
}
