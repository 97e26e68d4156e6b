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
  /** Where a new group starts: the whole stream (`'start'`) or only entries added from now on (`'new'`). @default 'start' */
  from?: 'start' | 'new';
}

/** Options of `StreamService.add()`. */
export interface AddOptions {
  /** Trim the stream to about this many entries (`MAXLEN ~`). */
  maxLen?: number;
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
  /** The event, or undefined when it could not be decoded. */
  event: T | undefined;
}
