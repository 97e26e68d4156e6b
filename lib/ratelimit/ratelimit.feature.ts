import { defineFeature } from '../core/feature.js';
import { RateLimitGuard } from './ratelimit.guard.js';
import { RateLimitCounts } from './ratelimit.metrics.js';
import { RATE_LIMIT_OPTIONS, type RateLimitOptions } from './ratelimit.options.js';
import { resolveRateLimitOptions } from './ratelimit.options-validator.js';
import { RateLimitService } from './ratelimit.service.js';
import { RedisThrottlerStorage } from './ratelimit.throttler-storage.js';

/**
 * Rate limiting: `RateLimitService`, `@RateLimit` and `RateLimitGuard`, with the `rateLimit`
 * section, and `RedisThrottlerStorage` for @nestjs/throttler.
 */
export const rateLimitFeature = defineFeature({
  name: 'rate limiting',
  section: {
    name: 'rateLimit',
    token: RATE_LIMIT_OPTIONS,
    resolve: (given: RateLimitOptions | undefined) => resolveRateLimitOptions(given),
  },
  providers: [RateLimitCounts, RateLimitService, RateLimitGuard, RedisThrottlerStorage],
  // RateLimitCounts too, so that a subclass of RedisThrottlerStorage in an app's module is made.
  exports: [RateLimitService, RateLimitGuard, RedisThrottlerStorage, RateLimitCounts],
  keySegments: ['rl', 'th'],
});
