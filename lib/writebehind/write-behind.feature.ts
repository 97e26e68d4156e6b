import { defineFeature } from '../core/feature.js';
import { WriteBehindService } from './write-behind.service.js';

/** Write-behind: `@WriteBehind` methods, persisted through a work queue by `WriteBehindService`. Pending writes must not be evicted. */
export const writeBehindFeature = defineFeature({
  name: 'write-behind',
  providers: [WriteBehindService],
  exports: [WriteBehindService],
  keys: { durability: 'durable', inUse: (ref) => ref.get(WriteBehindService).inUse },
  keySegments: ['wb'],
});
