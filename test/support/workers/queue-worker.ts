import { startWorkerApp } from './worker-app.js';
import { QueueService, RedisConnections, RedisKeys, type RedisConnectionOptions } from '../../../lib/index.js';

/**
 * A queue worker in its own process, for multi-process tests. Configured by WORKER_CONFIG (JSON).
 * Each job `{ n }` is marked in flight (`<prefix>{qt}:inflight:<name>`, a set), worked on for `workMs`,
 * then counted in `<prefix>{qt}:handled` (n -> times) and `<prefix>{qt}:handled-by` (name -> jobs), in one
 * transaction with its removal from the in-flight set. Each acknowledgement the queue confirms is
 * counted in `<prefix>{qt}:acked` (job id -> times) and `<prefix>{qt}:acked-by` (name -> jobs). With
 * `hangAfter`, every job after that many hangs forever (in flight, its lease kept alive) until
 * the process is killed. Its keys share a hash tag, for its transactions on a Cluster.
 */
interface WorkerConfig {
  connection: RedisConnectionOptions;
  keyPrefix: string;
  queue: string;
  name: string;
  concurrency: number;
  visibilityTimeout: string;
  workMs: number;
  hangAfter?: number;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as WorkerConfig;

const app = await startWorkerApp({}, [], ['error', 'warn']);
const redis = app.get(RedisConnections).get();
const keys = app.get(RedisKeys);
let started = 0;

const worker = app
  .get(QueueService)
  .queue<{ n: number }>(config.queue)
  .process(
    async ({ n }) => {
      await redis.sadd(keys.tagged('qt', 'inflight', config.name), String(n));
      if (config.hangAfter !== undefined && ++started > config.hangAfter) await new Promise(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, config.workMs));
      await redis
        .multi()
        .hincrby(keys.tagged('qt', 'handled'), String(n), 1)
        .hincrby(keys.tagged('qt', 'handled-by'), config.name, 1)
        .srem(keys.tagged('qt', 'inflight', config.name), String(n))
        .exec();
    },
    { concurrency: config.concurrency, visibilityTimeout: config.visibilityTimeout as '1s', block: '200ms' },
  );
worker.on('completed', (job) => {
  redis
    .multi()
    .hincrby(keys.tagged('qt', 'acked'), job.id, 1)
    .hincrby(keys.tagged('qt', 'acked-by'), config.name, 1)
    .exec()
    .catch(() => undefined);
});
console.log('WORKER_READY');

process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
