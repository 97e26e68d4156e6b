import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { Observable, Subject, type Subscriber } from 'rxjs';
import { RedisPatternsError } from '../core/errors.js';
import { CountedMetric, RedisMetrics } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import { isCluster, redisMajorVersion, untilReady, type RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { CORE_OPTIONS } from '../core/core.constants.js';
import { PUBSUB_OPTIONS, type ResolvedPubSubOptions } from './pubsub.options.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { describeError, RedisUnavailableError } from '../core/store-failure.js';
import { toTextArgument } from '../core/validation.js';

/** The labels of messages counted in and out (channels are not labels: they may carry ids). */
const IN = { direction: 'in' } as const;
const OUT = { direction: 'out' } as const;

/** A message received through a pattern subscription, with the channel it was published on. */
export interface PatternMessage<T> {
  channel: string;
  message: T;
}

type Kind = 'channel' | 'pattern';

interface Subscription {
  kind: Kind;
  /** The channel or pattern as Redis knows it, with the key prefix. */
  redisName: string;
  subscribers: Set<Subscriber<unknown>>;
  /** Settles when Redis has confirmed (or refused) the subscription. */
  confirmed: Promise<void>;
}

/**
 * Publish/subscribe over Redis, with rxjs.
 *
 * - Messages are encoded with the module's codec; channels are prefixed with `keyPrefix`.
 * - `subscribe()` and `psubscribe()` return cold Observables: the first subscriber starts the
 *   Redis subscription, the last unsubscribe ends it. All of them share one subscriber connection.
 * - On a Cluster of Redis 7+, channels are sharded (SPUBLISH/SSUBSCRIBE) unless
 *   `pubsub.sharded` is `false`.
 *
 * Delivery is at most once: a message published while the subscriber is disconnected is lost.
 * Subscriptions are restored after a reconnect, and `reconnected` emits so that users (a near
 * cache, for example) can make up for what they may have missed. Use `StreamService` for events
 * that must not be lost.
 *
 * A message that cannot be decoded is logged (without its content) and dropped. Subscribers of a
 * channel share one decoded value: treat it as read-only.
 *
 * When Redis cannot be reached, `publish()` rejects at once with a `RedisUnavailableError` (503),
 * logged once; subscriptions wait for the connection. Channel names must be non-empty,
 * well-formed Unicode.
 *
 * @example
 * this.pubsub.subscribe<OrderPlaced>('orders').subscribe((order) => this.notify(order));
 * await this.pubsub.publish('orders', { id: 42, total: 99.5 });
 */
@Injectable()
export class PubSubService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:PubSub');
  private readonly messages: CountedMetric;
  private readonly outage = new OutageLog(
    this.logger,
    'pub/sub',
    'publish() fails with RedisUnavailableError (503) and subscriptions wait',
  );
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly reconnectedSubject = new Subject<void>();
  private listening = false;
  private closing = false;
  /** Whether channels are sharded, once known. */
  private sharded: boolean | undefined;
  /** A subscription's wait for the connection, to learn whether channels are sharded. */
  private shardingOnceReady: Promise<boolean> | undefined;
  /** SUBSCRIBE and UNSUBSCRIBE go out in the order the Observables asked for them. */
  private commandChain: Promise<unknown> = Promise.resolve();

  /** Emits each time the subscriber connection is back after a disconnect: messages may have been missed. */
  readonly reconnected: Observable<void> = this.reconnectedSubject.asObservable();

  constructor(
    private readonly connections: RedisConnections,
    @Inject(CORE_OPTIONS) private readonly options: ResolvedCoreOptions,
    @Inject(PUBSUB_OPTIONS) private readonly settings: ResolvedPubSubOptions,
    metrics: RedisMetrics,
  ) {
    this.messages = new CountedMetric(metrics, {
      name: 'pubsub_messages_total',
      help: 'Messages published (out) and delivered to local subscriptions (in)',
      labelNames: ['direction'],
    });
  }

  /**
   * Publishes a message, encoded with the module's codec. Never waits for a connection.
   * @returns how many subscribers received it (on a Cluster without sharding: on one node only).
   * @throws RedisUnavailableError (503) when Redis cannot be reached (fail closed: catch it if a
   * lost message is acceptable); InvalidOptionError naming `channel`; any other error of Redis as it is.
   * @example
   * await this.pubsub.publish('orders', { id: 42 });
   */
  async publish(channel: string, message: unknown): Promise<number> {
    const redisName = this.options.keyPrefix + toTextArgument('channel', channel);
    const payload = this.options.codec.encode(message, redisName);
    const receivers = await this.outage.guard(this.send(redisName, payload));
    this.messages.add(OUT);
    return receivers;
  }

  /**
   * Messages published on one channel.
   * @example
   * this.pubsub.subscribe<Notification>(`user:${id}`).pipe(take(1)).subscribe(console.log);
   */
  subscribe<T = unknown>(channel: string): Observable<T> {
    return this.observe<T>('channel', toTextArgument('channel', channel));
  }

  /**
   * Messages published on every channel matching a glob pattern, with the channel (without the key
   * prefix). Not available with sharded pub/sub.
   * @example
   * this.pubsub.psubscribe<OrderEvent>('orders.*').subscribe(({ channel, message }) => ...);
   */
  psubscribe<T = unknown>(pattern: string): Observable<PatternMessage<T>> {
    return this.observe<PatternMessage<T>>('pattern', toTextArgument('pattern', pattern));
  }

  /**
   * Resolves once Redis has confirmed the subscription to `channel` that a current `subscribe()`
   * made: from then on, nothing published on it is missed (while the connection holds).
   * @example
   * this.pubsub.subscribe('orders').subscribe(handle);
   * await this.pubsub.whenSubscribed('orders');
   */
  whenSubscribed(channel: string): Promise<void> {
    const subscription = this.subscriptions.get(`channel:${this.options.keyPrefix}${channel}`);
    return subscription
      ? subscription.confirmed
      : Promise.reject(new RedisPatternsError(`There is no subscription to "${channel}"; call subscribe() first.`));
  }

  /** Completes every subscription before the connections close (which ends them in Redis too). */
  beforeApplicationShutdown(): void {
    this.closing = true;
    const subscriptions = [...this.subscriptions.values()];
    this.subscriptions.clear();
    for (const subscription of subscriptions) for (const subscriber of subscription.subscribers) subscriber.complete();
    this.reconnectedSubject.complete();
  }

  private observe<T>(kind: Kind, name: string): Observable<T> {
    return new Observable<T>((subscriber) => {
      const redisName = this.options.keyPrefix + name;
      const id = `${kind}:${redisName}`;
      let subscription = this.subscriptions.get(id);
      if (!subscription) {
        let confirm!: (done: Promise<unknown>) => void;
        const confirmed = new Promise<void>((resolve, reject) => (confirm = (done) => void done.then(() => resolve(), reject)));
        subscription = { kind, redisName, subscribers: new Set(), confirmed };
        confirmed.catch(() => undefined); // observed through the Observable's error
        this.subscriptions.set(id, subscription);
        confirm(this.startRedisSubscription(id, subscription));
      }
      subscription.subscribers.add(subscriber as Subscriber<unknown>);
      return () => {
        if (this.closing) return;
        const current = this.subscriptions.get(id);
        if (!current?.subscribers.delete(subscriber as Subscriber<unknown>) || current.subscribers.size > 0) return;
        this.subscriptions.delete(id);
        this.endRedisSubscription(current);
      };
    });
  }

  private startRedisSubscription(id: string, subscription: Subscription): Promise<unknown> {
    const fail = (error: unknown) => {
      if (this.subscriptions.get(id) !== subscription) return;
      this.subscriptions.delete(id);
      const reported = this.outage.toError(error);
      for (const subscriber of subscription.subscribers) subscriber.error(reported);
    };
    const done = this.inOrder(() => this.isShardedOnceReady()).then((sharded) => {
      if (subscription.kind === 'pattern' && sharded) {
        throw new RedisPatternsError(
          `Cannot subscribe to the pattern "${subscription.redisName}": pattern subscriptions cannot be sharded. ` +
            'Set pubsub.sharded to false to use plain pub/sub on the Cluster.',
        );
      }
      const subscriberClient = this.subscriberClient();
      if (subscription.kind === 'pattern') return subscriberClient.psubscribe(subscription.redisName);
      return sharded ? subscriberClient.ssubscribe(subscription.redisName) : subscriberClient.subscribe(subscription.redisName);
    });
    done.catch(fail);
    return done;
  }

  /** Runs `step` after every step queued before it, whatever their outcome. */
  private inOrder<T>(step: () => Promise<T>): Promise<T> {
    const result = this.commandChain.then(step, step);
    this.commandChain = result.catch(() => undefined);
    return result;
  }

  private endRedisSubscription(subscription: Subscription): void {
    const client = this.subscriberClient();
    const done = this.inOrder(async () => {
      if (subscription.kind === 'pattern') return client.punsubscribe(subscription.redisName);
      return (await this.isShardedOnceReady()) ? client.sunsubscribe(subscription.redisName) : client.unsubscribe(subscription.redisName);
    });
    done.catch((error: unknown) => {
      // At shutdown the connection is closing, which ends the subscription anyway.
      if (this.closing) return;
      this.logger.warn(`Could not end the Redis subscription to "${subscription.redisName}": ${describeError(error)}`);
    });
  }

  /** The subscriber connection, with the message listeners attached on first use. */
  private subscriberClient(): RedisClient {
    const client = this.connections.subscriber();
    if (this.listening) return client;
    this.listening = true;
    const binary = this.options.codec.binary === true;
    const suffix = binary ? 'Buffer' : '';
    client.on(`message${suffix}`, (channel: string | Buffer, raw: string | Buffer) =>
      this.deliver('channel', String(channel), String(channel), raw),
    );
    client.on(`smessage${suffix}`, (channel: string | Buffer, raw: string | Buffer) =>
      this.deliver('channel', String(channel), String(channel), raw),
    );
    client.on(`pmessage${suffix}`, (pattern: string | Buffer, channel: string | Buffer, raw: string | Buffer) =>
      this.deliver('pattern', String(pattern), String(channel), raw),
    );
    // A single connection reports close, then ready; a Cluster's per-shard subscribers report a
    // lost subscriber, then subscribersReady once every subscription is restored.
    let disconnected = false;
    const lost = () => {
      disconnected = true;
    };
    const back = () => {
      if (!disconnected || this.closing) return;
      disconnected = false;
      this.logger.warn('The subscriber connection is back; messages published while it was down were missed');
      this.reconnectedSubject.next();
    };
    for (const event of ['close', '-subscriber', 'nodeError']) client.on(event, lost);
    for (const event of ['ready', 'subscribersReady']) client.on(event, back);
    return client;
  }

  private deliver(kind: Kind, redisName: string, channel: string, raw: string | Buffer): void {
    const subscription = this.subscriptions.get(`${kind}:${redisName}`);
    if (!subscription) return;
    let message: unknown;
    try {
      message = this.options.codec.decode(raw, channel);
    } catch {
      // The parser's message may quote the payload, so it is not logged.
      this.logger.warn(`Dropped a message on "${channel}" that the codec could not decode`);
      return;
    }
    const value = kind === 'pattern' ? { channel: channel.slice(this.options.keyPrefix.length), message } : message;
    this.messages.add(IN);
    for (const subscriber of subscription.subscribers) subscriber.next(value);
  }

  /** For subscriptions, which wait for the connection anyway. */
  private async isShardedOnceReady(): Promise<boolean> {
    if (this.sharded !== undefined) return this.sharded;
    this.shardingOnceReady ??= untilReady(this.connections.get())
      .then(() => this.detectSharding())
      .finally(() => {
        this.shardingOnceReady = undefined;
      });
    return (this.sharded = await this.shardingOnceReady);
  }

  private async send(redisName: string, payload: string | Buffer): Promise<number> {
    const client = this.connections.get();
    const sharded = this.sharded ?? (this.sharded = await this.detectSharding());
    return sharded ? ((await client.spublish(redisName, payload)) as number) : client.publish(redisName, payload);
  }

  private async detectSharding(): Promise<boolean> {
    const { sharded } = this.settings;
    if (sharded !== 'auto') return sharded;
    const client = this.connections.get();
    if (!isCluster(client)) return false;
    // A Cluster that is not connected cannot tell its version: Redis is away, which is no bug.
    if (client.status !== 'ready') throw new RedisUnavailableError('pub/sub', 'disconnected');
    return (await redisMajorVersion(client)) >= 7;
  }
}
