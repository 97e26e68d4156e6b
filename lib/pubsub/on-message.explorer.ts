import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { ON_MESSAGE } from './on-message.decorator.js';
import { PubSubService } from './pubsub.service.js';

/** Subscribes every `@OnMessage` method at startup; PubSubService completes them at shutdown. */
@Injectable()
export class OnMessageExplorer implements OnApplicationBootstrap {
  private readonly logger = new Logger('RedisPatterns:PubSub');

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
      messages.subscribe({
        next: ({ channel, message }) => this.call(name, handler, message, channel),
        error: (error: Error) => this.logger.error(`@OnMessage ${name} stopped: ${error.message}`),
      });
    }
  }

  private call(name: string, handler: (...args: unknown[]) => unknown, message: unknown, channel: string): void {
    Promise.resolve()
      .then(() => handler(message, channel))
      .catch((error: unknown) =>
        this.logger.error(`@OnMessage ${name} failed on a message from "${channel}": ${(error as Error)?.message ?? error}`),
      );
  }
}
