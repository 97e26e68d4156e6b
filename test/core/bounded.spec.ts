import { describe, expect, it } from 'vitest';
import { mapBounded } from '../../lib/core/bounded.js';

describe('mapBounded', () => {
  it('keeps at most `concurrency` calls in flight, and the results in the order of the items', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapBounded(
      Array.from({ length: 50 }, (_, i) => i),
      4,
      async (item) => {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, item % 3));
        inFlight--;
        return item * 2;
      },
    );
    expect(most).toBe(4);
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
  });

  it('rejects with the first failure, and starts no call after it', async () => {
    const started: number[] = [];
    const outcome = mapBounded(
      Array.from({ length: 20 }, (_, i) => i),
      2,
      async (item) => {
        started.push(item);
        if (item === 3) throw new Error('item 3 failed');
        await new Promise((resolve) => setTimeout(resolve, 1));
        return item;
      },
    );
    await expect(outcome).rejects.toThrow('item 3 failed');
    expect(Math.max(...started)).toBeLessThanOrEqual(4);
  });

  it('resolves at once with nothing to do', async () => {
    expect(await mapBounded([], 8, async () => 1)).toEqual([]);
  });
});
