import { DiscoveryService } from '@nestjs/core';

/** What an `@OnMessage` handler listens to: a channel, or `{ pattern }`. */
export type OnMessageTarget = string | { pattern: string };

const OnMessageMetadata = DiscoveryService.createDecorator<OnMessageTarget>();

/** The discoverable decorator behind {@link OnMessage}, for the explorer. */
export const ON_MESSAGE = OnMessageMetadata;

/**
 * Calls the method for each message published on a channel (or on channels matching
 * `{ pattern }`). Works on any singleton provider or controller; the handler receives the
 * decoded message and the channel. An error thrown by the handler is logged, and the
 * subscription goes on.
 *
 * @example
 * @Injectable()
 * export class Notifier {
 *   @OnMessage('orders')
 *   async onOrder(order: OrderPlaced) { ... }
 *
 *   @OnMessage({ pattern: 'users.*' })
 *   onUserEvent(event: UserEvent, channel: string) { ... }
 * }
 */
export const OnMessage = (target: OnMessageTarget): MethodDecorator => OnMessageMetadata(target);
