import type { Logger } from '@nestjs/common';
import { assertRetained, periodAfter, retainedPeriodAt, toInstant, type CalendarPeriod, type RetainedPeriod } from '../core/calendar.js';
import { InvalidOptionError } from '../core/errors.js';
import type { RedisKeys } from '../core/keys.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { toTextArgument } from '../core/validation.js';
import type { RetentionReport } from './activity.options.js';
import type { ResolvedActivityOptions } from './activity.options-validator.js';

const markScript = RedisScript.fromFile(new URL('./activity-mark.lua', import.meta.url));
const activeScript = RedisScript.fromFile(new URL('./activity-active.lua', import.meta.url));
const combineScript = RedisScript.fromFile(new URL('./activity-combine.lua', import.meta.url));
const retentionScript = RedisScript.fromFile(new URL('./activity-retention.lua', import.meta.url));

/** The longest string id, in characters. */
const MAX_ID_LENGTH = 1_024;
/** The highest bit offset SETBIT takes. */
const MAX_OFFSET = 2 ** 32 - 1;

/** An id: a string with `ids: 'string'` (the default), an integer 0 to 2^32 - 1 with `ids: 'integer'`. */
export type ActivityId = string | number;

/**
 * Who was active when: one bit per id in a Redis bitmap per period (hour, day, week or month),
 * so counts are exact and a million ids take 125 KB a period. Combinations of periods (active
 * every day of a week, any day of it, day-N retention of a cohort) are counted in one script on
 * the server. All keys of a tracker share a hash tag, so this works on a Cluster too.
 *
 * With `ids: 'string'`, each id is given a dense bit offset (0, 1, 2...) the first time it is
 * marked, atomically, so every instance agrees; the map from ids to offsets never expires and
 * takes about 50 bytes plus the id's length per id (58 bytes for `user-12345`, 90 for a UUID).
 *
 * @example
 * await users.mark(userId);                          // active now
 * const today = await users.count();
 * const everyDay = await users.countAll(lastSevenDays);
 * const { cohort, periods } = await users.retention(firstDay, [1, 7, 30]);
 */
export class ActivityTracker {
  private warned = false;

  constructor(
    /** The tracker's name, as given to `tracker(name)`. */
    readonly name: string,
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedActivityOptions,
    private readonly outage: OutageLog,
    private readonly logger: Logger,
  ) {}

  /**
   * Marks `id` active in the period containing `at` (now by default). Resolves true when it was
   * not marked in that period yet. A past period can be marked while it is retained; an older one
   * is refused with an `InvalidOptionError` naming `at`.
   * @example
   * await users.mark(userId);
   * await users.mark(userId, new Date('2026-12-01T10:00:00Z'));
   */
  async mark(id: ActivityId, at?: Date | number): Promise<boolean> {
    const checked = this.checkId(id);
    const period = this.writablePeriod(at === undefined ? this.now() : toInstant('at', at));
    const keys = this.options.ids === 'string' ? [this.periodKey(period), this.idsKey, this.nextKey] : [this.periodKey(period)];
    const [isNew, offset] = await this.outage.guard(markScript.run<[number, number]>(this.redis, keys, [period.expiresAt, checked]));
    this.warnIfLarge(offset, period);
    return isNew === 1;
  }

  /**
   * Whether `id` was marked in the period containing `at` (now by default). A string id never
   * marked is false, and is not given an offset.
   * @example
   * if (await users.wasActive(userId, yesterday)) { ... }
   */
  async wasActive(id: ActivityId, at?: Date | number): Promise<boolean> {
    const checked = this.checkId(id);
    const key = this.periodKey(this.periodOf(at));
    const bit =
      this.options.ids === 'string'
        ? activeScript.run<number>(this.redis, [key, this.idsKey], [checked])
        : this.redis.getbit(key, checked as number);
    return (await this.outage.guard(bit)) === 1;
  }

  /**
   * How many ids were active in the period containing `at` (now by default), exactly. An expired
   * period counts 0.
   * @example
   * const dailyActives = await users.count();
   */
  async count(at?: Date | number): Promise<number> {
    return this.outage.guard(this.redis.bitcount(this.periodKey(this.periodOf(at))));
  }

  /**
   * How many ids were active in every one of the periods containing `periods` (at most
   * `retain + 1` instants), exactly: a BITOP AND on the server.
   * @example
   * const week = Array.from({ length: 7 }, (_, i) => Date.now() - i * 86_400_000);
   * const everyDay = await users.countAll(week);
   */
  async countAll(periods: readonly (Date | number)[]): Promise<number> {
    return this.combine('AND', periods);
  }

  /**
   * How many ids were active in at least one of the periods containing `periods` (at most
   * `retain + 1` instants), exactly: a BITOP OR on the server.
   * @example
   * const weeklyActives = await users.countAny(week);
   */
  async countAny(periods: readonly (Date | number)[]): Promise<number> {
    return this.combine('OR', periods);
  }

  /**
   * Of the ids active in the period containing `cohort`, how many were active again `offset`
   * periods later, for each of `offsets` (integers 0 to `retain`), in one script.
   * @example
   * const report = await users.retention(new Date('2026-11-01'), [1, 7, 30]);
   * // { cohort: 1200, periods: [{ offset: 1, active: 540, rate: 0.45 }, { offset: 7, ... }, { offset: 30, ... }] }
   */
  async retention(cohort: Date | number, offsets: readonly number[]): Promise<RetentionReport> {
    const { retain } = this.options;
    const first = this.periodAt(toInstant('cohort', cohort));
    if (!Array.isArray(offsets) || offsets.length === 0 || offsets.length > retain + 1)
      throw new InvalidOptionError('offsets', `an array of 1 to ${retain + 1} integers`, offsets);
    offsets.forEach((offset, index) => {
      if (!Number.isSafeInteger(offset) || offset < 0 || offset > retain)
        throw new InvalidOptionError(`offsets[${index}]`, `an integer from 0 to ${retain} (the periods retained)`, offset);
    });
    const later = offsets.map((offset) => this.periodKey(periodAfter(first, offset, this.options.calendar)));
    const [size, ...actives] = await this.outage.guard(
      retentionScript.run<number[]>(this.redis, [this.scratchKey, this.periodKey(first), ...later]),
    );
    return {
      cohort: size,
      periods: offsets.map((offset, index) => ({ offset, active: actives[index], rate: size === 0 ? 0 : actives[index] / size })),
    };
  }

  /** The id of the period that `mark` writes now (`h:2026-12-05T13:00Z`, `d:2026-12-05`, `w:2026-11-30`, `m:2026-12`). */
  get periodId(): string {
    return this.periodAt(this.now()).id;
  }

  private async combine(operation: 'AND' | 'OR', periods: readonly (Date | number)[]): Promise<number> {
    const limit = this.options.retain + 1;
    if (!Array.isArray(periods) || periods.length === 0 || periods.length > limit)
      throw new InvalidOptionError('periods', `an array of 1 to ${limit} instants (the periods retained)`, periods);
    const keys = periods.map((at, index) => this.periodKey(this.periodAt(toInstant(`periods[${index}]`, at))));
    return this.outage.guard(combineScript.run<number>(this.redis, [this.scratchKey, ...keys], [operation]));
  }

  /** The id as sent to Redis, or an `InvalidOptionError` naming `id`. */
  private checkId(id: unknown): string | number {
    if (this.options.ids === 'integer') {
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0 || id > MAX_OFFSET)
        throw new InvalidOptionError('id', `an integer from 0 to ${MAX_OFFSET} (tracker "${this.name}" has ids: 'integer')`, id);
      return id;
    }
    const text = toTextArgument('id', id);
    if (text.length > MAX_ID_LENGTH) throw new InvalidOptionError('id', `a string of 1 to ${MAX_ID_LENGTH} characters`, text.slice(0, 40));
    return text;
  }

  private periodAt(instant: number): RetainedPeriod {
    return retainedPeriodAt(instant, this.options.retain, this.options.calendar);
  }

  private periodOf(at: Date | number | undefined): RetainedPeriod {
    return this.periodAt(at === undefined ? this.now() : toInstant('at', at));
  }

  /** The period to mark: a past one only while it is retained. */
  private writablePeriod(instant: number): RetainedPeriod {
    const period = this.periodAt(instant);
    assertRetained(period, this.now(), 'at', `tracker "${this.name}"`, this.options.retain);
    return period;
  }

  /** Logs once when a period's bitmap grows past `warnAtBytes`. */
  private warnIfLarge(offset: number, period: RetainedPeriod): void {
    const bytes = Math.floor(offset / 8) + 1;
    if (this.warned || bytes <= this.options.warnAtBytes) return;
    this.warned = true;
    this.logger.warn(
      `Activity tracker "${this.name}": the bitmap of ${period.id} is now ${bytes} bytes, over warnAtBytes (${this.options.warnAtBytes}); ` +
        `every period with an id at offset ${offset} takes as much (logged once per tracker)`,
    );
  }

  private periodKey(period: CalendarPeriod): string {
    return this.keys.tagged(['act', this.name], period.id);
  }

  private get idsKey(): string {
    return this.keys.tagged(['act', this.name], 'ids');
  }

  private get nextKey(): string {
    return this.keys.tagged(['act', this.name], 'next');
  }

  private get scratchKey(): string {
    return this.keys.tagged(['act', this.name], 'scratch');
  }

  private now(): number {
    const now = this.options.clock();
    if (!Number.isFinite(now)) throw new InvalidOptionError(`activity.${this.name}.clock`, 'a function returning ms since the epoch', now);
    return now;
  }
}
