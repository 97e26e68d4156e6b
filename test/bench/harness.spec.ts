import { describe, expect, it } from 'vitest';
import { median, roundRatio } from '../../bench/harness.js';

describe('bench harness', () => {
  it('compares two rows round by round: the median of the per-round ratios, with their lowest and highest', () => {
    // The mean of each row (103.3 / 83.3 = 1.24x) would let the baseline's slow third round decide.
    expect(roundRatio([90, 120, 100], [100, 100, 50])).toEqual({ ratio: 1.2, spread: [0.9, 2] });
    // A round where the machine slowed both rows alike does not move the ratio.
    expect(roundRatio([100, 200, 20], [100, 200, 20])).toEqual({ ratio: 1, spread: [1, 1] });
  });

  it('takes the mean of the two middle values of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5])).toBe(5);
  });
});
