import { InvalidOptionError } from './errors.js';

/** The length of a calendar period: periodic leaderboards, unique counters and activity trackers start a new key with each. */
export type CalendarUnit = 'hour' | 'day' | 'week' | 'month';

/** How periods are cut: their unit, the IANA time zone in which days begin at midnight, and the first day of a week. */
export interface CalendarOptions {
  unit: CalendarUnit;
  timeZone: string;
  /** 0 (Sunday) to 6 (Saturday). */
  weekStart: number;
}

/** One period: its id (part of a key) and its first instant (ms since the epoch). */
export interface CalendarPeriod {
  /** `h:2026-11-25T13:00Z` (an hour, named by its start in UTC), `d:2026-11-25`, `w:2026-11-23` (named by its first day), `m:2026-11`. */
  id: string;
  start: number;
}

const HOUR_MS = 3_600_000;
const QUARTER_MS = 900_000;
const DAY_MS = 86_400_000;

type CivilDate = [year: number, month: number, day: number];

/**
 * Periods worked out already, as the time zone's rules make them costly (several
 * `Intl.DateTimeFormat` calls each): the periods found by `periodAt`, with their ends, by
 * calendar and quarter of an hour (every zone's offset is a whole number of quarters), and the
 * answers of `periodAfter`. Bounded: each is cleared when it holds MEMO_LIMIT answers.
 */
const periodsAt = new Map<string, { period: CalendarPeriod; end: number }>();
const periodsAfter = new Map<string, CalendarPeriod>();
const MEMO_LIMIT = 4_096;

const calendarKey = (calendar: CalendarOptions) => `${calendar.unit}|${calendar.timeZone}|${calendar.weekStart}`;

/** The period that contains `instant`. */
export function periodAt(instant: number, calendar: CalendarOptions): CalendarPeriod {
  const key = `${calendarKey(calendar)}|${Math.floor(instant / QUARTER_MS)}`;
  const known = periodsAt.get(key);
  // Checked, not trusted: a quarter may straddle two periods in an old zone's odd offsets.
  if (known && known.period.start <= instant && instant < known.end) return known.period;
  const period = computePeriodAt(instant, calendar);
  if (periodsAt.size >= MEMO_LIMIT) periodsAt.clear();
  periodsAt.set(key, { period, end: periodAfter(period, 1, calendar).start });
  return period;
}

function computePeriodAt(instant: number, calendar: CalendarOptions): CalendarPeriod {
  if (calendar.unit === 'hour') {
    const offset = offsetAt(instant, calendar.timeZone);
    return hourPeriod(Math.floor((instant + offset) / HOUR_MS) * HOUR_MS - offset);
  }
  const [year, month, day] = localDate(instant, calendar.timeZone);
  if (calendar.unit === 'month') return datePeriod([year, month, 1], calendar);
  const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay();
  const back = calendar.unit === 'week' ? (weekday - calendar.weekStart + 7) % 7 : 0;
  return datePeriod(civil(Date.UTC(year, month - 1, day) - back * DAY_MS), calendar);
}

/** The period `count` periods after `period` (before it when negative). */
export function periodAfter(period: CalendarPeriod, count: number, calendar: CalendarOptions): CalendarPeriod {
  if (calendar.unit === 'hour') return hourPeriod(period.start + count * HOUR_MS);
  const key = `${calendarKey(calendar)}|${period.start}|${count}`;
  let after = periodsAfter.get(key);
  if (!after) {
    after = computePeriodAfter(period, count, calendar);
    if (periodsAfter.size >= MEMO_LIMIT) periodsAfter.clear();
    periodsAfter.set(key, after);
  }
  return after;
}

function computePeriodAfter(period: CalendarPeriod, count: number, calendar: CalendarOptions): CalendarPeriod {
  const [year, month, day] = localDate(period.start, calendar.timeZone);
  if (calendar.unit === 'month') return datePeriod(civil(Date.UTC(year, month - 1 + count, 1)), calendar);
  const length = calendar.unit === 'week' ? 7 : 1;
  return datePeriod(civil(Date.UTC(year, month - 1, day) + count * length * DAY_MS), calendar);
}

/** When the keys of `period` expire, kept for `retain` periods after it ends: the start of the period `1 + retain` after it. */
export function expiryOf(period: CalendarPeriod, retain: number, calendar: CalendarOptions): number {
  return periodAfter(period, 1 + retain, calendar).start;
}

/** A period with when its keys expire. */
export interface RetainedPeriod extends CalendarPeriod {
  expiresAt: number;
}

/**
 * The answers of `retained`, by period and `retain`: a period found by `periodAt` or `periodAfter`
 * is the same object for as long as those remember it, and belongs to one calendar.
 */
const retainedPeriods = new WeakMap<CalendarPeriod, Map<number, RetainedPeriod>>();

/** `period` with when its keys expire, kept `retain` periods after it ends. */
export function retained(period: CalendarPeriod, retain: number, calendar: CalendarOptions): RetainedPeriod {
  let byRetain = retainedPeriods.get(period);
  let found = byRetain?.get(retain);
  if (found === undefined) {
    found = { id: period.id, start: period.start, expiresAt: expiryOf(period, retain, calendar) };
    if (byRetain === undefined) retainedPeriods.set(period, (byRetain = new Map()));
    byRetain.set(retain, found);
  }
  return found;
}

/** The period that contains `instant`, with when its keys expire. */
export function retainedPeriodAt(instant: number, retain: number, calendar: CalendarOptions): RetainedPeriod {
  return retained(periodAt(instant, calendar), retain, calendar);
}

/**
 * Refuses to write to a period whose keys have expired at `now` (periods without an expiry are
 * always writable): an `InvalidOptionError` naming `argument`, and saying how many past periods
 * `owner` (`board "weekly"`) keeps.
 */
export function assertRetained(
  period: { id: string; expiresAt?: number },
  now: number,
  argument: string,
  owner: string,
  retain: number,
): void {
  if (period.expiresAt !== undefined && period.expiresAt <= now)
    throw new InvalidOptionError(argument, `a period still retained (${owner} keeps ${retain} past periods)`, period.id);
}

/**
 * The periods from the one containing `from` to the one containing `to`, oldest first; at most
 * `limit` of them, or an `InvalidOptionError` naming `option`.
 */
export function periodsBetween(from: number, to: number, calendar: CalendarOptions, limit: number, option: string): CalendarPeriod[] {
  if (to < from) throw new InvalidOptionError(`${option}.to`, `a time not before ${option}.from`, new Date(to).toISOString());
  const last = periodAt(to, calendar);
  const periods = [periodAt(from, calendar)];
  while (periods[periods.length - 1].start < last.start) {
    if (periods.length === limit)
      throw new InvalidOptionError(option, `a range of at most ${limit} periods`, `${periods[0].id} to ${last.id}`);
    periods.push(periodAfter(periods[periods.length - 1], 1, calendar));
  }
  return periods;
}

/** An instant given as a Date or ms since the epoch, or an `InvalidOptionError` naming `argument`. */
export function toInstant(argument: string, value: unknown): number {
  const instant = value instanceof Date ? value.getTime() : value;
  if (typeof instant !== 'number' || !Number.isFinite(instant))
    throw new InvalidOptionError(argument, 'a Date or ms since the epoch', value);
  return instant;
}

/** Checks the calendar options of `where` (`leaderboards.weekly`): `timeZone` (default 'UTC') and `weekStart` (default 1, Monday). */
export function resolveCalendar(where: string, unit: CalendarUnit, given: { timeZone?: unknown; weekStart?: unknown }): CalendarOptions {
  const timeZone = given.timeZone ?? 'UTC';
  if (typeof timeZone !== 'string' || !isTimeZone(timeZone))
    throw new InvalidOptionError(`${where}.timeZone`, "an IANA time zone such as 'Europe/Paris'", timeZone);
  const weekStart = given.weekStart ?? 1;
  if (typeof weekStart !== 'number' || !Number.isInteger(weekStart) || weekStart < 0 || weekStart > 6)
    throw new InvalidOptionError(`${where}.weekStart`, 'an integer from 0 (Sunday) to 6 (Saturday)', weekStart);
  return { unit, timeZone, weekStart };
}

/** Whether the runtime knows `timeZone` (an IANA name such as 'Europe/Paris'). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return timeZone.length > 0;
  } catch {
    return false;
  }
}

function hourPeriod(start: number): CalendarPeriod {
  return { id: `h:${new Date(start).toISOString().slice(0, 16)}Z`, start };
}

function datePeriod(date: CivilDate, calendar: CalendarOptions): CalendarPeriod {
  const id = calendar.unit === 'month' ? `m:${date[0]}-${pad(date[1])}` : `${calendar.unit[0]}:${date[0]}-${pad(date[1])}-${pad(date[2])}`;
  return { id, start: localMidnight(date, calendar.timeZone) };
}

/** The calendar date of `instant` in `timeZone`. */
function localDate(instant: number, timeZone: string): CivilDate {
  const parts = formatter(timeZone).formatToParts(instant);
  const part = (type: string) => Number(parts.find((p) => p.type === type)!.value);
  return [part('year'), part('month'), part('day')];
}

/**
 * When a calendar date begins in `timeZone`: its first instant, DST included. Where a DST change
 * skips midnight (America/Santiago, America/Havana), the day begins at 01:00.
 */
function localMidnight(date: CivilDate, timeZone: string): number {
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

function civil(utcMidnight: number): CivilDate {
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
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  return format;
}
