import { toMilliseconds, toPositiveMilliseconds, toTimerMilliseconds } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toInstanceName, toPositiveInteger, toTextArgument } from '../core/validation.js';
import type { AddJobOptions, QueueBackoff, QueueOptions } from './queue.options.js';

/** A processor's options after validation. */
export interface ResolvedProcessOptions {
  concurrency: number;
  visibilityMs: number;
  maxAttempts: number;
  /** The wait before attempt `attempt + 1`, after attempt `attempt` failed. */
  backoffMs: (attempt: number) => number;
  blockMs: number;
}

/** Every default of a queue's processing options, in one place. */
export const DEFAULT_QUEUE_OPTIONS = {
  concurrency: 1,
  visibilityTimeout: '30s',
  maxAttempts: 3,
  backoff: { type: 'exponential', delay: '1s', max: '1h' },
  block: '2s',
} as const;

const PROCESS_OPTIONS = ['concurrency', 'visibilityTimeout', 'maxAttempts', 'backoff', 'block'] as const;
/** The longest job id, in characters. */
const MAX_JOB_ID_LENGTH = 256;
/** The most jobs one processor handles at once. */
export const MAX_CONCURRENCY = 1_000;

/** Checks a queue's options (`where`: `queues.emails`), without applying defaults. */
export function checkQueueOptions(options: QueueOptions | undefined, where: string): QueueOptions {
  const given = knownRecord(where, options, PROCESS_OPTIONS) as QueueOptions;
  resolveProcessOptions(given, {}, where);
  return given;
}

/** A processor's options: `given`, then the queue's `defaults`, then the library's. */
export function resolveProcessOptions(given: QueueOptions | undefined, defaults: QueueOptions, where = ''): ResolvedProcessOptions {
  const prefix = where === '' ? '' : `${where}.`;
  const options = { ...defaults, ...knownRecord(where, given, PROCESS_OPTIONS) } as QueueOptions;
  const visibilityMs = toTimerMilliseconds(
    options.visibilityTimeout ?? DEFAULT_QUEUE_OPTIONS.visibilityTimeout,
    `${prefix}visibilityTimeout`,
  );
  if (visibilityMs < 30)
    throw new InvalidOptionError(`${prefix}visibilityTimeout`, 'a duration of at least 30ms', options.visibilityTimeout);
  const concurrency = options.concurrency ?? DEFAULT_QUEUE_OPTIONS.concurrency;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY)
    throw new InvalidOptionError(`${prefix}concurrency`, `an integer from 1 to ${MAX_CONCURRENCY}`, concurrency);
  return {
    concurrency,
    visibilityMs,
    maxAttempts: toPositiveInteger(`${prefix}maxAttempts`, options.maxAttempts ?? DEFAULT_QUEUE_OPTIONS.maxAttempts),
    backoffMs: resolveBackoff(options.backoff, `${prefix}backoff`),
    blockMs: toTimerMilliseconds(options.block ?? DEFAULT_QUEUE_OPTIONS.block, `${prefix}block`),
  };
}

function resolveBackoff(backoff: QueueBackoff | undefined, where: string): (attempt: number) => number {
  const given = knownRecord(where, backoff, ['type', 'delay', 'max']) as QueueBackoff;
  const defaults = DEFAULT_QUEUE_OPTIONS.backoff;
  const type = given.type ?? defaults.type;
  if (type !== 'fixed' && type !== 'exponential') throw new InvalidOptionError(`${where}.type`, "'fixed' or 'exponential'", type);
  const delay = toTimerMilliseconds(given.delay ?? defaults.delay, `${where}.delay`, { allowZero: true });
  const max = toPositiveMilliseconds(given.max ?? defaults.max, `${where}.max`);
  if (type === 'fixed') return () => delay;
  return (attempt) => Math.min(max, delay * 2 ** Math.min(attempt - 1, 40));
}

/** A queue name: 1 to 128 characters of well-formed Unicode. */
export function checkQueueName(name: unknown): string {
  return toInstanceName(name, 'a queue');
}

/** The options of one `add()`: its delay in ms and its job id, if given. */
export function resolveAddOptions(options: AddJobOptions | undefined): { delayMs: number; jobId: string | undefined } {
  const given = knownRecord('options', options, ['delay', 'jobId']) as AddJobOptions;
  const delayMs = given.delay === undefined ? 0 : toMilliseconds(given.delay, 'delay');
  if (delayMs > 10 * 365 * 86_400_000) throw new InvalidOptionError('delay', 'a duration of at most 10 years', given.delay);
  if (given.jobId === undefined) return { delayMs, jobId: undefined };
  const jobId = toTextArgument('jobId', given.jobId);
  if (jobId.length > MAX_JOB_ID_LENGTH) throw new InvalidOptionError('jobId', `a string of 1 to ${MAX_JOB_ID_LENGTH} characters`, jobId);
  return { delayMs, jobId };
}
