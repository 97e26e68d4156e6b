import { Injectable, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { DecoratedMethodsExplorer, type DecoratedMethod } from '../core/decorated-methods.explorer.js';
import { ON_STREAM_MESSAGE, type OnStreamMessageTarget } from './on-stream-message.decorator.js';
import { StreamService } from './stream.service.js';

/**
 * Finds every `@OnStreamMessage` method at init and starts a consumer for each at bootstrap;
 * StreamService stops them at shutdown.
 */
@Injectable()
export class OnStreamMessageExplorer implements OnModuleInit, OnApplicationBootstrap {
  private methods: DecoratedMethod<OnStreamMessageTarget>[] = [];

  constructor(
    private readonly explorer: DecoratedMethodsExplorer,
    private readonly streams: StreamService,
  ) {}

  /** Whether the app has `@OnStreamMessage` consumers (known after init). */
  get inUse(): boolean {
    return this.methods.length > 0;
  }

  onModuleInit(): void {
    this.methods = this.explorer.find(ON_STREAM_MESSAGE, 'OnStreamMessage');
  }

  async onApplicationBootstrap(): Promise<void> {
    await Promise.all(
      this.methods.map(({ metadata: { stream, group, ...options }, handler }) => this.streams.consume(stream, group, handler, options)),
    );
  }
}
