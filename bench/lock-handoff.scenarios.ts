import { setTimeout as sleep } from 'node:timers/promises';
import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redlock as SesameRedlock } from '@sesamecare-oss/redlock';
import { Redis } from 'ioredis';
import { LockService, RedisPatternsModule } from '../lib/index.js';
import { median, percentile, table } from './harness.js';
import { Redlock } from './lock.scenarios.js';

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
    (key) =>
      releaser(service.acquire(key, { wait: '30s', fair }));
  const flavours: [string, Take, Take][] = [
    ['LockService.acquire, waiter on the same instance', ours(here), ours(here)],
    ['LockService.acquire, waiter on another instance', ours(here), ours(there)],
    ['LockService.acquire({ fair: true }), waiter on another instance', ours(here, true), ours(there, true)],
    [
      'LockService.semaphore(key, 1), same instance',
      (key) => releaser(here.semaphore(key, 1).acquire()),
      (key) => releaser(here.semaphore(key, 1).acquire({ wait: '30s' })),
    ],
    [
      'LockService.readWrite(key): writer after a reader, same instance',
      (key) => releaser(here.readWrite(key).read.acquire()),
      (key) => releaser(here.readWrite(key).write.acquire({ wait: '30s' })),
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

/** The release of the lock `acquisition` grants, once granted. */
async function releaser(acquisition: Promise<{ release(): Promise<unknown> }>): Promise<() => Promise<unknown>> {
  const lock = await acquisition;
  return () => lock.release();
}

function redlockTake(instance: Redlock | SesameRedlock, prefix: string): Take {
  return (key) => releaser(instance.acquire([`${prefix}:${key}`], 30_000));
}

/** An app with the module's default lock options. */
async function lockApp(url: string): Promise<INestApplicationContext> {
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-handoff:' })] })
  class HandOffModule {}
  return NestFactory.createApplicationContext(HandOffModule, { logger: false });
}
