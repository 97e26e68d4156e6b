/** What a cron job's `cronTime` offers (cron's CronTime, as @nestjs/schedule registers it). */
export interface CronTimeLike {
  timeZone?: string;
  /** Minutes east of UTC, for a job given `utcOffset` instead of `timeZone`. */
  utcOffset?: number;
  /** The first date of the expression strictly after `start`. */
  getNextDateFrom(start: Date, timeZone?: string): { toMillis(): number };
}

/** How a job's fires come: a cron expression, or a fixed period. */
export type JobTimer = { cron: CronTimeLike } | { everyMs: number };

/**
 * How early a timer may go off and still count for the fire ahead: timers never run early, but
 * the wall clock they are compared with may be a few milliseconds behind.
 */
const EARLY_MS = 100;
/** The farthest back a cron expression's last date is looked for: longer than any gap between dates (cron looks 8 years ahead). */
const MAX_LOOKBACK_MS = 10 * 366 * 86_400_000;
/** At most this many dates are stepped through to the latest one (expressions that fire in bursts). */
const MAX_STEPS = 10_000;

/**
 * The scheduled instant of the fire a timer going off at `now` belongs to: the latest date of the
 * cron expression at or before `now` (in the job's time zone), or for an interval the start of the
 * period `now` falls in (`floor(now / period) * period`), so every instance names a fire the same
 * way however late its timer, as long as their clocks agree within the gap between fires.
 *
 * @example
 * fireAt({ everyMs: 60_000 }, Date.parse('2026-01-01T10:00:42Z')); // 2026-01-01T10:00:00Z
 */
export function fireAt(timer: JobTimer, now: number): number {
  if ('everyMs' in timer) return Math.floor(now / timer.everyMs) * timer.everyMs;
  const until = now + EARLY_MS;
  const zone = zoneOf(timer.cron);
  const next = (from: number) => timer.cron.getNextDateFrom(new Date(from), zone).toMillis();
  // Look back further each time until a date of the expression is found, then step to the latest.
  for (let backMs = 1_000; backMs <= MAX_LOOKBACK_MS; backMs *= 4) {
    let fire = next(until - backMs);
    if (fire > until) continue;
    for (let step = 0, after = next(fire); after <= until && step < MAX_STEPS; step++, after = next(fire)) fire = after;
    return fire;
  }
  throw new Error(`the cron expression has no date in the ${MAX_LOOKBACK_MS / 86_400_000} days before ${new Date(now).toISOString()}`);
}

/** The zone a cron expression is read in: its time zone, or its fixed offset as `UTC+hh:mm`. */
function zoneOf({ timeZone, utcOffset }: CronTimeLike): string | undefined {
  if (timeZone || utcOffset === undefined) return timeZone;
  const minutes = Math.abs(utcOffset);
  const pad = (value: number) => String(value).padStart(2, '0');
  return `UTC${utcOffset < 0 ? '-' : '+'}${pad(Math.trunc(minutes / 60))}:${pad(minutes % 60)}`;
}
