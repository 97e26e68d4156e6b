import { defineFeature } from '../core/feature.js';
import { INSIGHTS_OPTIONS, type InsightsOptions } from './insights.options.js';
import { resolveInsightsOptions } from './insights.options-validator.js';
import { RedisInsightsService } from './insights.service.js';

/**
 * Server insights: `RedisInsightsService` (snapshot, slow log, big keys), the `redis_*` gauges and
 * the health summary, with the `insights` section (the gauges' refresh interval). It has no keys.
 */
export const insightsFeature = defineFeature({
  name: 'server insights',
  section: {
    name: 'insights',
    token: INSIGHTS_OPTIONS,
    resolve: (given: InsightsOptions | undefined, core) => resolveInsightsOptions(given, core),
  },
  providers: [RedisInsightsService],
  exports: [RedisInsightsService],
});
