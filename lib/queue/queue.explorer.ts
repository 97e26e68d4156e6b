import { Injectable, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { DecoratedMethodsExplorer, type DecoratedMethod } from '../core/decorated-methods.explorer.js';
import { ON_QUEUE_JOB, type OnQueueJobTarget } from './queue.decorator.js';
import { QueueService } from './queue.service.js';

/**
 * Finds every `@OnQueueJob` method at init (checking its queue and options) and starts a worker
 * for each at bootstrap; QueueService stops them at shutdown.
 */
@Injectable()
export class OnQueueJobExplorer implements OnModuleInit, OnApplicationBootstrap {
  private methods: DecoratedMethod<OnQueueJobTarget>[] = [];

  constructor(
    private readonly explorer: DecoratedMethodsExplorer,
    private readonly queues: QueueService,
  ) {}

  /** Whether the app has `@OnQueueJob` workers (known after init). */
  get inUse(): boolean {
    return this.methods.length > 0;
  }

  onModuleInit(): void {
    this.methods = this.explorer.find(ON_QUEUE_JOB, 'OnQueueJob');
  }

  onApplicationBootstrap(): void {
    const queues = this.methods.map(({ metadata: { queue, ...options }, handler }) => ({
      queue: this.queues.queue(queue),
      options,
      handler,
    }));
    for (const { queue, options, handler } of queues) queue.process(handler, options);
  }
}
