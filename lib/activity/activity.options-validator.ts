import { resolveCalendar, type CalendarOptions } from '../core/calendar.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toPositiveInteger } from '../core/validation.js';
import type { ActivityTrackerOptions } from './activity.options.js';

/** A tracker's options after validation. */
export interface ResolvedActivityOptions {
  calendar: CalendarOptions;
  retain: number;
  clock: () => number;
  ids: 'string' | 'integer';
  warnAtBytes: number;
}

/** Every default of a tracker's options, in one place. */
export const DEFAULT_ACTIVITY_OPTIONS = { period: 'day', retain: 35, ids: 'string', warnAtBytes: 16 * 1024 * 1024 } as const;

const PERIODS = ['hour', 'day', 'week', 'month'] as const;
const IDS = ['string', 'integer'] as const;

/** Validates one tracker's options; `where` names them in errors (`activity.users`). */
export function resolveActivityOptions(options: ActivityTrackerOptions | undefined, where: string): ResolvedActivityOptions {
  const given = knownRecord(where, options, [
    'period',
    'timeZone',
    'weekStart',
    'retain',
    'clock',
    'ids',
    'warnAtBytes',
  ]) as ActivityTrackerOptions;
  const period = given.period ?? DEFAULT_ACTIVITY_OPTIONS.period;
  if (!PERIODS.includes(period)) throw new InvalidOptionError(`${where}.period`, PERIODS.map((p) => `'${p}'`).join(', '), period);
  const calendar = resolveCalendar(where, period, given);
  const retain = given.retain ?? DEFAULT_ACTIVITY_OPTIONS.retain;
  if (!Number.isSafeInteger(retain) || retain < 0) throw new InvalidOptionError(`${where}.retain`, 'an integer of at least 0', retain);
  const clock = given.clock ?? Date.now;
  if (typeof clock !== 'function') throw new InvalidOptionError(`${where}.clock`, 'a function returning ms since the epoch', clock);
  const ids = given.ids ?? DEFAULT_ACTIVITY_OPTIONS.ids;
  if (!IDS.includes(ids)) throw new InvalidOptionError(`${where}.ids`, IDS.map((kind) => `'${kind}'`).join(' or '), ids);
  const warnAtBytes = toPositiveInteger(`${where}.warnAtBytes`, given.warnAtBytes ?? DEFAULT_ACTIVITY_OPTIONS.warnAtBytes);
  return { calendar, retain, clock, ids, warnAtBytes };
}
