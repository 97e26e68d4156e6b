import { defineFeature } from '../core/feature.js';
import { getActivityTrackerToken } from './activity.decorator.js';
import type { ActivityTrackerOptions } from './activity.options.js';
import { ActivityService } from './activity.service.js';

/** Activity bitmaps: `ActivityService`, and trackers declared by name under `activity` for `@InjectActivityTracker`. Their keys must not be evicted. */
export const activityFeature = defineFeature({
  name: 'activity',
  providers: [ActivityService],
  exports: [ActivityService],
  named: {
    extra: 'activity',
    provider: (name, options: ActivityTrackerOptions) => ({
      provide: getActivityTrackerToken(name),
      inject: [ActivityService],
      useFactory: (activity: ActivityService) => activity.tracker(name, options),
    }),
  },
  keys: { durability: 'durable', inUse: (ref) => ref.get(ActivityService).inUse },
  keySegments: ['act'],
});
