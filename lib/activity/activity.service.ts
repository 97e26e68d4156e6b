import { Injectable, Logger } from '@nestjs/common';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { toInstanceName } from '../core/validation.js';
import type { ActivityTrackerOptions } from './activity.options.js';
import { resolveActivityOptions } from './activity.options-validator.js';
import { ActivityTracker } from './activity.tracker.js';

/**
 * Activity bitmaps: exact daily (hourly, weekly, monthly) actives, actives over several periods,
 * and cohort retention, one bit per id per period.
 *
 * @example
 * const users = this.activity.tracker('users', { period: 'day', retain: 35 });
 * await users.mark(userId);
 * const { periods } = await users.retention(Date.now() - 7 * 86_400_000, [1, 7]);
 */
@Injectable()
export class ActivityService {
  private readonly redis: RedisClient;
  private trackersMade = 0;
  /** Where trackers log (bitmap-size warnings, outages). */
  readonly logger = new Logger('RedisPatterns:Activity');
  /** Outages of activity tracking, logged once each. */
  readonly outage = new OutageLog(this.logger, 'activity tracking', 'calls reject with RedisUnavailableError (503)');

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
  ) {
    this.redis = connections.get();
  }

  /** Whether a tracker was made (declared trackers are made at startup). */
  get inUse(): boolean {
    return this.trackersMade > 0;
  }

  /**
   * The tracker called `name`. Its options are checked here; give the same options wherever the
   * tracker is used (they are not stored in Redis; `ids` above all must never change).
   * @example
   * const logins = this.activity.tracker('logins', { period: 'hour', retain: 48, ids: 'integer' });
   */
  tracker(name: string, options: ActivityTrackerOptions = {}): ActivityTracker {
    toInstanceName(name, 'a tracker');
    const resolved = resolveActivityOptions(options, `activity.${name}`);
    this.trackersMade++;
    return new ActivityTracker(name, this.redis, this.keys, resolved, this.outage, this.logger);
  }
}
