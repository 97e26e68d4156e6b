import type { RedisKeys } from '../core/keys.js';

/** The keys of one queue, all under the hash tag `{q:<name>}`, so its scripts run on one Cluster slot. */
export interface QueueKeyset {
  /** Hash: job id -> encoded payload, for every job in the queue (waiting, delayed, active or dead). */
  jobs: string;
  /** List of ready job ids: added at the head, taken from the tail. */
  ready: string;
  /** Sorted set of job ids waiting for their delay or backoff, scored by due time (ms, Redis's clock). */
  delayed: string;
  /** Sorted set of leased job ids, scored by lease deadline (ms, Redis's clock). */
  active: string;
  /** Hash: job id -> attempts so far. */
  attempts: string;
  /** Hash: job id -> the lease token of the consumer that holds it. */
  leases: string;
  /** List of dead job ids, newest at the head. */
  dead: string;
  /** Hash: job id -> the message of its last error. */
  errors: string;
  /** List that wakes consumers blocked in BLPOP: one element per job made ready (at most 64). */
  signal: string;
}

/** The keys of the queue called `name`. */
export function queueKeys(keys: RedisKeys, name: string): QueueKeyset {
  const key = (part: string) => keys.tagged(['q', name], part);
  return {
    jobs: key('jobs'),
    ready: key('ready'),
    delayed: key('delayed'),
    active: key('active'),
    attempts: key('attempts'),
    leases: key('leases'),
    dead: key('dead'),
    errors: key('errors'),
    signal: key('signal'),
  };
}
