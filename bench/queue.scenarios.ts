import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq';
import { Redis } from 'ioredis';
import { QueueService, RedisPatternsModule } from '../lib/index.js';
import { percentile, table } from './harness.js';

/** How many jobs each worker handles at once, in every run. */
const CONCURRENCY = 16;

interface RunResult {
  perSecond: number;
  /** ms from add to handler, per job. */
  latencies: number[];
}

type Job = { addedAt: number; i: number };

/**
 * Work queues: add + process + acknowledge of `jobs` jobs (64 producers in flight, one worker with
 * concurrency 16, an empty handler), from the first add to the last acknowledgement. Beside a raw
 * ioredis reliable-queue loop doing the same work (LPUSH; LMOVE to a processing list; LREM), and
 * BullMQ (Queue.add + Worker) on the same server in the same run.
 */
export async function queueReport(url: string, jobs: number): Promise<string> {
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench:' })] })
  class BenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  const raw = await rawLmoveRun(url, jobs);
  const ours = await moduleQueueRun(app.get(QueueService), jobs);
  const bull = await bullRun(url, jobs);
  await app.close();
  const rows = [
    row('raw ioredis LPUSH / LMOVE / LREM', raw, raw),
    row('QueueService (leases, retries, dead list)', ours, raw),
    row('BullMQ 6 Queue + Worker', bull, raw),
  ];
  return table(['add + process + ack', 'jobs/s', 'p50 ms', 'p99 ms', 'vs raw'], rows, 1);
}

function row(name: string, result: RunResult, baseline: RunResult): string[] {
  const sorted = [...result.latencies].sort((a, b) => a - b);
  return [
    name,
    Math.round(result.perSecond).toLocaleString('en-US'),
    percentile(sorted, 0.5).toFixed(2),
    percentile(sorted, 0.99).toFixed(2),
    `${(result.perSecond / baseline.perSecond).toFixed(2)}x`,
  ];
}

/** Adds `jobs` jobs with 64 adds in flight; resolves with jobs/s once `handled()` reaches `jobs`. */
async function addAll(add: (job: Job) => Promise<unknown>, jobs: number, handled: () => number): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < jobs) await add({ addedAt: performance.now(), i: next++ });
    }),
  );
  while (handled() < jobs) await new Promise((resolve) => setTimeout(resolve, 1));
  return jobs / ((performance.now() - started) / 1000);
}

/** The classic reliable queue: LMOVE ready -> processing, handle, LREM from processing; polls when empty. */
async function rawLmoveRun(url: string, jobs: number): Promise<RunResult> {
  const producer = new Redis(url);
  const consumer = new Redis(url);
  const [ready, processing] = ['bench:rawq:ready', 'bench:rawq:processing'];
  await producer.del(ready, processing);
  const latencies: number[] = [];
  let done = false;
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (!done) {
      const raw = await consumer.lmove(ready, processing, 'RIGHT', 'LEFT');
      if (raw === null) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      const job = JSON.parse(raw) as Job;
      latencies.push(performance.now() - job.addedAt);
      await consumer.lrem(processing, 1, raw);
    }
  });
  const perSecond = await addAll(
    (job) => producer.lpush(ready, JSON.stringify(job)),
    jobs,
    () => latencies.length,
  );
  done = true;
  await Promise.all(loops);
  await Promise.all([producer.quit(), consumer.quit()]);
  return { perSecond, latencies };
}

async function moduleQueueRun(queues: QueueService, jobs: number): Promise<RunResult> {
  const queue = queues.queue<Job>('bench-queue');
  const latencies: number[] = [];
  const worker = queue.process((job) => void latencies.push(performance.now() - job.addedAt), { concurrency: CONCURRENCY });
  const perSecond = await addAll(
    (job) => queue.add(job),
    jobs,
    () => latencies.length,
  );
  await worker.stop();
  return { perSecond, latencies };
}

async function bullRun(url: string, jobs: number): Promise<RunResult> {
  const { hostname, port } = new URL(url);
  const connection = { host: hostname, port: Number(port), maxRetriesPerRequest: null };
  const queue = new BullQueue<Job>('bench-bull', { connection, prefix: 'bench:bull' });
  await queue.obliterate({ force: true });
  const latencies: number[] = [];
  const worker = new BullWorker<Job>('bench-bull', async (job) => void latencies.push(performance.now() - job.data.addedAt), {
    connection,
    prefix: 'bench:bull',
    concurrency: CONCURRENCY,
  });
  await worker.waitUntilReady();
  // Acknowledged jobs are removed, as the other two do.
  const perSecond = await addAll(
    (job) => queue.add('job', job, { removeOnComplete: true }),
    jobs,
    () => latencies.length,
  );
  await worker.close();
  await queue.close();
  return { perSecond, latencies };
}
