import { randomUUID } from 'node:crypto';
import type { RedisCodec } from '../core/codec.js';
import { InvalidOptionError } from '../core/errors.js';
import type { CountedMetric } from '../core/metrics.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { knownRecord, toPositiveInteger } from '../core/validation.js';
import type { QueueKeyset } from './queue.keys.js';
import type { AddJobOptions, DeadJob, QueueCounts, QueueHandler, QueueOptions } from './queue.options.js';
import { resolveAddOptions, resolveProcessOptions } from './queue.options-validator.js';
import type { QueueWorker } from './queue.worker.js';

const addScript = RedisScript.fromFile(new URL('./queue-add.lua', import.meta.url));
const countsScript = RedisScript.fromFile(new URL('./queue-counts.lua', import.meta.url));
const deadScript = RedisScript.fromFile(new URL('./queue-dead.lua', import.meta.url));
const retryDeadScript = RedisScript.fromFile(new URL('./queue-retry-dead.lua', import.meta.url));

/** How many jobs one script call of `addMany` adds, and how many dead jobs `retryDead` moves per call. */
const CHUNK = 500;
/** The most dead jobs one `deadLetters()` reads (one script call). */
const MAX_DEAD_LETTERS = 1_000;

/** What a queue needs from `QueueService`. */
export interface QueueContext {
  client: RedisClient;
  codec: RedisCodec;
  outage: OutageLog;
  /** Jobs by queue and outcome (`queue_jobs_total`: added, completed, retried, dead). */
  jobs: CountedMetric;
  /** Starts a worker on this queue (QueueService keeps it, to stop it at shutdown). */
  startWorker(queue: Queue, handler: QueueHandler<unknown>, options: QueueOptions): QueueWorker;
}

/**
 * A work queue on Redis: each job is handed to one consumer at a time, and removed only once its
 * handler has succeeded. At least once: a job whose consumer died (even `kill -9`) is handed out
 * again after `visibilityTimeout`; one that keeps failing moves to the dead list after
 * `maxAttempts`. Every key of a queue shares the hash tag `{q:<name>}`, so all of its operations
 * are single Lua scripts, atomic on one node, on a Cluster too. Delays and leases run on Redis's
 * clock, not the app servers'.
 *
 * @example
 * const emails = this.queues.queue<Email>('emails');
 * await emails.add({ to: 'ada@example.com' }, { delay: '10m', jobId: `welcome:${userId}` });
 * emails.process(async (email) => this.mailer.send(email), { concurrency: 10, maxAttempts: 5 });
 */
export class Queue<T = unknown> {
  constructor(
    /** The queue's name, as given to `queue(name)`. */
    readonly name: string,
    /** The queue's keys. */
    readonly keys: QueueKeyset,
    /** The defaults of its processors. */
    readonly options: QueueOptions,
    private readonly context: QueueContext,
  ) {}

  /**
   * Adds a job, ready at once or after `delay`. With a `jobId`, adding a job whose id is still in
   * the queue (waiting, delayed, active or dead) does nothing: the add is idempotent.
   * @returns the job's id.
   * @throws RedisUnavailableError (503) when Redis cannot be reached; InvalidOptionError naming `delay` or `jobId`; CodecError for a payload the codec cannot encode.
   * @example
   * const id = await emails.add({ to: 'ada@example.com' });
   * await emails.add(reminder, { delay: '1h', jobId: `reminder:${orderId}` }); // once per order
   */
  async add(payload: T, options: AddJobOptions = {}): Promise<string> {
    const { delayMs, jobId } = resolveAddOptions(options);
    const id = jobId ?? randomUUID();
    await this.store([id, this.context.codec.encode(payload, this.keys.jobs)], delayMs);
    return id;
  }

  /**
   * Adds many jobs, 500 per script call (each call atomic), with random ids.
   * @returns their ids, in order.
   * @throws as {@link add}; when Redis fails midway, the chunks before the failing one are added.
   * @example
   * const ids = await emails.addMany(users.map((user) => ({ to: user.email })));
   */
  async addMany(payloads: readonly T[], options: Pick<AddJobOptions, 'delay'> = {}): Promise<string[]> {
    if (!Array.isArray(payloads)) throw new InvalidOptionError('payloads', 'an array of payloads', payloads);
    const { delayMs } = resolveAddOptions(knownRecord('options', options, ['delay']));
    const encoded = payloads.map((payload) => [randomUUID(), this.context.codec.encode(payload, this.keys.jobs)] as const);
    for (let from = 0; from < encoded.length; from += CHUNK) await this.store(encoded.slice(from, from + CHUNK).flat(), delayMs);
    return encoded.map(([id]) => id);
  }

  /**
   * Starts a worker that hands each job to `handler`, up to `concurrency` at once, until it is
   * stopped (`stop()`, or at application shutdown). Resolving acknowledges the job; throwing
   * retries it after the backoff, and moves it to the dead list after `maxAttempts`. Handlers may
   * run more than once for a job (at least once): make them idempotent.
   * @throws InvalidOptionError naming an option; QueueShuttingDownError once application shutdown began.
   * @example
   * const worker = emails.process(async (email, { id, attempt }) => this.mailer.send(email), { concurrency: 10, visibilityTimeout: '1m' });
   * await worker.stop();
   */
  process(handler: QueueHandler<T>, options: QueueOptions = {}): QueueWorker {
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', 'a function of the payload', handler);
    resolveProcessOptions(options, this.options);
    return this.context.startWorker(this as Queue<unknown>, handler as QueueHandler<unknown>, options);
  }

  /**
   * How many jobs are waiting, active (leased), delayed and dead, read at one instant.
   * @throws RedisUnavailableError (503) when Redis cannot be reached.
   * @example
   * const { waiting, active, delayed, dead } = await emails.counts();
   */
  async counts(): Promise<QueueCounts> {
    const { ready, active, delayed, dead } = this.keys;
    const [waiting, leased, later, failed] = await this.context.outage.guard(
      countsScript.run<[number, number, number, number]>(this.context.client, [ready, active, delayed, dead]),
    );
    return { waiting, active: leased, delayed: later, dead: failed };
  }

  /**
   * The `count` oldest dead jobs (at most 1,000, read in one script call): payload, attempts and
   * last error.
   * @throws RedisUnavailableError (503) when Redis cannot be reached; InvalidOptionError naming `count`.
   * @example
   * const poisoned = await emails.deadLetters({ count: 20 });
   */
  async deadLetters({ count = 100 }: { count?: number } = {}): Promise<DeadJob<T>[]> {
    if (!Number.isSafeInteger(count) || count < 1 || count > MAX_DEAD_LETTERS)
      throw new InvalidOptionError('count', `an integer from 1 to ${MAX_DEAD_LETTERS}`, count);
    const { codec, client, outage } = this.context;
    const flat = await outage.guard(
      deadScript.run<(string | Buffer | null)[]>(client, [this.keys.dead, this.keys.jobs, this.keys.attempts, this.keys.errors], [count], {
        buffers: codec.binary === true,
      }),
    );
    const jobs: DeadJob<T>[] = [];
    for (let i = 0; i < flat.length; i += 4) {
      const [id, payload, attempts, error] = flat.slice(i, i + 4);
      jobs.push({ id: String(id), payload: this.tryDecode(payload), attempts: Number(attempts ?? 0), error: String(error ?? '') });
    }
    return jobs;
  }

  /**
   * Moves dead jobs (all, or the `count` oldest) back to the waiting list, with their attempts
   * reset.
   * @returns how many were moved.
   * @throws RedisUnavailableError (503) when Redis cannot be reached.
   * @example
   * await emails.retryDead(); // after fixing the SMTP credentials
   */
  async retryDead({ count = Number.MAX_SAFE_INTEGER }: { count?: number } = {}): Promise<number> {
    toPositiveInteger('count', count);
    const { dead, ready, attempts, errors, signal } = this.keys;
    let moved = 0;
    while (moved < count) {
      const batch = Math.min(CHUNK, count - moved);
      const done = await this.context.outage.guard(
        retryDeadScript.run<number>(this.context.client, [dead, ready, attempts, errors, signal], [batch]),
      );
      moved += done;
      if (done < batch) break;
    }
    return moved;
  }

  private async store(pairs: readonly (string | Buffer)[], delayMs: number): Promise<void> {
    const { jobs, ready, delayed, signal } = this.keys;
    const added = await this.context.outage.guard(
      addScript.run<number[]>(this.context.client, [jobs, ready, delayed, signal], [delayMs, ...pairs]),
    );
    // An id already in the queue is not a new job.
    this.context.jobs.add({ queue: this.name, outcome: 'added' }, added.filter((one) => one === 1).length);
  }

  private tryDecode(payload: string | Buffer | null | undefined): T | undefined {
    if (payload === null || payload === undefined) return undefined;
    try {
      return this.context.codec.decode<T>(payload, this.keys.jobs);
    } catch {
      return undefined;
    }
  }
}
