import { InvalidOptionError } from '../core/errors.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { LeaderService } from './leader.service.js';
import { resolveJobOptions, resolveLeaderOptions } from './schedule.options-validator.js';
import type { LeaderOptions, OncePerFireOptions } from './schedule.options.js';
import { ScheduledJobsService } from './schedule.service.js';
import { ONCE_PER_FIRE, type OncePerFireTarget } from './schedule.target.js';

/**
 * Beside @nestjs/schedule's `@Cron(expression, { name })` or `@Interval(name, ms)`: one instance
 * runs each fire, fleet-wide (see `ScheduledJobsService`). The fire is claimed by the job's name
 * and its scheduled instant, in one round trip; the run holds a lease renewed while it runs, and is
 * recorded in the job's history. A job without a name is refused at startup. A failed run is
 * logged once and recorded, never thrown to the scheduler.
 *
 * @example
 * @Cron('0 3 * * *', { name: 'nightly-report', timeZone: 'Europe/Paris' })
 * @OncePerFire({ catchUp: 'last' })
 * async nightlyReport() { ... }
 *
 * @Interval('sync-prices', 10_000)
 * @OncePerFire({ overlap: 'queue' })
 * async syncPrices() { ... }
 */
export function OncePerFire(options: OncePerFireOptions = {}): TypedMethodDecorator<[]> {
  return (target, propertyKey, descriptor) => {
    const where = `@OncePerFire on ${(target as { constructor: { name: string } }).constructor.name}.${String(propertyKey)}`;
    resolveJobOptions(options, where);
    const marker: OncePerFireTarget = {
      where,
      options,
      original: descriptor.value as unknown as OncePerFireTarget['original'],
      wrapped: {},
    };
    wrapMethod('OncePerFire', ScheduledJobsService, target, propertyKey, descriptor, (jobs, call) => jobs.fireDecorated(marker, call));
    marker.wrapped = descriptor.value as object;
    ONCE_PER_FIRE(marker)(target, propertyKey, descriptor);
    return descriptor;
  };
}

/**
 * Runs the method only on the leader of `name` (see `LeaderService`); elsewhere it returns
 * undefined without running. The instance takes part in the election from the method's first call.
 *
 * @example
 * @Interval('feed', 1_000)
 * @OnlyOnLeader('feed-poller')
 * async pollFeed() { ... }
 */
export function OnlyOnLeader(name: string, options: LeaderOptions = {}): TypedMethodDecorator<[]> {
  if (typeof name !== 'string' || name === '') throw new InvalidOptionError('@OnlyOnLeader name', 'a non-empty string', name);
  resolveLeaderOptions(options, { leaseMs: 1 });
  return (target, propertyKey, descriptor) =>
    wrapMethod('OnlyOnLeader', LeaderService, target, propertyKey, descriptor, async (leaders, call) =>
      (await leaders.leads(name, options)) ? call() : undefined,
    );
}
