import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, type BeforeApplicationShutdown } from '@nestjs/common';
import { toPositiveMilliseconds, toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { streamField } from '../core/stream-fields.js';
import { toNonEmptyString, toPositiveInteger } from '../core/validation.js';
import { RedisKeys } from '../core/keys.js';
import { createBlockingConnection } from '../core/redis-connection.factory.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RESOLVED_OPTIONS } from '../core/redis-patterns.constants.js';
import type { ResolvedRedisPatternsOptions } from '../core/redis-patterns.options.js';
import { StreamConsumer } from './stream.consumer.js';
import type { AddOptions, ConsumeOptions, DeadLetter, StreamHandler } from './stream.interfaces.js';

/**
 * Durable events on Redis Streams, with consumer groups: at-least-once delivery, where pub/sub is
 * at most once.
 *
 * - `add()` appends an event (encoded with the module's codec).
 * - `consume()` joins a consumer group (creating it if needed). An event is acknowledged only
 *   after its handler succeeds; one whose handler failed, or whose consumer died, is delivered
 *   again after `claimIdle`; after `maxDeliveries` it moves to the stream's dead-letter stream.
 *   No acknowledged event is lost; an event may be handled more than once, so make handlers
 *   idempotent.
 * - At shutdown, consumers stop reading and finish the handler in flight before the connections
 *   close.
 *
 * A stream and its dead-letter stream share a hash tag, so on a Cluster they live in one slot.
 *
 * @example
 * await this.streams.add('orders', { id: 42, total: 99.5 }, { maxLen: 100_000 });
 * this.streams.consume<Order>('orders', 'billing', async (order) => this.bill(order));
 */
@Injectable()
export class StreamService implements BeforeApplicationShutdown {
  private readonly consumers = new Set<StreamConsumer>();

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedRedisPatternsOptions,
  ) {}

  /**
   * Appends an event to a stream.
   * @returns the entry id.
   * @example
   * const id = await this.streams.add('orders', order, { maxLen: 100_000 });
   */
  async add(stream: string, event: unknown, options: AddOptions = {}): Promise<string> {
    const key = this.streamKey(stream);
    const payload = this.options.codec.encode(event, key);
    const client = this.connections.get();
    if (options.maxLen === undefined) return (await client.xadd(key, '*', 'd', payload)) as string;
    if (!Number.isInteger(options.maxLen) || options.maxLen < 1) throw new InvalidOptionError('maxLen', 'a positive integer', options.maxLen);
    return (await client.xadd(key, 'MAXLEN', '~', options.maxLen, '*', 'd', payload)) as string;
  }

  /**
   * Joins (and if needed creates) a consumer group and hands each event to `handler`.
   * Resolves once the group exists and reading has started; if Redis cannot be reached, it logs
   * that and resolves, and the consumer keeps trying with backoff.
   * @example
   * const consumer = await this.streams.consume<Order>('orders', 'billing', (order, { id }) => this.bill(order, id), { maxDeliveries: 3 });
   * await consumer.stop();
   */
  async consume<T = unknown>(stream: string, group: string, handler: StreamHandler<T>, options: ConsumeOptions = {}): Promise<StreamConsumer> {
    const blockMs = toTimerMilliseconds(options.block ?? '2s', 'block');
    const consumer = new StreamConsumer({
      stream,
      group: toNonEmptyString('group', group),
      consumer: options.consumer === undefined ? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}` : toNonEmptyString('consumer', options.consumer),
      streamKey: this.streamKey(stream),
      deadLetterKey: this.deadLetterKey(stream),
      batch: toPositiveInteger('batch', options.batch ?? 10),
      blockMs,
      claimIdleMs: toPositiveMilliseconds(options.claimIdle ?? '30s', 'claimIdle'),
      maxDeliveries: toPositiveInteger('maxDeliveries', options.maxDeliveries ?? 5),
      startId: (options.from ?? 'start') === 'start' ? '0' : '$',
      stopTimeoutMs: this.options.shutdownTimeoutMs,
      client: this.connections.get(),
      blockingClient: createBlockingConnection(this.connections.get(), blockMs, this.options.commandTimeoutMs),
      codec: this.options.codec,
      handler: handler as StreamHandler<unknown>,
      onStopped: () => this.consumers.delete(consumer),
    });
    this.consumers.add(consumer);
    await consumer.start();
    return consumer;
  }

  /**
   * Reads the dead-letter stream of a stream, oldest first.
   * @example
   * const poisoned = await this.streams.deadLetters<Order>('orders', { count: 20 });
   */
  async deadLetters<T = unknown>(stream: string, { count = 100 }: { count?: number } = {}): Promise<DeadLetter<T>[]> {
    const key = this.deadLetterKey(stream);
    const client = this.connections.get();
    const args = [key, '-', '+', 'COUNT', count] as const;
    const entries = (await (this.options.codec.binary ? client.callBuffer('XRANGE', ...args) : client.xrange(...args))) as [string | Buffer, (string | Buffer)[]][];
    return entries.map(([id, fields]) => {
      const field = (name: string) => streamField(fields, name);
      const payload = field('d');
      return {
        id: String(id),
        originalId: String(field('id')),
        group: String(field('group')),
        deliveries: Number(field('deliveries')),
        reason: String(field('reason')) as DeadLetter['reason'],
        event: payload === undefined ? undefined : this.tryDecode<T>(payload, key),
      };
    });
  }

  /** Stops every consumer, letting handlers in flight finish, before the connections close. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.stop()));
  }

  private streamKey(stream: string): string {
    return this.keys.tagged(['stream', toNonEmptyString('stream', stream)]);
  }

  private deadLetterKey(stream: string): string {
    return this.keys.tagged(['stream', toNonEmptyString('stream', stream)], 'dead-letter');
  }

  private tryDecode<T>(payload: string | Buffer, key: string): T | undefined {
    try {
      return this.options.codec.decode<T>(payload, key);
    } catch {
      return undefined;
    }
  }
}
