import type { Duration } from '../core/duration.js';

/** Where an event came from, passed to stream handlers beside the event. */
export interface StreamMessageInfo {
  /** The entry id, e.g. `1732440000000-0`. */
  id: string;
  stream: string;
  group: string;
  /** How many times this entry has been delivered, this delivery included. */
  deliveries: number;
}

/** Handles one event. Resolve to acknowledge it; throw (or reject) to have it delivered again. */
export type StreamHandler<T> = (event: T, info: StreamMessageInfo) => unknown;

/**
 * Options of `StreamService.consume()` and `@OnStreamMessage()`.
 *
 * @example
 * { consumer: 'worker-1', batch: 50, block: '5s', claimIdle: '1m', maxDeliveries: 3 }
 */
export interface ConsumeOptions {
  /** This consumer's name in the group. @default `<hostname>-<pid>-<random>` */
  consumer?: string;
  /** How many entries one read fetches. @default 10 */
  batch?: number;
  /** How long one read waits for new entries. @default '2s' */
  block?: Duration;
  /**
   * Entries left pending this long (their consumer died, or their handler failed) are claimed and
   * delivered again. Also the delay before a failed entry is retried.
   * @default '30s'
   */
  claimIdle?: Duration;
  /** After this many deliveries, an entry that still fails moves to the dead-letter stream. @default 5 */
  maxDeliveries?: number;
  /**
   * Retry a failed entry in this consumer after a capped exponential backoff (with jitter) from
   * `min` to `max`, instead of waiting for `claimIdle`. Keep `max` under `claimIdle`.
   * @example { min: '100ms', max: '5s' }
   */
  retryBackoff?: { min: Duration; max: Duration };
  /** Where a new group starts: the whole stream (`'start'`) or only entries added from now on (`'new'`). @default 'start' */
  from?: 'start' | 'new';
}

/** Options of `StreamService.add()`. */
export interface AddOptions {
  /** Trim the stream to about this many entries (`MAXLEN ~`). */
  maxLen?: number;
  /** Trim away entries older than this (`MINID ~`, by the entry ids' time). Not with `maxLen`. @example '1h' */
  maxAge?: Duration;
  /** Let the whole stream expire this long after its last add (for streams whose reader may vanish). @example '1m' */
  expire?: Duration;
}

/** Options of `StreamService.tail()`. */
export interface TailOptions {
  /** Read the whole stream (`'start'`) or only entries added from now on (`'new'`). @default 'start' */
  from?: 'start' | 'new';
  /** How many entries one read fetches. @default 100 */
  batch?: number;
  /** How long one read waits for new entries. @default '2s' */
  block?: Duration;
}

/** The backlog of a consumer group, as `StreamService.backlog()` reads it. */
export interface StreamGroupBacklog {
  /** Entries given to the group and not acknowledged. */
  pending: number;
  /** How long ago the oldest pending entry was added (by its id), in milliseconds; 0 when none is pending. */
  oldestPendingMs: number;
  /** Entries in the stream's dead-letter stream. */
  deadLetters: number;
}

/** An entry of a dead-letter stream. */
export interface DeadLetter<T = unknown> {
  /** The id of the dead-letter entry. */
  id: string;
  /** The id the event had in its stream. */
  originalId: string;
  group: string;
  deliveries: number;
  reason: 'max-deliveries' | 'malformed';
  /** What the handler threw on its last delivery (for `max-deliveries`), when known. */
  error?: string;
  /** The event, or undefined when it could not be decoded. */
  event: T | undefined;
}
