import { resolveCalendar, type CalendarOptions } from '../core/calendar.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord } from '../core/validation.js';
import type { UniqueCounterOptions } from './unique.options.js';

/** A counter's options after validation: its calendar (none for `period: 'none'`), `retain` and clock. */
export interface ResolvedUniqueCounterOptions {
  calendar: CalendarOptions | undefined;
  retain: number;
  clock: () => number;
}

/** Every default of a counter's options, in one place. */
export const DEFAULT_UNIQUE_COUNTER_OPTIONS = { period: 'day', retain: 7 } as const;

const PERIODS = ['hour', 'day', 'week', 'month', 'none'] as const;

/** Validates one counter's options; `where` names them in errors (`uniqueCounters.visitors`). */
export function resolveUniqueCounterOptions(options: UniqueCounterOptions | undefined, where: string): ResolvedUniqueCounterOptions {
  const given = knownRecord(where, options, ['period', 'timeZone', 'weekStart', 'retain', 'clock']) as UniqueCounterOptions;
  const period = given.period ?? DEFAULT_UNIQUE_COUNTER_OPTIONS.period;
  if (!PERIODS.includes(period)) throw new InvalidOptionError(`${where}.period`, PERIODS.map((p) => `'${p}'`).join(', '), period);
  const calendar = period === 'none' ? undefined : resolveCalendar(where, period, given);
  const retain = given.retain ?? DEFAULT_UNIQUE_COUNTER_OPTIONS.retain;
  if (!Number.isSafeInteger(retain) || retain < 0) throw new InvalidOptionError(`${where}.retain`, 'an integer of at least 0', retain);
  const clock = given.clock ?? Date.now;
  if (typeof clock !== 'function') throw new InvalidOptionError(`${where}.clock`, 'a function returning ms since the epoch', clock);
  return { calendar, retain, clock };
}
