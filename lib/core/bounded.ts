/**
 * Runs `work` on each item with at most `concurrency` calls in flight, and resolves with the
 * results in the order of the items. Work over a list of unknown length goes through this (or
 * through chunks), never through a `Promise.all` over the whole list: a thousand commands sent at
 * once wait behind each other long enough to hit `commandTimeout`. The first failure rejects, once
 * the calls in flight have settled; no new call starts after it.
 *
 * @example
 * const sessions = await mapBounded(handles, 16, (handle) => redis.hgetall(keyOf(handle)));
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const index = next++;
      try {
        results[index] = await work(items[index], index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
  return results;
}
