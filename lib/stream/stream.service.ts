import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { toPositiveMilliseconds, toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { CountedMetric, RedisMetrics } from '../core/metrics.js';
import { StreamBacklog } from './stream.metrics.js';
import { OutageLog } from '../core/outage-log.js';
import { streamField } from '../core/stream-fields.js';
import { RedisTracing } from '../core/tracing.js';
import { toPositiveInteger, toTextArgument } from '../core/validation.js';
import { RedisKeys } from '../core/keys.js';
import { RedisScript } from '../core/redis-script.js';
import { createBlockingConnection } from '../core/redis-connection.factory.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { StreamConsumer } from './stream.consumer.js';
import { StreamTail } from './stream.tail.js';
import type { AddOptions, ConsumeOptions, DeadLetter, StreamGroupBacklog, StreamHandler, TailOptions } from './stream.interfaces.js';

const addExpiringScript = RedisScript.fromFile(new URL('./stream-add-expiring.lua', import.meta.url));

// The types of this public service's answers, for the features that use it (they import only this file).
export type { StreamConsumer } from './stream.consumer.js';
export type { StreamTail } from './stream.tail.js';
export type { StreamGroupBacklog, StreamMessageInfo } from './stream.interfaces.js';

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
 * - When Redis cannot be reached, `add()` and `deadLetters()` reject with a
 *   `RedisUnavailableError` (503), and consumers wait and resume when it is back; the outage is
 *   logged once. Other errors of Redis (a key holding another type) are thrown as they are.
 * - `tail()` reads a stream without a group (a reply stream one process owns); `groupBacklog()`
 *   reports a group's pending entries and dead letters; `destroyGroup()` deletes a group.
 * - Stream, group and consumer names must be non-empty, well-formed Unicode.
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
  private readonly tails = new Set<StreamTail>();
  private readonly entries: CountedMetric;
  private readonly backlog: StreamBacklog;
  private readonly outage = new OutageLog(
    new Logger('RedisPatterns:Stream'),
    'streams',
    'add() fails with RedisUnavailableError (503) and consumers pause',
  );

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(CORE_OPTIONS) private readonly options: ResolvedCoreOptions,
    metrics: RedisMetrics,
    private readonly tracing: RedisTracing,
  ) {
    this.entries = new CountedMetric(metrics, {
      name: 'stream_entries_total',
      help: 'Stream entries by stream and outcome (handled, failed: the handler threw, dead-lettered)',
      labelNames: ['stream', 'outcome'],
    });
    this.backlog = new StreamBacklog(metrics, connections.get(), this.outage);
  }

  /**
   * Appends an event to a stream.
   * @returns the entry id.
   * @throws RedisUnavailableError (503) when Redis cannot be reached; InvalidOptionError naming `stream` or `maxLen`.
   * @example
   * const id = await this.streams.add('orders', order, { maxLen: 100_000 });
   */
  async add(stream: string, event: unknown, options: AddOptions = {}): Promise<string> {
    const key = this.streamKey(stream);
    const payload = this.options.codec.encode(event, key);
    const client = this.connections.get();
    const trim = this.trimArguments(options);
    if (options.expire === undefined) return (await this.outage.guard(client.xadd(key, ...trim, '*', 'd', payload))) as string;
    const expireMs = toPositiveMilliseconds(options.expire, 'expire');
    // One command (a MULTI of XADD and PEXPIRE was four, and ioredis's transaction object on top).
    return await this.outage.guard(addExpiringScript.run<string>(client, [key], [expireMs, payload, ...trim]));
  }

  private trimArguments({ maxLen, maxAge }: AddOptions): (string | number)[] {
    if (maxLen !== undefined && maxAge !== undefined) throw new InvalidOptionError('maxAge', 'no maxAge beside maxLen', maxAge);
    if (maxLen !== undefined && (!Number.isInteger(maxLen) || maxLen < 1))
      throw new InvalidOptionError('maxLen', 'a positive integer', maxLen);
    if (maxLen !== undefined) return ['MAXLEN', '~', maxLen];
    if (maxAge !== undefined) return ['MINID', '~', Date.now() - toPositiveMilliseconds(maxAge, 'maxAge')];
    return [];
  }

  /**
   * Joins (and if needed creates) a consumer group and hands each event to `handler`.
   * Resolves once the group exists and reading has started; if Redis cannot be reached, it logs
   * that (once) and resolves, and the consumer starts reading when Redis is back.
   * @throws InvalidOptionError naming `stream`, `group`, `consumer` or an option; an error of Redis that is not an outage.
   * @example
   * const consumer = await this.streams.consume<Order>('orders', 'billing', (order, { id }) => this.bill(order, id), { maxDeliveries: 3 });
   * await consumer.stop();
   */
  async consume<T = unknown>(
    stream: string,
    group: string,
    handler: StreamHandler<T>,
    options: ConsumeOptions = {},
  ): Promise<StreamConsumer> {
    const blockMs = toTimerMilliseconds(options.block ?? '2s', 'block');
    const consumer = new StreamConsumer({
      stream,
      group: toTextArgument('group', group),
      consumer:
        options.consumer === undefined
          ? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`
          : toTextArgument('consumer', options.consumer),
      streamKey: this.streamKey(stream),
      deadLetterKey: this.deadLetterKey(stream),
      batch: toPositiveInteger('batch', options.batch ?? 10),
      blockMs,
      claimIdleMs: toPositiveMilliseconds(options.claimIdle ?? '30s', 'claimIdle'),
      maxDeliveries: toPositiveInteger('maxDeliveries', options.maxDeliveries ?? 5),
      retryBackoff:
        options.retryBackoff === undefined
          ? undefined
          : {
              minMs: toPositiveMilliseconds(options.retryBackoff.min, 'retryBackoff.min'),
              maxMs: toPositiveMilliseconds(options.retryBackoff.max, 'retryBackoff.max'),
            },
      startId: (options.from ?? 'start') === 'start' ? '0' : '$',
      stopTimeoutMs: this.options.shutdownTimeoutMs,
      client: this.connections.get(),
      blockingClient: createBlockingConnection(this.connections.get(), blockMs, this.options.commandTimeoutMs),
      codec: this.options.codec,
      handler: handler as StreamHandler<unknown>,
      tracing: this.tracing,
      outage: this.outage,
      entries: this.entries,
      onStopped: () => this.consumers.delete(consumer),
    });
    this.consumers.add(consumer);
    this.backlog.watch({ stream, group, streamKey: this.streamKey(stream), deadLetterKey: this.deadLetterKey(stream) });
    await consumer.start();
    return consumer;
  }

  /**
   * Reads the dead-letter stream of a stream, oldest first.
   * @throws RedisUnavailableError (503) when Redis cannot be reached.
   * @example
   * const poisoned = await this.streams.deadLetters<Order>('orders', { count: 20 });
   */
  async deadLetters<T = unknown>(stream: string, { count = 100 }: { count?: number } = {}): Promise<DeadLetter<T>[]> {
    const key = this.deadLetterKey(stream);
    const client = this.connections.get();
    const args = [key, '-', '+', 'COUNT', count] as const;
    const entries = (await this.outage.guard(
      this.options.codec.binary ? client.callBuffer('XRANGE', ...args) : client.xrange(...args),
    )) as [string | Buffer, (string | Buffer)[]][];
    return entries.map(([id, fields]) => {
      const field = (name: string) => streamField(fields, name);
      const payload = field('d');
      return {
        id: String(id),
        originalId: String(field('id')),
        group: String(field('group')),
        deliveries: Number(field('deliveries')),
        reason: String(field('reason')) as DeadLetter['reason'],
        ...(field('error') ? { error: String(field('error')) } : {}),
        event: payload === undefined ? undefined : this.tryDecode<T>(payload, key),
      };
    });
  }

  /**
   * Reads a stream without a consumer group: every entry after the start, in order, to this reader
   * alone (XREAD), nothing acknowledged. For a stream one process owns, such as a reply stream.
   * @throws InvalidOptionError naming `stream` or an option.
   * @example
   * const tail = this.streams.tail<Reply>('replies:7f3a', (reply, id) => this.settle(reply), { from: 'new' });
   * await tail.stop();
   */
  tail<T = unknown>(stream: string, handler: (event: T, id: string) => unknown, options: TailOptions = {}): StreamTail {
    const blockMs = toTimerMilliseconds(options.block ?? '2s', 'block');
    const tail: StreamTail = new StreamTail({
      stream,
      streamKey: this.streamKey(stream),
      batch: toPositiveInteger('batch', options.batch ?? 100),
      blockMs,
      startId: (options.from ?? 'start') === 'start' ? '0-0' : '$',
      blockingClient: createBlockingConnection(this.connections.get(), blockMs, this.options.commandTimeoutMs),
      codec: this.options.codec,
      outage: this.outage,
      handler: handler as (event: unknown, id: string) => unknown,
      onStopped: () => this.tails.delete(tail),
    });
    this.tails.add(tail);
    return tail;
  }

  /**
   * The backlog of a consumer group: pending entries, the age of the oldest, and dead letters.
   * @throws RedisUnavailableError (503) when Redis cannot be reached.
   * @example
   * const { pending, oldestPendingMs, deadLetters } = await this.streams.groupBacklog('orders', 'billing');
   */
  async groupBacklog(stream: string, group: string): Promise<StreamGroupBacklog> {
    const key = this.streamKey(stream);
    const client = this.connections.get();
    const [[, summary], [, dead]] = ((await this.outage.guard(
      client.multi().xpending(key, toTextArgument('group', group)).xlen(this.deadLetterKey(stream)).exec(),
    )) ?? []) as [Error | null, unknown][];
    const [pending, oldestId] = Array.isArray(summary) ? (summary as [number, string | null]) : [0, null];
    const oldestPendingMs = oldestId ? Math.max(0, Date.now() - Number(String(oldestId).split('-')[0])) : 0;
    return { pending: Number(pending), oldestPendingMs, deadLetters: Number(dead ?? 0) };
  }

  /**
   * Deletes a consumer group (its pending entries with it); the stream stays.
   * @returns whether the group existed.
   * @throws RedisUnavailableError (503) when Redis cannot be reached.
   * @example
   * await this.streams.destroyGroup('orders', 'billing-7f3a');
   */
  async destroyGroup(stream: string, group: string): Promise<boolean> {
    const destroyed = this.connections.get().xgroup('DESTROY', this.streamKey(stream), toTextArgument('group', group));
    return Number(await this.outage.guard(destroyed)) === 1;
  }

  /** Stops every consumer and tail, letting handlers in flight finish, before the connections close. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([...[...this.consumers].map((consumer) => consumer.stop()), ...[...this.tails].map((tail) => tail.stop())]);
  }

  private streamKey(stream: string): string {
    return this.keys.tagged(['stream', toTextArgument('stream', stream)]);
  }

  private deadLetterKey(stream: string): string {
    return this.keys.tagged(['stream', toTextArgument('stream', stream)], 'dead-letter');
  }

  private tryDecode<T>(payload: string | Buffer, key: string): T | undefined {
    try {
      return this.options.codec.decode<T>(payload, key);
    } catch {
      return undefined;
    }
  }
}
