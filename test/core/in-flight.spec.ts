import { describe, expect, it } from 'vitest';
import { InFlight } from '../../lib/core/in-flight.js';

/** A promise and the function that settles it. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((ok, fail) => ((resolve = ok), (reject = fail)));
  return { promise, resolve, reject };
}

describe('InFlight', () => {
  it('hands out the work of a key while it runs, and nothing once it settled', async () => {
    const loads = new InFlight<string>();
    const load = deferred<string>();
    const work = loads.run('a', () => load.promise);
    expect(loads.get('a')).toBe(work);
    expect(loads.get('b')).toBeUndefined();
    load.resolve('value');
    expect(await loads.get('a')).toBe('value');
    expect(loads.get('a')).toBeUndefined();
  });

  it('lets a failed work go too, and rejects its callers with its error', async () => {
    const loads = new InFlight<string>();
    const load = deferred<string>();
    const work = loads.run('a', () => load.promise);
    load.reject(new Error('loader failed'));
    await expect(work).rejects.toThrow('loader failed');
    expect(loads.get('a')).toBeUndefined();
  });

  it('keeps the later work of a key when an earlier one, replaced, settles', async () => {
    const loads = new InFlight<number>();
    const first = deferred<number>();
    const second = deferred<number>();
    const earlier = loads.run('a', () => first.promise);
    const later = loads.run('a', () => second.promise);
    first.resolve(1);
    expect(await earlier).toBe(1);
    expect(loads.get('a')).toBe(later);
    second.resolve(2);
    expect(await later).toBe(2);
    expect(loads.get('a')).toBeUndefined();
  });
});
