import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ScopedContext } from '../../lib/core/scoped-context.js';

/** A promise to settle from outside, and a way to do so. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((settle) => (resolve = settle));
  return { promise, resolve };
}

describe('ScopedContext', () => {
  it('gives its value to the code of a run and to what that code awaits, the inner value in a nested run', async () => {
    const context = new ScopedContext<string>();
    expect(context.get()).toBeUndefined();
    const seen: (string | undefined)[] = [];
    const result = await context.run('outer', async () => {
      seen.push(context.get());
      await sleep(5);
      seen.push(context.get());
      await context.run('inner', async () => {
        await sleep(1);
        seen.push(context.get());
      });
      seen.push(context.get());
      return 42;
    });
    expect(result).toBe(42);
    expect(seen).toEqual(['outer', 'outer', 'inner', 'outer']);
    expect(context.get()).toBeUndefined();
  });

  it('keeps each concurrent run its own value, whichever ends first', async () => {
    const context = new ScopedContext<number>();
    const gates = [deferred(), deferred()];
    const seen: (number | undefined)[] = [];
    const runs = [1, 2].map((value, index) =>
      context.run(value, async () => {
        await gates[index].promise;
        seen.push(context.get());
      }),
    );
    gates[0].resolve();
    await runs[0];
    gates[1].resolve();
    await runs[1];
    expect(seen).toEqual([1, 2]);
  });

  it('passes on a rejection, or an error thrown at once, and the next run works as the first did', async () => {
    const context = new ScopedContext<string>();
    await expect(context.run('a', () => Promise.reject(new Error('rejected')))).rejects.toThrow('rejected');
    await expect(
      context.run('b', () => {
        throw new Error('thrown');
      }),
    ).rejects.toThrow('thrown');
    expect(await context.run('c', async () => (await sleep(1), context.get()))).toBe('c');
  });

  it('lets go of its storage once no run is under way: work left running by a run sees no value then, and sees it while another run is under way', async () => {
    const context = new ScopedContext<string>();
    const later = deferred();
    const stillRunning = deferred();
    let leftBehind!: Promise<string | undefined>;
    const seenWhileAnotherRuns: (string | undefined)[] = [];
    const other = context.run('other', () => stillRunning.promise);
    await context.run('first', () => {
      // Started, not awaited: it outlives the run.
      leftBehind = later.promise.then(() => context.get());
      void later.promise.then(() => seenWhileAnotherRuns.push(context.get()));
    });
    // 'other' is still under way: the storage is kept, and the work left behind keeps its value.
    later.resolve();
    expect(await leftBehind).toBe('first');
    expect(seenWhileAnotherRuns).toEqual(['first']);

    const afterAll = deferred();
    let leftAfterAll!: Promise<string | undefined>;
    await context.run('second', () => {
      leftAfterAll = afterAll.promise.then(() => context.get());
    });
    stillRunning.resolve();
    await other;
    // No run is under way now: the storage was disabled, and the work left behind sees nothing.
    afterAll.resolve();
    expect(await leftAfterAll).toBeUndefined();
    expect(context.get()).toBeUndefined();
  });
});
