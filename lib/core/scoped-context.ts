import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * A value that code running inside {@link run} (and everything it awaits or starts) can read with
 * {@link get}: the lock of `LockService.using`, the fire of a scheduled job.
 *
 * On Node 20 an `AsyncLocalStorage` in use installs a promise hook that every promise of the
 * process pays for (about 80 ns each, measured with an async loop: 2x its cost), and keeps it
 * until the storage is disabled. This one disables its storage whenever no run is under way, so
 * an app pays the hook only while a run of it is under way (unless another library keeps one of
 * its own enabled). Work that a run started without awaiting it and that is still going once the
 * last run has ended no longer sees the value (a lock or a fire that is over by then).
 */
export class ScopedContext<T> {
  private readonly storage = new AsyncLocalStorage<T>();
  private runs = 0;

  /** The value of the run this code is inside of, if any. */
  get(): T | undefined {
    return this.storage.getStore();
  }

  /** Calls `fn` with `value` as the context's value, until the promise it returns settles. */
  async run<R>(value: T, fn: () => R | Promise<R>): Promise<R> {
    this.runs++;
    try {
      return await this.storage.run(value, fn);
    } finally {
      if (--this.runs === 0) this.storage.disable();
    }
  }
}
