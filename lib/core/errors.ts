import { BadRequestException } from '@nestjs/common';

/**
 * Base class of every error this library throws, so callers can tell them apart from
 * errors raised by Redis, ioredis or their own code.
 */
export class RedisPatternsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * An option or argument has a value the library cannot use. Thrown at module init for module
 * options and at the call for per-call options.
 *
 * @example
 * // RedisPatternsModule.forRoot({ connection: { url: 'http://x' } }) fails with:
 * // InvalidOptionError: Invalid option "connection.url": expected a redis:// or rediss:// URL, got "http://x".
 */
export class InvalidOptionError extends RedisPatternsError {
  constructor(
    readonly option: string,
    readonly expected: string,
    received: unknown,
  ) {
    super(`Invalid option "${option}": expected ${expected}, got ${describeValue(received)}.`);
  }
}

/** A value cannot be encoded or decoded by the codec. `key` names the Redis key involved. */
export class CodecError extends RedisPatternsError {
  constructor(
    readonly key: string | undefined,
    reason: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot ${reason}${key === undefined ? '' : ` for key "${key}"`}.`, options);
  }
}

/**
 * The keys of one multi-key operation hash to different Redis Cluster slots. Put the same hash
 * tag in all of them (see `RedisKeys.tagged`).
 */
export class CrossSlotError extends RedisPatternsError {
  constructor(
    /** The script, or other operation (`kind`), that was given the keys. */
    readonly script: string,
    readonly keys: readonly string[],
    /** What `script` names, in the message: `'Script'`, `'Transaction'`. */
    kind = 'Script',
  ) {
    super(
      `${kind} "${script}" was called with keys in different cluster slots (${keys.join(', ')}); ` +
        'give them one hash tag, for example with RedisKeys.tagged().',
    );
  }
}

/** No connection of that name was configured. */
export class UnknownConnectionError extends RedisPatternsError {
  constructor(
    readonly connectionName: string,
    known: readonly string[],
  ) {
    super(`No Redis connection named "${connectionName}"; configured: ${known.join(', ')}.`);
  }
}

/**
 * Stands for a received value that must not be echoed (a password) or that is not a value (an
 * unknown option): the error says `got <description>`.
 */
export class ValueDescription {
  constructor(readonly description: string) {}
}

function describeValue(value: unknown): string {
  if (value instanceof ValueDescription) return value.description;
  if (value === undefined) return 'nothing: it is missing (undefined)';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (value === null || value === undefined || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `an object (${value.constructor?.name ?? 'Object'})`;
}

/**
 * A string that is not well-formed Unicode (it holds a lone surrogate, as `JSON.parse('"\\ud800"')`
 * gives) where text becomes a Redis key, member or item. As UTF-8 it would turn into U+FFFD, and two
 * different strings into one key. Such strings come from requests, so this is a Nest
 * `BadRequestException`: a controller answers 400. `option` names the argument.
 *
 * @example
 * await board.submit('ZQY\ud801', 10); // MalformedTextError: Invalid option "member": expected well-formed Unicode text, ...
 */
export class MalformedTextError extends BadRequestException {
  readonly expected = 'well-formed Unicode text';

  constructor(readonly option: string) {
    super(`Invalid option "${option}": expected well-formed Unicode text, got a string with a lone surrogate (not valid UTF-16).`);
    this.name = 'MalformedTextError';
  }
}
