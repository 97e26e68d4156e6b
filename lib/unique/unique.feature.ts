import { defineFeature } from '../core/feature.js';
import { getUniqueCounterToken } from './unique.decorator.js';
import type { UniqueCounterOptions } from './unique.options.js';
import { UniqueCounterService } from './unique.service.js';

/** Unique counts: `UniqueCounterService`, and counters declared by name under `uniqueCounters` for `@InjectUniqueCounter` and `@CountUnique`. Their keys must not be evicted. */
export const uniqueCounterFeature = defineFeature({
  name: 'unique counters',
  providers: [UniqueCounterService],
  exports: [UniqueCounterService],
  named: {
    extra: 'uniqueCounters',
    provider: (name, options: UniqueCounterOptions) => ({
      provide: getUniqueCounterToken(name),
      inject: [UniqueCounterService],
      useFactory: (counters: UniqueCounterService) => counters.declare(name, options),
    }),
  },
  keys: { durability: 'durable', inUse: (ref) => ref.get(UniqueCounterService).inUse },
  keySegments: ['uc'],
});
