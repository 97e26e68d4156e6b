import type { Logger } from '@nestjs/common';
import { describeOutage, outageOf, RedisUnavailableError, type OutageKind } from './store-failure.js';

/** How long no call may fail before an outage counts as over. */
const QUIET_MS = 1_000;

/**
 * One feature's view of one Redis connection's outages. It tells outages from bugs (see
 * `outageOf`), logs an outage once when it begins and once when it ends, in the library's words
 * (never ioredis's), and turns it into a {@link RedisUnavailableError} (503) for callers that fail
 * closed. On a Cluster where one master fails, calls to the other masters keep succeeding in
 * between: the outage only counts as over once no call has failed for a second, so a partial
 * outage is not logged on every request.
 *
 * @example
 * const outage = new OutageLog(logger, 'leaderboards', 'calls fail with RedisUnavailableError (503)');
 * const top = await outage.guard(redis.zrevrange(key, 0, 9));
 */
export class OutageLog {
  private down = false;
  private lastFailureAt = 0;

  constructor(
    private readonly logger: Logger,
    /** The feature, as users know it: `'the cache'`, `'rate limiting'`, `'sessions'`. */
    private readonly feature: string,
    /** What the feature does while Redis is away, for the log: `'calling loaders directly'`. */
    private readonly whileDown: string,
    /** The name of the module connection it watches. */
    private readonly connection = 'default',
  ) {}

  /**
   * Notes a failed call. Returns the kind of outage, logged once per outage, or undefined when the
   * error is not an outage (it is then not logged: the caller throws it).
   */
  failed(error: unknown): OutageKind | undefined {
    const kind = outageOf(error);
    if (kind !== undefined) this.noteOutage(kind);
    return kind;
  }

  /** Notes an outage found without a failed call (a connection known not to be ready). */
  noteOutage(kind: OutageKind): void {
    this.lastFailureAt = Date.now();
    if (this.down) return;
    this.down = true;
    this.logger.warn(
      `Redis connection "${this.connection}" is unavailable to ${this.feature} (${describeOutage(kind)}); ${this.whileDown} until it is back`,
    );
  }

  /** Notes a call that Redis answered; logs the end of an outage after a quiet second. */
  succeeded(): void {
    if (!this.down || Date.now() - this.lastFailureAt < QUIET_MS) return;
    this.down = false;
    this.logger.log(`Redis connection "${this.connection}" is available to ${this.feature} again`);
  }

  /**
   * Notes a failure that no caller sees (background work): an outage is logged once, anything
   * else on a line of its own, saying what could not be done.
   * @example
   * refresh().catch((error: unknown) => outage.report(error, `refresh "${key}"`));
   */
  report(error: unknown, doing: string): void {
    if (this.failed(error) === undefined) this.logger.warn(`Could not ${doing}: ${(error as Error)?.message ?? String(error)}`);
  }

  /**
   * What a failing-closed caller throws for `error`: a {@link RedisUnavailableError} (logged once)
   * when it is an outage, the error itself otherwise.
   */
  toError(error: unknown): unknown {
    const kind = this.failed(error);
    if (kind === undefined || error instanceof RedisUnavailableError) return error;
    return new RedisUnavailableError(this.feature, kind, { cause: error, connection: this.connection });
  }

  /** Awaits a call to Redis: notes its success, or rejects with {@link toError} of its failure. */
  guard<T>(call: Promise<T>): Promise<T> {
    return call.then(
      (value) => {
        this.succeeded();
        return value;
      },
      (error: unknown) => {
        throw this.toError(error);
      },
    );
  }
}
