import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { ON_STREAM_MESSAGE } from './on-stream-message.decorator.js';
import { StreamService } from './stream.service.js';

/** Starts a consumer for every `@OnStreamMessage` method; StreamService stops them at shutdown. */
@Injectable()
export class OnStreamMessageExplorer implements OnApplicationBootstrap {
  constructor(
    private readonly explorer: DecoratedMethodsExplorer,
    private readonly streams: StreamService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const methods = this.explorer.find(ON_STREAM_MESSAGE, 'OnStreamMessage');
    await Promise.all(methods.map(({ metadata: { stream, group, ...options }, handler }) => this.streams.consume(stream, group, handler, options)));
  }
}
