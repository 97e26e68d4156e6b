import { InvalidOptionError, ValueDescription } from './errors.js';

/** Small checks shared by every options validator; each throws an InvalidOptionError naming the option. */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value` (undefined counts as `{}`) must be an object with only the `known` properties. */
export function knownRecord(option: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new InvalidOptionError(option, 'an object', value);
  const prefix = option === '' ? '' : `${option}.`;
  const unknown = Object.keys(value).find((name) => !known.includes(name));
  if (unknown !== undefined) throw new InvalidOptionError(`${prefix}${unknown}`, `one of the known options (${known.join(', ')})`, new ValueDescription('an unknown option'));
  return value;
}

export function toBoolean(option: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(option, 'true or false', value);
  return value;
}

export function toPositiveInteger(option: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new InvalidOptionError(option, 'a positive integer', value);
  return value as number;
}

export function toNonEmptyString(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError(option, 'a non-empty string', value);
  return value;
}
