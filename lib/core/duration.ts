import { InvalidOptionError } from './errors.js';

/**
 * A duration: milliseconds as a number, or a string with one unit:
 * `'250ms'`, `'10s'`, `'5m'`, `'1h'`, `'1d'` (decimals allowed: `'1.5s'`).
 *
 * @example
 * RedisPatternsModule.forRoot({ connection: { url }, commandTimeout: '500ms' });
 */
export type Duration = number | `${number}${DurationUnit}`;

/** Units accepted in a duration string. */
export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

const MS_PER_UNIT: Record<DurationUnit, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The longest delay a Node.js timer can wait (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

const ACCEPTED = "a non-negative number of milliseconds or a string such as '250ms', '10s', '5m', '1h' or '1d'";

/**
 * Converts a duration to whole milliseconds (rounded up, so '0.5ms' is not 0).
 *
 * @param option the option's name, used in the error when the value is invalid.
 * @throws InvalidOptionError for negative, non-finite or unparseable values.
 * @example
 * toMilliseconds('1.5s', 'ttl'); // 1500
 */
export function toMilliseconds(value: Duration, option: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidOptionError(option, ACCEPTED, value);
    return Math.ceil(value);
  }
  const match = typeof value === 'string' ? DURATION_PATTERN.exec(value.trim()) : null;
  if (!match) throw new InvalidOptionError(option, ACCEPTED, value);
  // Round away float noise first ('2.007s' is 2007, not 2008), then up ('0.5ms' is 1).
  return Math.ceil(Math.round(Number(match[1]) * MS_PER_UNIT[match[2] as DurationUnit] * 1e6) / 1e6);
}

/** Like {@link toMilliseconds}, but also rejects 0. */
export function toPositiveMilliseconds(value: Duration, option: string): number {
  const ms = toMilliseconds(value, option);
  if (ms === 0) throw new InvalidOptionError(option, 'a duration greater than 0', value);
  return ms;
}

/** A duration that a timer waits for: like {@link toMilliseconds}, at most {@link MAX_TIMER_MS}. */
export function toTimerMilliseconds(value: Duration, option: string, { allowZero = false } = {}): number {
  const ms = allowZero ? toMilliseconds(value, option) : toPositiveMilliseconds(value, option);
  if (ms > MAX_TIMER_MS) throw new InvalidOptionError(option, 'a duration of at most 24 days (2147483647ms)', value);
  return ms;
}
