import { activityFeature } from '../activity/activity.feature.js';
import { bloomFeature } from '../bloom/bloom.feature.js';
import { cacheFeature } from '../cache/cache.feature.js';
import { geoFeature } from '../geo/geo.feature.js';
import { idempotencyFeature } from '../idempotency/idempotency.feature.js';
import { insightsFeature } from '../insights/insights.feature.js';
import { leaderboardFeature } from '../leaderboard/leaderboard.feature.js';
import { lockFeature } from '../lock/lock.feature.js';
import { metricsFeature } from '../metrics/metrics.feature.js';
import { queueFeature } from '../queue/queue.feature.js';
import { pubsubFeature } from '../pubsub/pubsub.feature.js';
import { rateLimitFeature } from '../ratelimit/ratelimit.feature.js';
import { scheduleFeature } from '../schedule/schedule.feature.js';
import { sessionFeature } from '../session/session.feature.js';
import { streamFeature } from '../stream/stream.feature.js';
import { transactionFeature } from '../transaction/transaction.feature.js';
import { uniqueCounterFeature } from '../unique/unique.feature.js';
import { writeBehindFeature } from '../writebehind/write-behind.feature.js';

/**
 * Every feature of the module, each declared in its folder's `<feature>.feature.ts`. A new feature
 * is a new folder and one line here: its section of the options, its providers and exports, its
 * named instances and its keys' needs all come from its definition.
 */
export const FEATURES = [
  pubsubFeature,
  streamFeature,
  cacheFeature,
  rateLimitFeature,
  lockFeature,
  sessionFeature,
  leaderboardFeature,
  bloomFeature,
  uniqueCounterFeature,
  geoFeature,
  activityFeature,
  queueFeature,
  transactionFeature,
  writeBehindFeature,
  metricsFeature,
  insightsFeature,
  idempotencyFeature,
  scheduleFeature,
] as const;
