import type { Duration } from '../core/duration.js';

/**
 * How a failed job waits before its next attempt: a fixed delay, or one that doubles after each
 * failed attempt (`delay`, `2 × delay`, `4 × delay`...), at most `max`.
 *
 * @example
 * { type: 'exponential', delay: '1s', max: '5m' }
 */
export interface QueueBackoff {
  /** @default 'exponential' */
  type?: 'fixed' | 'exponential';
  /** The wait after the first failed attempt. @default '1s' */
  delay?: Duration;
  /** The longest wait, for `'exponential'`. @default '1h' */
  max?: Duration;
}

/**
 * How jobs are processed: given to `Queue.process()` or `@OnQueueJob()`, or declared once for a
 * queue (under `queues` beside the module options, or to `QueueService.queue(name, options)`) as
 * the defaults of its processors.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, queues: { emails: { concurrency: 10, maxAttempts: 5, visibilityTimeout: '2m' } } });
 */
export interface QueueOptions {
  /** How many jobs one processor handles at once, from 1 to 1,000. @default 1 */
  concurrency?: number;
  /**
   * How long a job stays leased to its consumer without news: the lease is extended every third
   * of it while the handler runs, so only a consumer that died or stalled (a blocked event loop)
   * loses its jobs, which are handed out again once it has passed. @default '30s'
   */
  visibilityTimeout?: Duration;
  /** After this many attempts, a job that fails (or whose consumer died) moves to the dead list. @default 3 */
  maxAttempts?: number;
  /** How long a failed job waits before its next attempt. @default { type: 'exponential', delay: '1s', max: '1h' } */
  backoff?: QueueBackoff;
  /**
   * The longest wait for a job on the blocking connection before looking again (a job added is
   * signalled at once; this bounds the wait when a signal was missed). @default '2s'
   */
  block?: Duration;
}

/** Options of `Queue.process()` and `@OnQueueJob()`: the queue's options, for this processor. */
export type ProcessOptions = QueueOptions;

/** Options of `Queue.add()`. */
export interface AddJobOptions {
  /** Hand the job out only after this long, on Redis's clock. @default 0 */
  delay?: Duration;
  /**
   * The job's id (1 to 256 characters of well-formed Unicode). While a job of that id is in the
   * queue (waiting, delayed, active or dead), adding it again does nothing and returns the id.
   * @default a random UUID
   */
  jobId?: string;
}

/** What a handler learns of its job beside the payload. */
export interface QueueJobInfo {
  id: string;
  queue: string;
  /** This attempt's number, from 1. */
  attempt: number;
}

/** Handles one job. Resolve to acknowledge it; throw (or reject) to have it retried after the backoff, or dead-lettered. */
export type QueueHandler<T> = (payload: T, job: QueueJobInfo) => unknown;

/** The size of each part of a queue, read at one instant. */
export interface QueueCounts {
  /** Ready to be handed out. */
  waiting: number;
  /** Leased to a consumer. */
  active: number;
  /** Waiting for their delay or their backoff. */
  delayed: number;
  /** Failed `maxAttempts` times, or could not be decoded. */
  dead: number;
}

/** A job of the dead list. */
export interface DeadJob<T = unknown> {
  id: string;
  /** The payload, or undefined when it could not be decoded. */
  payload: T | undefined;
  attempts: number;
  /** The message of the last error. */
  error: string;
}
