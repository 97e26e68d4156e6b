import { resolveCalendar } from '../core/calendar.js';
import { InvalidOptionError } from '../core/errors.js';
import { knownRecord, toPositiveInteger } from '../core/validation.js';
import type { LeaderboardOptions } from './leaderboard.options.js';

/** A board's options after validation, with every default applied. */
export interface ResolvedLeaderboardOptions {
  order: 'desc' | 'asc';
  ties: 'first-come' | 'shared';
  period: 'all' | 'day' | 'week' | 'month';
  timeZone: string;
  weekStart: number;
  retain: number;
  /** 0 for no limit. */
  maxSize: number;
  clock: () => number;
}

/** Every default of a board's options, in one place. */
export const DEFAULT_LEADERBOARD_OPTIONS = {
  order: 'desc',
  ties: 'first-come',
  period: 'all',
  timeZone: 'UTC',
  weekStart: 1,
  retain: 1,
} as const;

const KNOWN = ['order', 'ties', 'period', 'timeZone', 'weekStart', 'retain', 'maxSize', 'clock'];

/** Validates one board's options; `where` names them in errors (`leaderboards.weekly`). */
export function resolveLeaderboardOptions(options: LeaderboardOptions | undefined, where: string): ResolvedLeaderboardOptions {
  const given = knownRecord(where, options, KNOWN) as LeaderboardOptions;
  const defaults = DEFAULT_LEADERBOARD_OPTIONS;
  const order = oneOf(`${where}.order`, given.order ?? defaults.order, ['desc', 'asc'] as const);
  const ties = oneOf(`${where}.ties`, given.ties ?? defaults.ties, ['first-come', 'shared'] as const);
  const period = oneOf(`${where}.period`, given.period ?? defaults.period, ['all', 'day', 'week', 'month'] as const);
  const { timeZone, weekStart } = resolveCalendar(where, 'day', {
    timeZone: given.timeZone ?? defaults.timeZone,
    weekStart: given.weekStart ?? defaults.weekStart,
  });
  const retain = given.retain ?? defaults.retain;
  if (!Number.isSafeInteger(retain) || retain < 0) throw new InvalidOptionError(`${where}.retain`, 'an integer of at least 0', retain);
  const maxSize = given.maxSize === undefined ? 0 : toPositiveInteger(`${where}.maxSize`, given.maxSize);
  const clock = given.clock ?? Date.now;
  if (typeof clock !== 'function') throw new InvalidOptionError(`${where}.clock`, 'a function returning ms since the epoch', clock);
  return { order, ties, period, timeZone, weekStart, retain, maxSize, clock };
}

function oneOf<T extends string>(option: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new InvalidOptionError(option, allowed.map((v) => `'${v}'`).join(' or '), value);
  return value as T;
}
