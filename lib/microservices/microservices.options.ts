import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { INestApplicationContext } from '@nestjs/common';
import { toPositiveMilliseconds, type Duration } from '../core/duration.js';
import { InvalidOptionError } from '../core/errors.js';
import { toNonEmptyString, toPositiveInteger } from '../core/validation.js';

/**
 * Where the transporter finds the module's services: the app (`INestApplication`,
 * `INestApplicationContext`) or a `ModuleRef`. It uses the module's connection and codec.
 */
export type ModuleServices = Pick<INestApplicationContext, 'get'>;

/** How trimmed a request stream is kept: about `maxLen` entries (`MAXLEN ~`), or entries younger than `maxAge` (`MINID ~`). */
export type StreamTrim = { maxLen: number; maxAge?: never } | { maxAge: Duration; maxLen?: never };

/** Options both sides share. */
export interface RedisStreamsCommonOptions {
  /**
   * The app or a `ModuleRef` (or a function returning it, called at `listen()`/`connect()`, for
   * `NestFactory.createMicroservice()` where the strategy exists before the app): the transporter
   * reaches the module's `StreamService` through it.
   */
  app: ModuleServices | (() => ModuleServices);
  /**
   * The stream a pattern travels on. Patterns mapped to one stream share its order, its consumer
   * group and its trimming. Both sides must map alike.
   * @default (pattern) => `ms:${pattern}`
   * @example (pattern) => (pattern.startsWith('order.') ? 'ms:orders' : `ms:${pattern}`)
   */
  streamOf?: (pattern: string) => string;
}

/**
 * Options of `RedisStreamsServer`.
 * @example
 * new RedisStreamsServer({ app, service: 'fulfilment', concurrency: 8, maxDeliveries: 3 })
 */
export interface RedisStreamsServerOptions extends RedisStreamsCommonOptions {
  /** The service's name: the consumer group every instance of it joins. */
  service: string;
  /**
   * `'work-queue'`: each event and request is handled by one instance of the service.
   * `'broadcast'`: every running instance gets every event (a group per instance, from its start
   * on, deleted when it closes); requests still go to one instance.
   * @default 'work-queue'
   */
  mode?: 'work-queue' | 'broadcast';
  /** Handlers of one stream run at most this many at a time in this instance (a consumer each). @default 4 */
  concurrency?: number;
  /** Entries one consumer fetches per read. @default 10 */
  batch?: number;
  /** Entries pending this long (their instance died) are claimed by another instance. @default '30s' */
  claimIdle?: Duration;
  /** After this many failed deliveries an event moves to the dead-letter stream, with its error. @default 5 */
  maxDeliveries?: number;
  /** Backoff between the retries of a failed event, in the instance that failed it. @default { min: '200ms', max: '5s' } */
  retryBackoff?: { min: Duration; max: Duration };
  /** A requester's reply stream expires this long after the last reply written to it. @default '1m' */
  replyExpire?: Duration;
  /** A reply stream is trimmed to about this many entries. @default 1000 */
  replyMaxLen?: number;
}

/**
 * Options of `RedisStreamsClient`.
 * @example
 * new RedisStreamsClient({ app, timeout: '5s', trim: { maxAge: '1h' } })
 */
export interface RedisStreamsClientOptions extends RedisStreamsCommonOptions {
  /** A `send()` without a reply by then fails with a `RedisStreamsTimeoutError`; servers skip it after that. @default '30s' */
  timeout?: Duration;
  /** How the request streams are trimmed as this client adds to them. @default { maxLen: 100_000 } */
  trim?: StreamTrim;
}

/** The module's services, from the `app` option. */
export function moduleServices(app: ModuleServices | (() => ModuleServices)): ModuleServices {
  return typeof app === 'function' ? app() : app;
}

export const defaultStreamOf = (pattern: string): string => `ms:${pattern}`;

/** This process's name among the consumers of a group, and in reply stream names. */
export function instanceName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

export interface ResolvedServerOptions {
  service: string;
  broadcast: boolean;
  streamOf: (pattern: string) => string;
  concurrency: number;
  batch: number;
  claimIdle: Duration;
  maxDeliveries: number;
  retryBackoff: { min: Duration; max: Duration };
  replyExpire: Duration;
  replyMaxLen: number;
}

/** The server's options with their defaults, checked. @throws InvalidOptionError naming the option. */
export function resolveServerOptions(options: RedisStreamsServerOptions): ResolvedServerOptions {
  const mode = options.mode ?? 'work-queue';
  if (mode !== 'work-queue' && mode !== 'broadcast') throw new InvalidOptionError('mode', "'work-queue' or 'broadcast'", mode);
  const claimIdle = options.claimIdle ?? '30s';
  const retryBackoff = options.retryBackoff ?? { min: '200ms', max: '5s' };
  if (toPositiveMilliseconds(retryBackoff.max, 'retryBackoff.max') < toPositiveMilliseconds(retryBackoff.min, 'retryBackoff.min'))
    throw new InvalidOptionError('retryBackoff.max', 'at least retryBackoff.min', retryBackoff.max);
  const replyExpire = options.replyExpire ?? '1m';
  toPositiveMilliseconds(claimIdle, 'claimIdle');
  toPositiveMilliseconds(replyExpire, 'replyExpire');
  return {
    service: toNonEmptyString('service', options.service),
    broadcast: mode === 'broadcast',
    streamOf: toStreamOf(options.streamOf),
    concurrency: toPositiveInteger('concurrency', options.concurrency ?? 4),
    batch: toPositiveInteger('batch', options.batch ?? 10),
    claimIdle,
    maxDeliveries: toPositiveInteger('maxDeliveries', options.maxDeliveries ?? 5),
    retryBackoff,
    replyExpire,
    replyMaxLen: toPositiveInteger('replyMaxLen', options.replyMaxLen ?? 1_000),
  };
}

export interface ResolvedClientOptions {
  streamOf: (pattern: string) => string;
  timeoutMs: number;
  trim: StreamTrim;
}

/** The client's options with their defaults, checked. @throws InvalidOptionError naming the option. */
export function resolveClientOptions(options: RedisStreamsClientOptions): ResolvedClientOptions {
  const trim = options.trim ?? { maxLen: 100_000 };
  if (trim.maxLen !== undefined) toPositiveInteger('trim.maxLen', trim.maxLen);
  else toPositiveMilliseconds(trim.maxAge, 'trim.maxAge');
  return {
    streamOf: toStreamOf(options.streamOf),
    timeoutMs: toPositiveMilliseconds(options.timeout ?? '30s', 'timeout'),
    trim,
  };
}

function toStreamOf(streamOf: unknown): (pattern: string) => string {
  if (streamOf === undefined) return defaultStreamOf;
  if (typeof streamOf !== 'function') throw new InvalidOptionError('streamOf', 'a function from pattern to stream name', streamOf);
  return streamOf as (pattern: string) => string;
}
