import { setTimeout as sleep } from 'node:timers/promises';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redlock as SesameRedlock } from '@sesamecare-oss/redlock';
import { Redis } from 'ioredis';
// redlock 5.0.0-beta.2's types are not found under NodeNext (see lock.scenarios.ts): taken from the file.
// @ts-expect-error TS7016, see above
import RedlockUntyped from 'redlock';
import type RedlockClass from '../node_modules/redlock/dist/index.js';
import { LockService, RedisPatternsModule } from '../lib/index.js';
import { median, percentile, table } from './harness.js';

const Redlock = RedlockUntyped as typeof RedlockClass;
/** How long the holder keeps the lock once the waiter asked for it. */
const HOLD_MS = 100;
/** Enough attempts for redlock's pauses (200 ± 200 ms) to outlast any hold here. */
const REDLOCK_RETRIES = { retryCount: 100 };

/** Takes the lock on `key` (waiting), and gives the function that releases it. */
type Take = (key: string) => Promise<() => Promise<unknown>>;

/**
 * How soon a waiter has a busy lock once its holder releases it, with each library's default
 * retry pauses (ours: 50 ms doubling up to 1 s, full jitter; redlock: 200 ± 200 ms). The holder
 * takes the lock, a waiter asks for it 1 ms later, the holder releases it after {@link HOLD_MS}
 * ms; the time from the release's reply to the waiter's grant is one sample. Ours wakes a waiter of
 * the instance that released at once; a waiter of another instance, and the peers', try again
 * when their pause ends. A fair lock's waiters are told of each release wherever they are.
 */
export async function lockHandOffReport(url: string, samples = 30): Promise<string> {
  const apps = await Promise.all([0, 1].map(() => lockApp(url)));
  const [here, there] = apps.map((app) => app.get(LockService));
  const clients = [new Redis(url), new Redis(url)];
  const redlock = new Redlock([clients[0]], REDLOCK_RETRIES);
  const sesame = new SesameRedlock([clients[1]], REDLOCK_RETRIES);
  const ours =
    (service: LockService, fair = false): Take =>
    async (key) => {
      const lock = await service.acquire(key, { wait: '30s', fair });
      return () => lock.release();
    };
  const flavours: [string, Take, Take][] = [
    ['LockService.acquire, waiter on the same instance', ours(here), ours(here)],
    ['LockService.acquire, waiter on another instance', ours(here), ours(there)],
    ['LockService.acquire({ fair: true }), waiter on another instance', ours(here, true), ours(there, true)],
    [
      'LockService.semaphore(key, 1), same instance',
      async (key) =>
        here
          .semaphore(key, 1)
          .acquire()
          .then((lock) => () => lock.release()),
      async (key) =>
        here
          .semaphore(key, 1)
          .acquire({ wait: '30s' })
          .then((lock) => () => lock.release()),
    ],
    [
      'LockService.readWrite(key): writer after a reader, same instance',
      async (key) =>
        here
          .readWrite(key)
          .read.acquire()
          .then((lock) => () => lock.release()),
      async (key) =>
        here
          .readWrite(key)
          .write.acquire({ wait: '30s' })
          .then((lock) => () => lock.release()),
    ],
    ['redlock v5 (one node)', redlockTake(redlock, 'handoff-redlock'), redlockTake(redlock, 'handoff-redlock')],
    ['@sesamecare-oss/redlock (one node)', redlockTake(sesame, 'handoff-sesame'), redlockTake(sesame, 'handoff-sesame')],
  ];
  const rows: string[][] = [];
  try {
    for (const [index, [name, holder, waiter]] of flavours.entries()) {
      const delays: number[] = [];
      for (let sample = 0; sample < samples; sample++) delays.push(await handOff(`handoff:${index}:${sample}`, holder, waiter));
      delays.sort((a, b) => a - b);
      const ms = (value: number) => value.toFixed(2);
      rows.push([name, String(samples), ms(median(delays)), ms(percentile(delays, 0.9)), ms(delays[delays.length - 1])]);
    }
  } finally {
    await Promise.all([...apps.map((app) => app.close()), redlock.quit(), sesame.quit()]);
  }
  return table(['lock', 'hand-offs', 'p50 ms', 'p90 ms', 'max ms'], rows, 1);
}

/** One hand-off on `key`: the ms from the holder's release (its reply) to the waiter's grant. */
async function handOff(key: string, holder: Take, waiter: Take): Promise<number> {
  const release = await holder(key);
  const granted = (async () => {
    await sleep(1);
    const releaseWaiter = await waiter(key);
    const at = performance.now();
    await releaseWaiter();
    return at;
  })();
  await sleep(HOLD_MS);
  await release();
  const releasedAt = performance.now();
  return (await granted) - releasedAt;
}

function redlockTake(instance: RedlockClass | SesameRedlock, prefix: string): Take {
  return async (key) => {
    const lock = await instance.acquire([`${prefix}:${key}`], 30_000);
    return () => lock.release();
  };
}

/** An app with the module's default lock options. */
async function lockApp(url: string): Promise<INestApplicationContext> {
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-handoff:' })] })
  class HandOffModule {}
  return NestFactory.createApplicationContext(HandOffModule, { logger: false });
}
