import { DiscoveryService } from '@nestjs/core';
import type { ConsumeOptions } from './stream.interfaces.js';

/** What an `@OnStreamMessage` handler consumes. */
export interface OnStreamMessageTarget extends ConsumeOptions {
  stream: string;
  group: string;
}

/** The discoverable decorator behind {@link OnStreamMessage}, for the explorer. */
export const ON_STREAM_MESSAGE = DiscoveryService.createDecorator<OnStreamMessageTarget>();

/**
 * Consumes a stream as a member of a consumer group, from application start to shutdown. The
 * method receives each event and its `StreamMessageInfo`; returning (or resolving) acknowledges
 * the event, throwing has it delivered again (see `StreamService.consume`).
 *
 * @example
 * @Injectable()
 * export class Billing {
 *   @OnStreamMessage('orders', 'billing', { maxDeliveries: 3 })
 *   async bill(order: Order, { id, deliveries }: StreamMessageInfo) { ... }
 * }
 */
export const OnStreamMessage = (stream: string, group: string, options: ConsumeOptions = {}): MethodDecorator =>
  ON_STREAM_MESSAGE({ ...options, stream, group });
