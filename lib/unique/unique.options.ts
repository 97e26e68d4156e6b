/**
 * Options of one unique counter, given to `UniqueCounterService.counter(name, options)` or
 * declared under `uniqueCounters` beside the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, uniqueCounters: { visitors: { period: 'day', timeZone: 'Europe/Paris', retain: 30 } } });
 */
export interface UniqueCounterOptions {
  /** One count for all time, or a new one every hour, day, week or month. @default 'day' */
  period?: 'hour' | 'day' | 'week' | 'month' | 'none';
  /** The IANA time zone in which days begin at midnight. @default 'UTC' */
  timeZone?: string;
  /** The day weeks begin on, 0 (Sunday) to 6 (Saturday). @default 1 (Monday) */
  weekStart?: number;
  /**
   * How many past periods are kept (readable, and countable in ranges) after the current one;
   * each period's key expires exactly when the `retain`-th period after it ends. @default 7
   */
  retain?: number;
  /** The clock that decides the current period (ms since the epoch). @default Date.now */
  clock?: () => number;
}

/** A range of periods: from the one containing `from` to the one containing `to`, both included. */
export interface PeriodRange {
  from: Date | number;
  to: Date | number;
}
