import { IdempotencyKeyInvalidError } from './idempotency.errors.js';

const PRINTABLE = 'printable ASCII (a bare key, or an RFC 8941 string in quotes)';

/**
 * The key of an idempotency header (`headerName` names it in errors), or undefined without one.
 * The IETF draft makes it an RFC 8941 string (`"8e03978e-40d5-43e8-bc93-6894a57f9324"`); a bare
 * key (`8e03978e-...`, as most clients send it) is taken too, and both give the same key. A key is
 * 1 to `maxLength` characters of printable ASCII. Several keys (two header fields, which Node.js
 * joins with a comma) are refused: the draft allows one.
 *
 * @throws IdempotencyKeyInvalidError (400) naming the header and what is wrong.
 * @example
 * parseIdempotencyKey('"abc \\"1\\""', 'Idempotency-Key', 255); // 'abc "1"'
 * parseIdempotencyKey('abc-1', 'Idempotency-Key', 255);         // 'abc-1'
 */
export function parseIdempotencyKey(value: string | string[] | undefined, headerName: string, maxLength: number): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    if (value.length !== 1) throw several(headerName);
    value = value[0];
  }
  const key = value.startsWith('"') ? parseQuoted(value, headerName) : parseBare(value, headerName);
  return checkLength(key, headerName, maxLength);
}

/**
 * A key given to `IdempotencyService`: 1 to `maxLength` characters of well-formed Unicode.
 * @throws IdempotencyKeyInvalidError (400) naming `argument`.
 */
export function checkServiceKey(key: unknown, argument: string, maxLength: number): string {
  if (typeof key !== 'string') throw new IdempotencyKeyInvalidError(argument, `expected a string, got ${typeof key}`);
  if (!key.isWellFormed()) throw new IdempotencyKeyInvalidError(argument, 'expected well-formed Unicode text (it holds a lone surrogate)');
  return checkLength(key, argument, maxLength);
}

function checkLength(key: string, argument: string, maxLength: number): string {
  if (key.length === 0) throw new IdempotencyKeyInvalidError(argument, 'expected a key of at least 1 character, got an empty one');
  if (key.length > maxLength)
    throw new IdempotencyKeyInvalidError(argument, `expected a key of at most ${maxLength} characters, got ${key.length}`);
  return key;
}

/** An RFC 8941 sf-string: printable ASCII in quotes, with `\"` and `\\` escaped. */
function parseQuoted(value: string, headerName: string): string {
  let key = '';
  for (let at = 1; at < value.length; at++) {
    const char = value[at];
    const code = value.charCodeAt(at);
    if (code < 0x20 || code > 0x7e) throw new IdempotencyKeyInvalidError(headerName, `expected ${PRINTABLE}`);
    if (char === '"') {
      if (at === value.length - 1) return key;
      throw several(headerName);
    }
    if (char === '\\') {
      const next = value[++at];
      if (next !== '"' && next !== '\\')
        throw new IdempotencyKeyInvalidError(headerName, 'expected only \\" and \\\\ as escapes in a quoted key');
      key += next;
    } else key += char;
  }
  throw new IdempotencyKeyInvalidError(headerName, 'expected a closing quote');
}

/** Visible ASCII without quotes, backslashes or commas. */
function parseBare(value: string, headerName: string): string {
  for (let at = 0; at < value.length; at++) {
    const code = value.charCodeAt(at);
    if (code === 0x2c) throw several(headerName);
    if (code <= 0x20 || code > 0x7e || code === 0x22 || code === 0x5c)
      throw new IdempotencyKeyInvalidError(headerName, `expected ${PRINTABLE}; spaces, quotes and backslashes only inside quotes`);
  }
  return value;
}

function several(headerName: string): IdempotencyKeyInvalidError {
  return new IdempotencyKeyInvalidError(headerName, `expected one key in one ${headerName} header, got several`);
}
