import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LockNotAcquiredError, LockService, type Lock } from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Retry pauses of up to ten minutes: a waiter that gets the lock within {@link WOKEN_WITHIN_MS} of
 * a release was woken by it (its own timer ends that soon in fewer than 2 of 100 pauses).
 */
const RETRY = { minDelay: '10m', maxDelay: '10m' } as const;
const WOKEN_WITHIN_MS = 10_000;
const WAIT = '20m';

/** What `acquisition` settled with, or 'still waiting' when it has not settled within `ms`. */
async function within<T>(acquisition: Promise<T>, ms: number): Promise<T | 'still waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still waiting'>((resolve) => (timer = setTimeout(resolve, ms, 'still waiting')));
  try {
    return await Promise.race([acquisition, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe.each(topologies)('a release wakes a waiter of the same instance, on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let locks: LockService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix: uniquePrefix(), lock: { retry: RETRY } });
    locks = app.get(LockService);
  });
  afterAll(() => app.close());

  it('hands a plain lock to the waiter at once, not at the end of its retry pause', async () => {
    const key = fresh('report');
    const holder = await locks.acquire(key);
    const waiting = locks.acquire(key, { wait: WAIT });
    // The waiter's first attempt is refused, and it pauses.
    await sleep(100);
    expect(await holder.release()).toBe(true);
    const waiter = await within(waiting, WOKEN_WITHIN_MS);
    expect(waiter).not.toBe('still waiting');
    expect((waiter as Lock).fencingToken).toBe(holder.fencingToken + 1);
    expect(await (waiter as Lock).release()).toBe(true);
  });

  it('wakes one waiter per release: the second waits for the next release', async () => {
    const key = fresh('invoice');
    const holder = await locks.acquire(key);
    const first = locks.acquire(key, { wait: WAIT });
    await sleep(50);
    const second = locks.acquire(key, { wait: WAIT });
    await sleep(100);
    await holder.release();
    // The waiter that paused first is woken; the other keeps pausing, and the lock is held anyway.
    const woken = await within(first, WOKEN_WITHIN_MS);
    expect(woken).not.toBe('still waiting');
    expect(await within(second, 200)).toBe('still waiting');
    await (woken as Lock).release();
    const next = await within(second, WOKEN_WITHIN_MS);
    expect(next).not.toBe('still waiting');
    expect((next as Lock).fencingToken).toBe((woken as Lock).fencingToken + 1);
    await (next as Lock).release();
  });

  it('wakes a waiter of one of several keys locked together when a lock on that key is released', async () => {
    // One hash tag: on a Cluster, keys locked together share a slot.
    const tag = fresh('transfer');
    const [a, b] = [`{${tag}}:from`, `{${tag}}:to`];
    const holder = await locks.acquire(a);
    const waiting = locks.acquire([a, b], { wait: WAIT });
    await sleep(100);
    await holder.release();
    const waiter = await within(waiting, WOKEN_WITHIN_MS);
    expect(waiter).not.toBe('still waiting');
    expect((waiter as Lock).keys).toEqual([a, b].sort());
    await (waiter as Lock).release();
  });

  it('hands a semaphore permit given back to a waiter at once', async () => {
    const exports = locks.semaphore(fresh('exports'), 1);
    const holder = await exports.acquire();
    const waiting = exports.acquire({ wait: WAIT });
    await sleep(100);
    expect(await holder.release()).toBe(true);
    const waiter = await within(waiting, WOKEN_WITHIN_MS);
    expect(waiter).not.toBe('still waiting');
    await (waiter as Lock).release();
  });

  it('hands a read-write lock to a waiting writer once the last reader leaves, and back to a waiting reader', async () => {
    const config = locks.readWrite(fresh('config'));
    const reader = await config.read.acquire();
    const writing = config.write.acquire({ wait: WAIT });
    await sleep(100);
    await reader.release();
    const writer = await within(writing, WOKEN_WITHIN_MS);
    expect(writer).not.toBe('still waiting');
    const reading = config.read.acquire({ wait: WAIT });
    await sleep(100);
    await (writer as Lock).release();
    const nextReader = await within(reading, WOKEN_WITHIN_MS);
    expect(nextReader).not.toBe('still waiting');
    await (nextReader as Lock).release();
  });

  it('ends the pauses of waiters when the app shuts down: they fail at once, as store-unavailable', async () => {
    const closing = await startContext({ connection: connection(), keyPrefix: uniquePrefix(), lock: { retry: RETRY } });
    const key = fresh('closing');
    const holder = await closing.get(LockService).acquire(key);
    const waiting = closing
      .get(LockService)
      .acquire(key, { wait: WAIT })
      .catch((error: unknown) => error);
    await sleep(100);
    const closed = closing.close();
    const outcome = await within(waiting, WOKEN_WITHIN_MS);
    expect(outcome).toBeInstanceOf(LockNotAcquiredError);
    expect((outcome as LockNotAcquiredError).reason).toBe('store-unavailable');
    await closed;
    // The holder's lock was surrendered, not left to its lease.
    expect(holder.lost).toBe(true);
  });
});
