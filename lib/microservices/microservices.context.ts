import { BaseRpcContext } from '@nestjs/microservices';

/** Where a message came from, as `RedisStreamsContext` exposes it. */
export interface RedisStreamsMessage {
  /** The pattern the message was sent with. */
  pattern: string;
  /** The stream it travelled on. */
  stream: string;
  /** Its entry id in that stream, e.g. `1732440000000-0`. */
  entryId: string;
  /** The consumer group that handles it (the service's name, or the instance's in broadcast mode). */
  group: string;
  /** How many times the entry has been delivered, this delivery included. */
  deliveries: number;
}

/**
 * The context of a message handled by `RedisStreamsServer`, injected with `@Ctx()`.
 *
 * @example
 * @EventPattern('order.placed')
 * ship(@Payload() order: Order, @Ctx() context: RedisStreamsContext) {
 *   if (context.getDeliveries() > 1) this.logger.warn(`retry of ${context.getEntryId()}`);
 * }
 */
export class RedisStreamsContext extends BaseRpcContext<[RedisStreamsMessage]> {
  /** @example context.getPattern() // 'order.placed' */
  getPattern(): string {
    return this.args[0].pattern;
  }

  /** @example context.getStream() // 'ms:order.placed' */
  getStream(): string {
    return this.args[0].stream;
  }

  /** @example context.getEntryId() // '1732440000000-0' */
  getEntryId(): string {
    return this.args[0].entryId;
  }

  /** @example context.getGroup() // 'fulfilment' */
  getGroup(): string {
    return this.args[0].group;
  }

  /** @example if (context.getDeliveries() > 1) this.logger.warn('delivered again') */
  getDeliveries(): number {
    return this.args[0].deliveries;
  }
}
