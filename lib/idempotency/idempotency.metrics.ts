import { CountedMetric, type RedisMetrics } from '../core/metrics.js';
import type { ClaimEnd } from './idempotency.claim.js';

/**
 * How a request with an idempotency key began: `executed` (it ran), `replayed`, `in-progress`
 * (409), `mismatch` (422), `unavailable` (503: Redis down, failing closed) or `unchecked` (Redis
 * down, failing open: it ran without idempotency).
 */
export type BeginOutcome = 'executed' | 'replayed' | 'in-progress' | 'mismatch' | 'unavailable' | 'unchecked';

/**
 * Idempotency metrics: `idempotency_requests_total{outcome}` (how requests with a key began) and
 * `idempotency_claims_ended_total{end}` (how the ones that ran ended: `stored`, `released`, `lost`
 * or `failed`).
 */
export class IdempotencyMetrics {
  private readonly requests: CountedMetric;
  private readonly ends: CountedMetric;

  constructor(metrics: RedisMetrics) {
    this.requests = new CountedMetric(metrics, {
      name: 'idempotency_requests_total',
      help: 'Requests with an idempotency key, by how they began (executed, replayed, in-progress, mismatch, unavailable, unchecked)',
      labelNames: ['outcome'],
    });
    this.ends = new CountedMetric(metrics, {
      name: 'idempotency_claims_ended_total',
      help: 'Requests that ran with an idempotency key, by how they ended (stored, released, lost, failed)',
      labelNames: ['end'],
    });
  }

  begun(outcome: BeginOutcome): void {
    this.requests.add({ outcome });
  }

  claimEnded(end: ClaimEnd): void {
    this.ends.add({ end });
  }
}
