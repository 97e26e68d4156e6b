import { InvalidOptionError, MalformedTextError, ValueDescription } from './errors.js';

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
  if (unknown !== undefined)
    throw new InvalidOptionError(
      `${prefix}${unknown}`,
      `one of the known options (${known.join(', ')})`,
      new ValueDescription('an unknown option'),
    );
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

/**
 * `value` must be well-formed Unicode (no lone surrogate), or a {@link MalformedTextError} (400)
 * naming the argument is thrown. Redis stores text as UTF-8, where a lone surrogate becomes
 * U+FFFD: two different strings would become one key or member.
 */
export function assertWellFormed(argument: string, value: string): string {
  if (!value.isWellFormed()) throw new MalformedTextError(argument);
  return value;
}

/** `value` must be a non-empty string of well-formed Unicode; it names the argument when it is not. */
export function toTextArgument(argument: string, value: unknown): string {
  return assertWellFormed(argument, toNonEmptyString(argument, value));
}

/**
 * A member of a sorted set or set (a player, a place): a non-empty string of well-formed Unicode
 * of at most `maxBytes` bytes as UTF-8. Names the argument when it is not; a long one is shown cut.
 */
export function toMemberArgument(argument: string, value: unknown, maxBytes = 512): string {
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short members need no count.
  if (typeof value !== 'string' || value.length === 0 || (value.length * 3 > maxBytes && Buffer.byteLength(value) > maxBytes)) {
    throw new InvalidOptionError(
      argument,
      `a non-empty string of at most ${maxBytes} bytes`,
      typeof value === 'string' && value.length > 64 ? `${value.slice(0, 64)}… (${Buffer.byteLength(value)} bytes)` : value,
    );
  }
  // Stored as UTF-8, where a lone surrogate becomes U+FFFD: two members would be one.
  return assertWellFormed(argument, value);
}

/** The longest name of a named instance (a board, a filter, a counter, a queue...), in characters. */
export const MAX_INSTANCE_NAME_LENGTH = 128;

/**
 * The name of a named instance: 1 to {@link MAX_INSTANCE_NAME_LENGTH} characters of well-formed
 * Unicode, or an `InvalidOptionError` naming `option` that calls it `described` (`a board`).
 * @example
 * toInstanceName(name, 'a board'); // "Invalid option "name": expected a board name of 1 to 128 characters"
 */
export function toInstanceName(name: unknown, described: string, option = 'name'): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_INSTANCE_NAME_LENGTH)
    throw new InvalidOptionError(option, `${described} name of 1 to ${MAX_INSTANCE_NAME_LENGTH} characters`, name);
  return assertWellFormed(option, name);
}
