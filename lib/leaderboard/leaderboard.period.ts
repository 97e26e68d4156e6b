import type { ResolvedLeaderboardOptions } from './leaderboard.options-validator.js';

/** One period of a periodic board: its id (part of the key) and when the board expires. */
export interface Period {
  id: string;
  /** When this period's keys expire (ms since the epoch): `retain` periods after its end. Undefined for 'all'. */
  expiresAt?: number;
}

const DAY_MS = 86_400_000;

/**
 * The period that contains `instant`, in the board's time zone: `d:2026-11-25`,
 * `w:2026-11-23` (named by its first day), `m:2026-11`, or `all`.
 */
export function periodAt(instant: number, options: ResolvedLeaderboardOptions): Period {
  if (options.period === 'all') return { id: 'all' };
  const [year, month, day] = localDate(instant, options.timeZone);
  let start: [number, number, number];
  let next: (date: [number, number, number], count: number) => [number, number, number];
  if (options.period === 'month') {
    start = [year, month, 1];
    next = ([y, m], count) => civil(Date.UTC(y, m - 1 + count, 1));
  } else {
    const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
    const back = options.period === 'week' ? (weekday - options.weekStart + 7) % 7 : 0;
    start = civil(Date.UTC(year, month - 1, day) - back * DAY_MS);
    const length = options.period === 'week' ? 7 : 1;
    next = ([y, m, d], count) => civil(Date.UTC(y, m - 1, d) + count * length * DAY_MS);
  }
  const name = options.period === 'month' ? `m:${start[0]}-${pad(start[1])}` : `${options.period[0]}:${start[0]}-${pad(start[1])}-${pad(start[2])}`;
  return { id: name, expiresAt: localMidnight(next(start, 1 + options.retain), options.timeZone) };
}

/** The calendar date of `instant` in `timeZone`, as [year, month 1-12, day]. */
function localDate(instant: number, timeZone: string): [number, number, number] {
  const parts = formatter(timeZone).formatToParts(instant);
  const part = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return [part('year'), part('month'), part('day')];
}

/**
 * When a calendar date begins in `timeZone`: its first instant, DST included. Where a DST change
 * skips midnight (America/Santiago, America/Havana), the day begins at 01:00.
 */
function localMidnight(date: [number, number, number], timeZone: string): number {
  const wall = Date.UTC(date[0], date[1] - 1, date[2]);
  // The offset at midnight may differ from the offset at the first guess across a DST change.
  const first = wall - offsetAt(wall, timeZone);
  const second = wall - offsetAt(first, timeZone);
  const onTheDay = [first, second].filter((instant) => localDate(instant, timeZone).join() === date.join());
  return Math.min(...(onTheDay.length > 0 ? onTheDay : [first, second]));
}

/** The zone's offset from UTC at `instant`, in ms (wall time minus UTC). */
function offsetAt(instant: number, timeZone: string): number {
  const parts = formatter(timeZone).formatToParts(instant);
  const part = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  const wall = Date.UTC(part('year'), part('month') - 1, part('day'), part('hour') % 24, part('minute'), part('second'));
  return wall - Math.floor(instant / 1000) * 1000;
}

function civil(utcMidnight: number): [number, number, number] {
  const date = new Date(utcMidnight);
  return [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
}

function pad(value: number): string {
  return String(value).padStart(2, '0');
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, format);
  }
  return format;
}

/** Whether the runtime knows `timeZone` (an IANA name such as 'Europe/Paris'). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}
