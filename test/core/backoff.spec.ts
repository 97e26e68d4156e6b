import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../lib/core/redis-connection.factory.js';

describe('reconnect backoff', () => {
  it('doubles from minDelay up to maxDelay, with up to half of it as jitter', () => {
    for (let attempt = 1; attempt <= 40; attempt++) {
      const capped = Math.min(2_000, 50 * 2 ** (attempt - 1));
      const delays = Array.from({ length: 200 }, () => backoffDelay(attempt, 50, 2_000));
      expect(Math.min(...delays)).toBeGreaterThanOrEqual(Math.floor(capped / 2));
      expect(Math.max(...delays)).toBeLessThanOrEqual(capped);
    }
  });

  it('spreads the delays, so clients do not reconnect in lockstep', () => {
    expect(new Set(Array.from({ length: 100 }, () => backoffDelay(10, 50, 2_000))).size).toBeGreaterThan(20);
  });
});
