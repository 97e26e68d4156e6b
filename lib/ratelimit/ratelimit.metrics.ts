import { Injectable } from '@nestjs/common';
import { CountedMetric, RedisMetrics } from '../core/metrics.js';
import type { RateLimitDecision } from './ratelimit.options.js';

/**
 * What each policy decided, counted by outcome: `allowed`, `limited`, `unchecked` (Redis was
 * away and an `'open'` policy admitted the call) and `unavailable` (a `'closed'` policy answered
 * 503). Reported as `ratelimit_decisions_total{policy, outcome}`; policy names (and throttler
 * names) come from the app's code, so the labels stay bounded. One per module, shared by
 * `RateLimitService` and `RedisThrottlerStorage`.
 */
@Injectable()
export class RateLimitCounts {
  private readonly decisions: CountedMetric;

  constructor(metrics: RedisMetrics) {
    this.decisions = new CountedMetric(metrics, {
      name: 'ratelimit_decisions_total',
      help: 'Rate-limit decisions by policy and outcome (allowed, limited, unchecked, unavailable)',
      labelNames: ['policy', 'outcome'],
    });
  }

  decided(decisions: readonly RateLimitDecision[]): void {
    for (const { policy, unavailable, allowed } of decisions)
      this.decisions.add({ policy, outcome: unavailable ? 'unchecked' : allowed ? 'allowed' : 'limited' });
  }

  unavailable(policy: string): void {
    this.decisions.add({ policy, outcome: 'unavailable' });
  }

  /** A hit of a @nestjs/throttler throttler counted by `RedisThrottlerStorage`, as the policy `throttler:<name>`. */
  throttled(throttlerName: string, outcome: 'allowed' | 'limited' | 'unchecked' | 'unavailable'): void {
    this.decisions.add({ policy: `throttler:${throttlerName}`, outcome });
  }
}
