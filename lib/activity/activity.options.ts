/**
 * Options of one activity tracker, given to `ActivityService.tracker(name, options)` or declared
 * under `activity` beside the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, activity: { users: { period: 'day', timeZone: 'Europe/Paris', retain: 35 } } });
 */
export interface ActivityTrackerOptions {
  /** A new bitmap every hour, day, week or month. @default 'day' */
  period?: 'hour' | 'day' | 'week' | 'month';
  /** The IANA time zone in which days begin at midnight. @default 'UTC' */
  timeZone?: string;
  /** The day weeks begin on, 0 (Sunday) to 6 (Saturday). @default 1 (Monday) */
  weekStart?: number;
  /**
   * How many past periods are kept (readable, combinable, markable) after the current one; each
   * period's bitmap expires exactly when the `retain`-th period after it ends. Day-30 retention
   * needs at least 30. @default 35
   */
  retain?: number;
  /** The clock that decides the current period (ms since the epoch). @default Date.now */
  clock?: () => number;
  /**
   * What ids are: `'string'` (any text; each id is given a dense bit offset the first time it is
   * marked, kept in a hash that never expires), or `'integer'` (safe integers 0 to 2^32 - 1, used
   * as bit offsets directly: give dense ones, a bitmap is as long as its highest id / 8 bytes).
   * @default 'string'
   */
  ids?: 'string' | 'integer';
  /**
   * A period's bitmap size (highest bit offset / 8) above which a warning is logged, once per
   * tracker. @default 16 MiB (134,217,728 ids)
   */
  warnAtBytes?: number;
}

/** What {@link ActivityTracker.retention} answers: the cohort's size, and how many of it came back after each offset. */
export interface RetentionReport {
  /** How many ids were active in the cohort's period. */
  cohort: number;
  /** One entry per offset, in the order given. */
  periods: RetentionPeriod[];
}

/** How many of a cohort were active again `offset` periods later. */
export interface RetentionPeriod {
  offset: number;
  /** Ids active both in the cohort's period and in this one. */
  active: number;
  /** `active / cohort`, 0 when the cohort is empty. */
  rate: number;
}
