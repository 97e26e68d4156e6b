import { describe, expect, it } from 'vitest';
import { combineRounds, median, roundRatio, type RoundRates } from '../../bench/harness.js';

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

  it('combines the rounds of several processes: ratios over all of them, round by round against the baseline of the same process', () => {
    const baseline = { name: 'raw', group: 'g', baseline: true };
    const ours = { name: 'ours', group: 'g' };
    const rounds = (scenario: RoundRates['scenario'], rates: number[], concurrency = 64): RoundRates => ({
      scenario,
      concurrency,
      operations: rates.reduce((sum, rate) => sum + rate, 0),
      seconds: rates.length,
      rates,
    });
    const measured = [
      // Process 1: a slow phase for both rows; process 2: fast.
      rounds(baseline, [50, 50]),
      rounds(ours, [60, 40]),
      rounds(baseline, [100, 100]),
      rounds(ours, [110, 130]),
      rounds(baseline, [10], 1),
      rounds(ours, [9], 1),
    ];
    expect(combineRounds(measured)).toEqual([
      { scenario: baseline, concurrency: 64, opsPerSecond: 75, ratio: 1, spread: [1, 1] },
      // Per-round ratios 1.2, 0.8, 1.1, 1.3: the median of four is the mean of 1.1 and 1.2.
      { scenario: ours, concurrency: 64, opsPerSecond: 85, ratio: expect.closeTo(1.15, 10) as number, spread: [0.8, 1.3] },
      { scenario: baseline, concurrency: 1, opsPerSecond: 10, ratio: 1, spread: [1, 1] },
      { scenario: ours, concurrency: 1, opsPerSecond: 9, ratio: 0.9, spread: [0.9, 0.9] },
    ]);
  });

  it('gives no ratio to a group without a baseline', () => {
    const [only] = combineRounds([{ scenario: { name: 'a', group: 'g' }, concurrency: 1, operations: 10, seconds: 2, rates: [4, 6] }]);
    expect(only).toEqual({ scenario: { name: 'a', group: 'g' }, concurrency: 1, opsPerSecond: 5, ratio: undefined, spread: undefined });
  });
});
