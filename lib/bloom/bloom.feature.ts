import { defineFeature } from '../core/feature.js';
import { getBloomFilterToken } from './bloom.decorator.js';
import { BloomFilterGuard } from './bloom.guard.js';
import type { BloomFilterOptions } from './bloom.options.js';
import { BloomFilterService } from './bloom.service.js';

/** Bloom filters: `BloomFilterService`, `@BloomGuard`, and filters declared by name under `bloomFilters` for `@InjectBloomFilter`. */
export const bloomFeature = defineFeature({
  name: 'Bloom filters',
  providers: [BloomFilterService, BloomFilterGuard],
  exports: [BloomFilterService, BloomFilterGuard],
  named: {
    extra: 'bloomFilters',
    provider: (name, options: BloomFilterOptions) => ({
      provide: getBloomFilterToken(name),
      inject: [BloomFilterService],
      useFactory: (blooms: BloomFilterService) => blooms.filter(name, options),
    }),
  },
  keySegments: ['bf'],
});
