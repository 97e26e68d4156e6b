import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { CountedMetric, RedisMetrics } from '../core/metrics.js';
import { OutageLog } from '../core/outage-log.js';
import { createBlockingConnection } from '../core/redis-connection.factory.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisTracing } from '../core/tracing.js';
import { Queue, type QueueContext } from './queue.js';
import { queueKeys } from './queue.keys.js';
import type { QueueHandler, QueueOptions } from './queue.options.js';
import { checkQueueName, checkQueueOptions, resolveProcessOptions } from './queue.options-validator.js';
import { QueueWorker } from './queue.worker.js';

/**
 * `process()` was called after application shutdown began: no worker is started (it would open a
 * blocking connection that nothing closes).
 */
export class QueueShuttingDownError extends RedisPatternsError {
  constructor(readonly queue: string) {
    super(`Cannot start a worker of queue "${queue}": the application is shutting down.`);
  }
}

/**
 * Work queues on Redis: jobs added by any instance, each handed to one worker at a time and
 * removed once handled, at least once even when a worker is killed; retries with backoff, a dead
 * list, delays on Redis's clock and idempotent adds by job id. See {@link Queue}.
 *
 * - At shutdown, workers stop taking jobs and let running handlers finish (up to
 *   `shutdownTimeout`) before the connections close.
 * - When Redis cannot be reached, `add()`, `counts()`, `deadLetters()` and `retryDead()` reject
 *   with a `RedisUnavailableError` (503), and workers wait and resume when it is back; the outage
 *   is logged once.
 *
 * @example
 * const emails = this.queues.queue<Email>('emails', { maxAttempts: 5 });
 * await emails.add({ to: 'ada@example.com' });
 * emails.process((email) => this.mailer.send(email), { concurrency: 10 });
 */
@Injectable()
export class QueueService implements BeforeApplicationShutdown {
  private readonly workers = new Set<QueueWorker>();
  private readonly declared = new Map<string, QueueOptions>();
  private queuesMade = 0;
  private shuttingDown = false;
  private readonly context: QueueContext;

  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
    @Inject(CORE_OPTIONS) private readonly core: ResolvedCoreOptions,
    metrics: RedisMetrics,
    private readonly tracing: RedisTracing,
  ) {
    this.context = {
      jobs: new CountedMetric(metrics, {
        name: 'queue_jobs_total',
        help: "Jobs by queue and outcome (added; completed, retried or dead, by this instance's workers)",
        labelNames: ['queue', 'outcome'],
      }),
      client: connections.get(),
      codec: core.codec,
      outage: new OutageLog(
        new Logger('RedisPatterns:Queue'),
        'queues',
        'add() and counts() fail with RedisUnavailableError (503) and workers pause',
      ),
      startWorker: (queue, handler, options) => this.startWorker(queue, handler, options),
    };
  }

  /** Whether a queue was made (queues declared under `queues` are made at startup). */
  get inUse(): boolean {
    return this.queuesMade > 0;
  }

  /**
   * The queue called `name` (1 to 128 characters). `options` are the defaults of its processors;
   * without them, a queue declared under `queues` has its declared options.
   * @throws InvalidOptionError naming the name or an option.
   * @example
   * const thumbnails = this.queues.queue<{ imageId: string }>('thumbnails', { concurrency: 4, visibilityTimeout: '2m' });
   */
  queue<T = unknown>(name: string, options?: QueueOptions): Queue<T> {
    checkQueueName(name);
    const resolved = options === undefined ? (this.declared.get(name) ?? {}) : checkQueueOptions(options, `queues.${name}`);
    this.queuesMade++;
    return new Queue<T>(name, queueKeys(this.keys, name), resolved, this.context);
  }

  /** Makes a queue declared under `queues`, whose options `queue(name)` and `@OnQueueJob(name)` then use. */
  declare(name: string, options: QueueOptions): Queue {
    const queue = this.queue(name, options);
    this.declared.set(name, queue.options);
    return queue;
  }

  /** Stops every worker, letting running handlers finish, before the connections close. */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    await Promise.all([...this.workers].map((worker) => worker.stop()));
  }

  private startWorker(queue: Queue, handler: QueueHandler<unknown>, given: QueueOptions): QueueWorker {
    const options = resolveProcessOptions(given, queue.options);
    if (this.shuttingDown) throw new QueueShuttingDownError(queue.name);
    const client = this.connections.get();
    const worker = new QueueWorker({
      queue: queue.name,
      keys: queue.keys,
      client,
      blockingClient: createBlockingConnection(client, options.blockMs, this.core.commandTimeoutMs),
      codec: this.core.codec,
      handler,
      tracing: this.tracing,
      options,
      outage: this.context.outage,
      stopTimeoutMs: this.core.shutdownTimeoutMs,
      onStopped: () => this.workers.delete(worker),
    });
    this.workers.add(worker);
    const { jobs } = this.context;
    worker.on('completed', () => jobs.add({ queue: queue.name, outcome: 'completed' }));
    worker.on('failed', (_job, _error, outcome) => jobs.add({ queue: queue.name, outcome: outcome === 'dead' ? 'dead' : 'retried' }));
    return worker.start();
  }
}
