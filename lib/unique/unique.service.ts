import { Injectable, Logger } from '@nestjs/common';
import { RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { toInstanceName } from '../core/validation.js';
import { UniqueCounter } from './unique.counter.js';
import type { UniqueCounterOptions } from './unique.options.js';
import { resolveUniqueCounterOptions } from './unique.options-validator.js';

/**
 * Unique counts on Redis HyperLogLogs: distinct visitors, searches or devices per hour, day,
 * week or month, in about 12 KB per period, with ranges counted as unions.
 *
 * @example
 * const visitors = this.uniques.counter('visitors', { period: 'day', retain: 30 });
 * await visitors.add(userId);
 * const lastWeek = await visitors.count({ from: Date.now() - 6 * 86_400_000, to: Date.now() });
 */
@Injectable()
export class UniqueCounterService {
  private readonly redis: RedisClient;
  private readonly declared = new Map<string, UniqueCounter>();
  private countersMade = 0;
  private lostAdds = 0;
  /** Outages of counting; also what `@CountUnique` logs, once per outage. */
  readonly outage = new OutageLog(
    new Logger('RedisPatterns:UniqueCounter'),
    'unique counters',
    'calls reject with RedisUnavailableError (503), and @CountUnique counts nothing',
  );

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
  ) {
    this.redis = connections.get();
  }

  /** Whether a counter was made (declared counters are made at startup). */
  get inUse(): boolean {
    return this.countersMade > 0;
  }

  /** How many `@CountUnique` additions were lost (Redis unreachable, or `by` threw) since startup. */
  get lostCounts(): number {
    return this.lostAdds;
  }

  /**
   * The counter called `name`. Its options are checked here; give the same options wherever the
   * counter is used (they are not stored in Redis).
   * @example
   * const searches = this.uniques.counter('searches', { period: 'hour', retain: 48 });
   */
  counter(name: string, options: UniqueCounterOptions = {}): UniqueCounter {
    toInstanceName(name, 'a counter');
    this.countersMade++;
    return new UniqueCounter(name, this.redis, this.keys, resolveUniqueCounterOptions(options, `uniqueCounters.${name}`), this.outage);
  }

  /** Makes a counter declared under `uniqueCounters`, which `@CountUnique(name)` then finds. */
  declare(name: string, options: UniqueCounterOptions): UniqueCounter {
    const counter = this.counter(name, options);
    this.declared.set(name, counter);
    return counter;
  }

  /** The counter declared as `name` under `uniqueCounters`, for `@CountUnique`. */
  declaredCounter(name: string, where: string): UniqueCounter {
    const counter = this.declared.get(name);
    if (!counter) throw new RedisPatternsError(`${where}: no counter "${name}" is declared under uniqueCounters in the module options.`);
    return counter;
  }

  /** Adds without the caller waiting: a failure is counted, and logged (an outage once). */
  addInBackground(counter: UniqueCounter, items: () => string | readonly string[] | null | undefined, where: string): void {
    let chosen;
    try {
      chosen = items();
    } catch (error) {
      this.lost(error, `count for ${where}: the by function threw`);
      return;
    }
    if (chosen === null || chosen === undefined) return;
    void counter.add(chosen).catch((error: unknown) => this.lost(error, `count for ${where}`));
  }

  private lost(error: unknown, doing: string): void {
    this.lostAdds++;
    this.outage.report(error, doing);
  }
}
