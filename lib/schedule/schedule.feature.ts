import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { defineFeature } from '../core/feature.js';
import { LeaderService } from './leader.service.js';
import { SCHEDULE_OPTIONS, type ScheduleOptions } from './schedule.options.js';
import { resolveScheduleOptions, type ResolvedScheduleOptions } from './schedule.options-validator.js';
import { ScheduledJobsService } from './schedule.service.js';

/**
 * Scheduled jobs once per fire (`ScheduledJobsService`, `@OncePerFire`) and leaders
 * (`LeaderService`, `@OnlyOnLeader`), with the `schedule` section. A job's claims must not be
 * evicted (an evicted claim runs a fire twice): the app uses them when it has a `schedule` section
 * or a method with one of the decorators. Leaders' leases are locks (the lock feature's keys).
 */
export const scheduleFeature = defineFeature({
  name: 'scheduled jobs',
  section: {
    name: 'schedule',
    token: SCHEDULE_OPTIONS,
    resolve: (given: ScheduleOptions | undefined) => resolveScheduleOptions(given),
  },
  providers: [ScheduledJobsService, LeaderService],
  exports: [ScheduledJobsService, LeaderService],
  keys: {
    durability: 'durable',
    inUse: (ref) => {
      const explorer = ref.get(DecoratedMethodsExplorer);
      return (
        ref.get<ResolvedScheduleOptions>(SCHEDULE_OPTIONS).configured ||
        explorer.usesService(ScheduledJobsService) ||
        explorer.usesService(LeaderService)
      );
    },
  },
  keySegments: ['sj'],
});
