import { defineFeature } from '../core/feature.js';
import { getQueueToken } from './queue.decorator.js';
import { OnQueueJobExplorer } from './queue.explorer.js';
import type { QueueOptions } from './queue.options.js';
import { QueueService } from './queue.service.js';

/** Work queues: `QueueService`, `@OnQueueJob`, and queues declared by name under `queues` for `@InjectQueue`. Their keys must not be evicted. */
export const queueFeature = defineFeature({
  name: 'queues',
  providers: [QueueService, OnQueueJobExplorer],
  exports: [QueueService],
  named: {
    extra: 'queues',
    provider: (name, options: QueueOptions) => ({
      provide: getQueueToken(name),
      inject: [QueueService],
      useFactory: (queues: QueueService) => queues.declare(name, options),
    }),
  },
  keys: { durability: 'durable', inUse: (ref) => ref.get(QueueService).inUse || ref.get(OnQueueJobExplorer).inUse },
  keySegments: ['q'],
});
