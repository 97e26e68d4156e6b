/**
 * Work in flight by key (a load of a cache entry, say): the one run of each key, which callers
 * that come meanwhile join. An entry leaves when its work settles.
 *
 * Each entry holds its work in a box that is emptied as it leaves. A `Map` grows and shrinks by
 * making a new hash table, and the table it leaves behind still points at every value it held. Once
 * such a table has lived long enough to reach the old generation, it keeps the values it points at
 * alive through every young collection until the next full one: with entries that come and go at
 * every operation, each such value, and all it references (a loaded value, its encoded text), was
 * promoted. Measured on `@Cacheable` misses at 64 callers (bench/, `--trace-gc-nvp`): 1.3 MB promoted
 * per young collection with the promise itself in the `Map`, 0.24 MB with it boxed (a raw GET + SET
 * loop: 0.28 MB).
 *
 * @example
 * const loads = new InFlight<Product>();
 * const product = loads.get(id) ?? loads.run(id, () => loadProduct(id));
 */
export class InFlight<T> {
  private readonly entries = new Map<string, { work: Promise<T> | undefined }>();

  /** The work of `key` while it runs, else undefined. */
  get(key: string): Promise<T> | undefined {
    return this.entries.get(key)?.work;
  }

  /** Runs `start` as the work of `key` (in place of any before it), until it settles. */
  run(key: string, start: () => Promise<T>): Promise<T> {
    const box: { work: Promise<T> | undefined } = { work: undefined };
    const work = start().finally(() => {
      box.work = undefined;
      if (this.entries.get(key) === box) this.entries.delete(key);
    });
    box.work = work;
    this.entries.set(key, box);
    return work;
  }
}
