import type { LockService, RedisClient } from '../../../lib/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One hold of a side of a read-write lock, recorded on a Redis list so instances in several processes share one record. */
export interface RecordedHold {
  key: string;
  side: 'read' | 'write';
  holdMs: number;
  /** The list that gets `enter:<side>:<token>` once the lock is held and `leave:<side>:<token>` before it is released. */
  events: string;
}

/** Holds `side` of the lock on `key` for `holdMs` (waiting up to 30 s), recording its enter and leave; resolves with its fencing token. */
export function holdRecorded(locks: LockService, redis: RedisClient, hold: RecordedHold): Promise<number> {
  return locks.readWrite(hold.key)[hold.side].using(
    async (lock) => {
      await redis.rpush(hold.events, `enter:${hold.side}:${lock.fencingToken}`);
      await sleep(hold.holdMs);
      await redis.rpush(hold.events, `leave:${hold.side}:${lock.fencingToken}`);
      return lock.fencingToken;
    },
    { wait: '30s', ttl: '5s' },
  );
}

/**
 * A continuous read load: `loops` readers that each take the read side again as soon as they
 * left it (holding it `holdMs`), pushing each fencing token they get to the list `granted`, until
 * stopped. Readers overlap all the time: without writer preference the lock would never be free.
 */
export class ReadLoad {
  private stopped = false;
  private readonly running: Promise<number[]>;

  constructor(locks: LockService, redis: RedisClient, load: { key: string; loops: number; holdMs: number; granted: string }) {
    const side = locks.readWrite(load.key).read;
    this.running = Promise.all(
      Array.from({ length: load.loops }, async (_, i) => {
        let reads = 0;
        while (!this.stopped) {
          await side.using(
            async (lock) => {
              await redis.rpush(load.granted, String(lock.fencingToken));
              await sleep(load.holdMs + (i % 3) * 5);
            },
            { wait: '30s', ttl: '5s' },
          );
          reads++;
        }
        return reads;
      }),
    );
  }

  /** Stops the loops once their current read is over; resolves with how many reads they made. */
  async stop(): Promise<number> {
    this.stopped = true;
    return (await this.running).reduce((sum, reads) => sum + reads, 0);
  }
}
