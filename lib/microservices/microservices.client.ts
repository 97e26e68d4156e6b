import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { StreamService, type StreamTail } from '../stream/stream.service.js';
import { RedisStreamsTimeoutError } from './microservices.errors.js';
import {
  instanceName,
  resolveClientOptions,
  moduleServices,
  type ModuleServices,
  type RedisStreamsClientOptions,
  type ResolvedClientOptions,
} from './microservices.options.js';
import { replyStreamOf, type WireEntry } from './microservices.wire.js';

type ReplyCallback = (packet: WritePacket) => void;

/**
 * A `ClientProxy` for `RedisStreamsServer`: `emit()` appends the event to its pattern's stream
 * (resolving once Redis has it: it is then durable, whether or not a server runs), `send()` adds
 * a request with a correlation id and this instance's reply stream, and relays each reply (several
 * for a handler that returns an observable). A request without a reply within `timeout` fails with
 * a `RedisStreamsTimeoutError`. The reply stream expires once this instance stops reading it.
 *
 * @example
 * { provide: 'FULFILMENT', useFactory: (app: ModuleRef) => new RedisStreamsClient({ app, timeout: '5s' }), inject: [ModuleRef] }
 * // then
 * this.fulfilment.emit('order.placed', order);
 * const eta = await lastValueFrom(this.fulfilment.send<number>('delivery.eta', { zip: '10115' }));
 */
export class RedisStreamsClient extends ClientProxy {
  private readonly settings: ResolvedClientOptions;
  private readonly app: ModuleServices | (() => ModuleServices);
  private readonly replyStream = replyStreamOf(instanceName());
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private streams: StreamService | undefined;
  private replies: StreamTail | undefined;

  constructor(options: RedisStreamsClientOptions) {
    super();
    this.settings = resolveClientOptions(options);
    this.app = options.app;
    this.initializeSerializer({});
    this.initializeDeserializer({});
  }

  /** Finds the module's `StreamService`; replies are read from the first `send()` on. */
  async connect(): Promise<StreamService> {
    if (this.streams !== undefined) return this.streams;
    const streams: StreamService = moduleServices(this.app).get(StreamService, { strict: false });
    this.streams = streams;
    this._status$.next('connected');
    return streams;
  }

  /** Stops reading replies; requests still waiting fail with an error saying the client closed. */
  async close(): Promise<void> {
    const closed = new Error('RedisStreamsClient was closed before the reply came.');
    for (const [id, callback] of this.routingMap) this.settle(id, callback as ReplyCallback, { err: closed });
    await this.replies?.stop();
    this.replies = undefined;
    this._status$.next('disconnected');
  }

  /** The module's `StreamService` this client writes through. @example client.unwrap<StreamService>() */
  unwrap<T>(): T {
    if (this.streams === undefined) throw new Error('RedisStreamsClient is not connected yet.');
    return this.streams as T;
  }

  protected publish(partialPacket: ReadPacket, callback: ReplyCallback): () => void {
    const packet = this.assignPacketId(partialPacket);
    const pattern = this.normalizePattern(packet.pattern);
    const streams = this.streams as StreamService;
    this.replies ??= streams.tail<unknown>(this.replyStream, (reply) => this.onReply(reply));
    this.routingMap.set(packet.id, callback);
    this.timers.set(
      packet.id,
      setTimeout(
        () => this.settle(packet.id, callback, { err: new RedisStreamsTimeoutError(pattern, this.settings.timeoutMs) }),
        this.settings.timeoutMs,
      ),
    );
    const entry: WireEntry = {
      packet: this.serializer.serialize(packet),
      replyTo: this.replyStream,
      deadline: Date.now() + this.settings.timeoutMs,
    };
    streams
      .add(this.settings.streamOf(pattern), entry, this.settings.trim)
      .catch((err: unknown) => this.settle(packet.id, callback, { err }));
    return () => this.forget(packet.id);
  }

  protected async dispatchEvent<T = unknown>(packet: ReadPacket): Promise<T> {
    const streams = await this.connect();
    const entry: WireEntry = { packet: this.serializer.serialize(packet) };
    return (await streams.add(this.settings.streamOf(this.normalizePattern(packet.pattern)), entry, this.settings.trim)) as T;
  }

  private async onReply(raw: unknown): Promise<void> {
    const reply = (await this.deserializer.deserialize(raw)) as WritePacket & { id: string };
    const callback = this.routingMap.get(reply.id) as ReplyCallback | undefined;
    if (callback === undefined) return; // timed out or unsubscribed
    if (reply.isDisposed || reply.err !== undefined) this.forget(reply.id);
    callback(reply);
  }

  private settle(id: string, callback: ReplyCallback, reply: WritePacket): void {
    if (!this.routingMap.has(id)) return;
    this.forget(id);
    callback({ ...reply, isDisposed: true });
  }

  private forget(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.routingMap.delete(id);
  }
}
