import { describe, expect, it } from 'vitest';
import type { RateLimitDecision } from '../../lib/index.js';
import { rateLimitHeaders } from '../../lib/ratelimit/ratelimit.headers.js';

const decision = (policy: string, overrides: Partial<RateLimitDecision> = {}): RateLimitDecision => ({
  policy,
  allowed: true,
  limit: 10,
  remaining: 7,
  resetMs: 1500,
  retryAfterMs: 0,
  windowMs: 60_000,
  ...overrides,
});

describe('rate-limit headers', () => {
  const decisions = [decision('per-minute'), decision('per-hour', { limit: 100, remaining: 3, resetMs: 1_800_001, windowMs: 3_600_000 })];

  it("'both': the IETF fields for every policy and the legacy ones for the tightest", () => {
    expect(rateLimitHeaders(decisions, 'both')).toEqual([
      ['RateLimit-Policy', '"per-minute";q=10;w=60, "per-hour";q=100;w=3600'],
      ['RateLimit', '"per-minute";r=7;t=2, "per-hour";r=3;t=1801'],
      ['X-RateLimit-Limit', '100'],
      ['X-RateLimit-Remaining', '3'],
      ['X-RateLimit-Reset', '1801'],
    ]);
  });

  it("'ietf', 'legacy' and false send only their own set", () => {
    expect(rateLimitHeaders(decisions, 'ietf').map(([name]) => name)).toEqual(['RateLimit-Policy', 'RateLimit']);
    expect(rateLimitHeaders(decisions, 'legacy').map(([name]) => name)).toEqual([
      'X-RateLimit-Limit',
      'X-RateLimit-Remaining',
      'X-RateLimit-Reset',
    ]);
    expect(rateLimitHeaders(decisions, false)).toEqual([]);
  });

  it('adds Retry-After (seconds, rounded up, the longest rejecting wait) even with no limit headers', () => {
    const rejected = [
      decision('a', { allowed: false, remaining: 0, retryAfterMs: 1200 }),
      decision('b', { allowed: false, remaining: 0, retryAfterMs: 4001 }),
    ];
    expect(rateLimitHeaders(rejected, false)).toEqual([['Retry-After', '5']]);
    expect(rateLimitHeaders([decision('never', { allowed: false, retryAfterMs: undefined })], false)).toEqual([]);
  });

  it('quotes policy names as Structured Field strings, and sends no limits for an unchecked call', () => {
    expect(rateLimitHeaders([decision('say "hi"\\é')], 'ietf')[0]).toEqual(['RateLimit-Policy', '"say \\"hi\\"\\\\?";q=10;w=60']);
    expect(rateLimitHeaders([decision('x', { unavailable: true })], 'both')).toEqual([]);
  });
});
