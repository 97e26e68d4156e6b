import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import type { RedisCodec } from '../core/codec.js';
import type { OutageLog } from '../core/outage-log.js';
import { backoffDelay } from '../core/redis-connection.factory.js';
import { untilReady, type RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { consumerSpan, type RedisTracing, type SpanOptions } from '../core/tracing.js';
import type { QueueKeyset } from './queue.keys.js';
import type { QueueHandler, QueueJobInfo } from './queue.options.js';
import type { ResolvedProcessOptions } from './queue.options-validator.js';
import { LeasedJob, type LeaseContext, type TakenJob } from './queue.lease.js';

const takeScript = RedisScript.fromFile(new URL('./queue-take.lua', import.meta.url));

/** How many due delayed jobs, and how many expired leases, one take moves. */
const MOVES_PER_TAKE = 100;
/** The most jobs one take leases: a worker of high concurrency fills up over several takes, each script short. */
const JOBS_PER_TAKE = 100;

/** Everything one worker needs, resolved by `Queue.process()`. */
export interface QueueWorkerSettings {
  queue: string;
  keys: QueueKeyset;
  client: RedisClient;
  /** The worker's own connection, for BLPOP on the signal list. */
  blockingClient: RedisClient;
  codec: RedisCodec;
  handler: QueueHandler<unknown>;
  /** Puts each handler call in a `queue.handle` span while a tracer is attached. */
  tracing: RedisTracing;
  options: ResolvedProcessOptions;
  /** The queues' outage log, shared with add() and counts(): an outage is logged once. */
  outage: OutageLog;
  /** How long stop() waits for handlers in flight. */
  stopTimeoutMs: number;
  onStopped: () => void;
}

/** Events of a {@link QueueWorker}, for metrics and logs. */
export interface QueueWorkerEvents {
  /** The handler succeeded and the job was acknowledged (removed). */
  completed: [job: QueueJobInfo];
  /** The handler failed; the job was retried after its backoff, or moved to the dead list. */
  failed: [job: QueueJobInfo, error: unknown, outcome: 'retry' | 'dead'];
  /** The worker's lease ran out (it stalled past visibilityTimeout): the job may be handled by another worker too. */
  'lease-lost': [job: QueueJobInfo];
}

/**
 * Takes jobs from one queue and hands each to a handler, up to `concurrency` at once, until
 * stopped. A job is leased for `visibilityTimeout`, extended every third of it while its handler
 * runs; it is acknowledged (removed) when the handler resolves, retried after the backoff when it
 * throws, and moved to the dead list after `maxAttempts`. When no job is ready the worker blocks
 * on the queue's signal list (BLPOP on its own connection) for at most `block`, or until the next
 * delayed job is due. While Redis is away it waits with backoff (the outage is logged once).
 * Created by `Queue.process()`.
 *
 * @example
 * const worker = emails.process(async (email: Email) => this.mailer.send(email), { concurrency: 10 });
 * worker.on('failed', (job, error, outcome) => this.metrics.failed(job.queue, outcome));
 * await worker.stop();
 */
export class QueueWorker extends EventEmitter<QueueWorkerEvents> {
  private readonly logger = new Logger('RedisPatterns:Queue');
  private readonly stopSignal = new AbortController();
  /** Aborted when stop() gave up waiting: handlers finishing later no longer settle their jobs. */
  private readonly abandon = new AbortController();
  private readonly running = new Set<Promise<void>>();
  private readonly tokenPrefix = randomBytes(6).toString('base64url');
  private takes = 0;
  private stopping = false;
  private failures = 0;
  private loop: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private readonly leaseTimers = new Set<NodeJS.Timeout>();
  private readonly leaseContext: LeaseContext;
  private readonly span: SpanOptions;

  constructor(private readonly settings: QueueWorkerSettings) {
    super();
    this.span = consumerSpan(settings.queue);
    // Connection errors surface as failed calls: an outage, which the outage log reports once.
    settings.blockingClient.on('error', () => undefined);
    this.leaseContext = { settings, logger: this.logger, events: this, abandoned: this.abandon.signal, timers: this.leaseTimers };
  }

  /** The queue it works on. */
  get queue(): string {
    return this.settings.queue;
  }

  /** How many handlers are running now. */
  get busy(): number {
    return this.running.size;
  }

  /** Starts taking jobs (called by `Queue.process()`). */
  start(): this {
    this.loop = this.run();
    return this;
  }

  /**
   * Stops taking jobs and lets the running handlers finish (and acknowledge) for up to the module's
   * `shutdownTimeout`. A handler still running then loses its lease, so its job is handed out
   * again after `visibilityTimeout`. Called for every worker at application shutdown.
   */
  stop(): Promise<void> {
    this.stopped ??= this.shutDown();
    return this.stopped;
  }

  private async shutDown(): Promise<void> {
    this.stopping = true;
    this.stopSignal.abort();
    this.settings.blockingClient.disconnect();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      (async () => {
        await this.loop;
        await Promise.all(this.running);
        return true;
      })(),
      new Promise<false>((resolve) => {
        timer = setTimeout(resolve, this.settings.stopTimeoutMs, false);
      }),
    ]);
    clearTimeout(timer);
    if (!finished) {
      this.abandon.abort();
      for (const leaseTimer of this.leaseTimers) clearInterval(leaseTimer);
      this.logger.warn(
        `Worker of queue "${this.queue}" stopped with ${this.running.size} handler(s) still running; their jobs will be handed out again after visibilityTimeout`,
      );
    }
    this.settings.onStopped();
  }

  private async run(): Promise<void> {
    const { client, blockingClient, outage, options } = this.settings;
    while (!this.stopping) {
      try {
        if (this.running.size >= options.concurrency) {
          await Promise.race(this.running);
          continue;
        }
        await untilReady(client, this.stopSignal.signal);
        if (this.stopping) break;
        const jobs = await this.take(Math.min(JOBS_PER_TAKE, options.concurrency - this.running.size));
        outage.succeeded();
        this.failures = 0;
        if (typeof jobs !== 'number') {
          for (const job of jobs) this.startHandler(job);
          continue;
        }
        await untilReady(blockingClient, this.stopSignal.signal);
        if (this.stopping) break;
        const waitMs = jobs < 0 ? options.blockMs : Math.min(options.blockMs, Math.max(jobs, 10));
        await blockingClient.blpop(this.settings.keys.signal, waitMs / 1000);
      } catch (error) {
        if (this.stopping) break;
        await this.recover(error);
      }
    }
  }

  /** Up to `count` jobs, or the ms until the next delayed job or lease is due (-1: none). */
  private async take(count: number): Promise<TakenJob[] | number> {
    const { keys, client, options, codec, queue } = this.settings;
    const token = `${this.tokenPrefix}:${++this.takes}`;
    const reply = await takeScript.run<(string | Buffer | number)[]>(
      client,
      [keys.jobs, keys.ready, keys.delayed, keys.active, keys.attempts, keys.leases, keys.dead, keys.errors, keys.signal],
      [options.visibilityMs, token, options.maxAttempts, MOVES_PER_TAKE, count],
      { buffers: codec.binary === true },
    );
    if (reply.length === 1) return Number(reply[0]);
    const jobs: TakenJob[] = [];
    for (let i = 0; i < reply.length; i += 3) {
      jobs.push({
        info: { id: String(reply[i]), queue, attempt: Number(reply[i + 2]) },
        payload: reply[i + 1] as string | Buffer,
        token: `${token}:${i / 3 + 1}`,
      });
    }
    return jobs;
  }

  private startHandler(job: TakenJob): void {
    const handled = this.handle(job).catch((error: unknown) =>
      this.settings.outage.report(error, `settle job ${job.info.id} of queue "${this.queue}"`),
    );
    this.running.add(handled);
    void handled.finally(() => this.running.delete(handled));
  }

  private async handle(job: TakenJob): Promise<void> {
    const { codec, handler, tracing, keys, options } = this.settings;
    const leased = new LeasedJob(job, this.leaseContext);
    try {
      let decoded: unknown;
      try {
        decoded = codec.decode(job.payload, keys.jobs);
      } catch {
        // The parser's message may quote the payload, so it is not logged.
        this.logger.warn(`Job ${job.info.id} of queue "${this.queue}" could not be decoded; moved to the dead list`);
        await leased.fail(new Error('the payload could not be decoded'), 0);
        return;
      }
      try {
        await tracing.span('queue.handle', async () => handler(decoded, job.info), this.span);
      } catch (error) {
        await leased.fail(error, options.maxAttempts);
        return;
      }
      await leased.acknowledge();
    } finally {
      leased.release();
    }
  }

  /** After a failed take or wait: pause with backoff. An outage is logged once for the whole queue feature; anything else on its first occurrence. */
  private async recover(error: unknown): Promise<void> {
    this.failures++;
    if (this.settings.outage.failed(error) === undefined && this.failures === 1)
      this.logger.error(`Worker of queue "${this.queue}" failed: ${(error as Error)?.message ?? error}; retrying with backoff`);
    await sleep(backoffDelay(this.failures, 50, 2_000), undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }
}
