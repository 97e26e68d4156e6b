import { Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { map, type Observable, type Subscription } from 'rxjs';
import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { ON_MESSAGE } from './on-message.decorator.js';
import { PubSubService } from './pubsub.service.js';

/** Subscribes every `@OnMessage` method at startup, and unsubscribes them before shutdown. */
@Injectable()
export class OnMessageExplorer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:PubSub');
  private readonly subscriptions: Subscription[] = [];

  constructor(
    private readonly explorer: DecoratedMethodsExplorer,
    private readonly pubsub: PubSubService,
  ) {}

  onApplicationBootstrap(): void {
    for (const { name, metadata, handler } of this.explorer.find(ON_MESSAGE, 'OnMessage')) {
      const messages: Observable<{ channel: string; message: unknown }> =
        typeof metadata === 'string'
          ? this.pubsub.subscribe(metadata).pipe(map((message) => ({ channel: metadata, message })))
          : this.pubsub.psubscribe(metadata.pattern);
      this.subscriptions.push(
        messages.subscribe({
          next: ({ channel, message }) => this.call(name, handler, message, channel),
          error: (error: Error) => this.logger.error(`@OnMessage ${name} stopped: ${error.message}`),
        }),
      );
    }
  }

  beforeApplicationShutdown(): void {
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
  }

  private call(name: string, handler: (...args: unknown[]) => unknown, message: unknown, channel: string): void {
    Promise.resolve()
      .then(() => handler(message, channel))
      .catch((error: unknown) => this.logger.error(`@OnMessage ${name} failed on a message from "${channel}": ${(error as Error)?.message ?? error}`));
  }
}
