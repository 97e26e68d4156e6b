import type { Logger } from '@nestjs/common';
import { OutageLog } from '../core/outage-log.js';
import type { CacheStats } from './cache.stats.js';

/**
 * What a failed Redis call means to the cache. Reads miss on an outage (the loader runs), writes
 * and deletes fail closed with a `RedisUnavailableError` (503), background work is logged. An
 * error that is not an outage (a WRONGTYPE on a cache key) is thrown by reads and writes alike.
 * An outage is logged once, and every failure counts in `stats().errors`.
 */
export class CacheFailures {
  private readonly outage: OutageLog;

  constructor(
    private readonly logger: Logger,
    private readonly counters: CacheStats,
  ) {
    this.outage = new OutageLog(logger, 'the cache', 'reads call loaders directly and writes fail with 503');
  }

  /** A call Redis answered: an outage ends once none has failed for a second. */
  answered(): void {
    this.outage.succeeded();
  }

  /** A read that Redis could not answer is a miss (logged once per outage); any other error is thrown. */
  missOnOutage(error: unknown): void {
    this.counters.errors++;
    if (this.outage.failed(error) === undefined) throw error;
  }

  /** Background work that failed: an outage is logged once, anything else on its own line. */
  noteFailure(error: unknown, doing: string): void {
    this.counters.errors++;
    this.outage.report(error, doing);
  }

  /** A write or delete that failed: an outage becomes a RedisUnavailableError (503), logged once. */
  failClosed(error: unknown): never {
    this.counters.errors++;
    throw this.outage.toError(error);
  }

  /** An entry the codec cannot read: logged by key (never its value) and counted; the caller drops it. */
  unreadable(valueKey: string, error: unknown): void {
    this.counters.errors++;
    this.logger.warn(`Dropped the cache entry "${valueKey}": ${(error as Error).message.split(' (')[0]}`);
  }
}
