/**
 * Keyv's default serialization (that of `@keyv/serialize`, which Keyv 5 applies unless given its
 * own `serialize`): JSON, where a Buffer is the string `:base64:<base64>` and a string that starts
 * with `:` gets one more. Keyv hands its store `{ value, expires }` in this form; the store keeps
 * the value itself, so `CacheService` reads what Keyv wrote and the other way round.
 */

/** What Keyv stores for a value: the value, and when it expires (ms since the epoch; none for never). */
export interface KeyvEnvelope {
  value: unknown;
  expires?: number;
}

/** `data` as Keyv's default `serialize` writes it. A BigInt throws a TypeError, as in Keyv. */
export function serializeForKeyv(data: unknown): string {
  if (data === undefined) return 'null';
  // Without a Buffer nor a string that starts with ':', Keyv's text is JSON's, which V8 writes fastest.
  return needsKeyvEscapes(data) ? serializeEscaped(data, true) : JSON.stringify(data);
}

/**
 * What {@link serializeForKeyv} makes of `{ value, expires }` (or text that Keyv's `deserialize`
 * reads as the same), built around `json`, the JSON text of `value` as stored, without parsing it;
 * undefined when Keyv's text could differ from JSON's: when a string in it may start with ':' (a
 * string opens after ':', '[' or ',', or the text is one). Keys that end with ':' also match, which
 * only sends them the long way.
 * @example
 * keyvTextAround('{"a":1}', 1_700_000_000_000); // '{"value":{"a":1},"expires":1700000000000}'
 */
export function keyvTextAround(json: string, expires: number | undefined): string | undefined {
  if (json.startsWith('":') || json.includes(':":') || json.includes('[":') || json.includes(',":')) return undefined;
  return envelopeText(json, expires);
}

/** JSON's text of `{ value, expires }`, given the value's. */
function envelopeText(json: string, expires: number | undefined): string {
  return expires === undefined ? `{"value":${json}}` : `{"value":${json},"expires":${expires}}`;
}

/** Keyv's own algorithm (@keyv/serialize), for values that hold what it escapes. */
function serializeEscaped(data: unknown, escapeColonStrings: boolean): string {
  if (data === undefined || data === null) return 'null';
  if (typeof data === 'string') return JSON.stringify(escapeColonStrings && data.startsWith(':') ? `:${data}` : data);
  if (Buffer.isBuffer(data)) return JSON.stringify(`:base64:${data.toString('base64')}`);
  const json = typeof (data as { toJSON?: unknown }).toJSON === 'function' ? (data as { toJSON(): unknown }).toJSON() : data;
  if (typeof json !== 'object' || json === null) return JSON.stringify(json);
  const record = json as Record<string, unknown>;
  const array = Array.isArray(json);
  const parts: string[] = [];
  for (const key in record) {
    const item = record[key];
    if (!Object.hasOwn(record, key) || typeof item === 'function' || (!array && item === undefined)) continue;
    const serialized = serializeEscaped(item, escapeColonStrings);
    parts.push(array ? serialized : `${JSON.stringify(key)}:${serialized}`);
  }
  return array ? `[${parts.join(',')}]` : `{${parts.join(',')}}`;
}

/**
 * Whether Keyv's text of `data` differs from JSON's: it holds a Buffer, a string that starts with
 * ':', or an object with its own `toJSON` (a Date's never starts with ':').
 */
function needsKeyvEscapes(data: unknown): boolean {
  if (typeof data === 'string') return data.startsWith(':');
  if (typeof data !== 'object' || data === null || data instanceof Date) return false;
  if (Buffer.isBuffer(data) || typeof (data as { toJSON?: unknown }).toJSON === 'function') return true;
  if (Array.isArray(data)) return data.some(needsKeyvEscapes);
  for (const key in data) if (needsKeyvEscapes((data as Record<string, unknown>)[key])) return true;
  return false;
}

/** An envelope Keyv wrote, and its value's JSON text when Keyv's text holds it without Keyv's escapes. */
export interface ParsedKeyvEnvelope extends KeyvEnvelope {
  json?: string;
}

/**
 * The envelope in `text` when Keyv's default `deserialize` reads it as what it is: an envelope
 * whose value, stored and then read back by `JSON.parse` or by Keyv, is the same (spacing inside
 * the value or a `-0` are taken as they came); undefined for anything else: another serializer's
 * output (JSONbig's big integers, compression), or not an envelope at all. Without Keyv's escapes,
 * the value's JSON text comes with it (`json`), to be stored as it is.
 * @example
 * parseKeyvEnvelope('{"value":{"a":1},"expires":1700000000000}'); // { value: { a: 1 }, expires: 1700000000000, json: '{"a":1}' }
 */
export function parseKeyvEnvelope(text: string): ParsedKeyvEnvelope | undefined {
  return envelopeAroundJson(text) ?? parseWholeEnvelope(text);
}

/** How Keyv's default serialization of an envelope starts. */
const VALUE_FIELD = '{"value":';
/** What comes before the expiry in it. */
const EXPIRES_FIELD = ',"expires":';
/** An expiry as JSON.stringify writes a whole number of milliseconds. */
const WHOLE_NUMBER = /^(?:0|[1-9]\d*)$/;
/**
 * How many digits and dots in a row, from a digit, make a number that may not come back from
 * JSON.parse as it was written (a big integer of JSONbig), or only digits in a string (read the
 * long way then).
 */
const LONG_DIGITS = 16;
const DOT = 0x2e;

/**
 * Whether `text` holds {@link LONG_DIGITS} digits or dots in a row, the first a digit (as the
 * regular expression `\d[\d.]{15}`, three times faster on a kilobyte of JSON). Such a run covers one
 * of every {@link LONG_DIGITS} positions, so only those are looked at, each extended to its run.
 */
function hasLongDigitRun(text: string): boolean {
  for (let at = LONG_DIGITS - 1; at < text.length; at += LONG_DIGITS) {
    if (!isDigitOrDot(text.charCodeAt(at))) continue;
    let start = at;
    while (start > 0 && isDigitOrDot(text.charCodeAt(start - 1))) start--;
    let end = at + 1;
    while (end < text.length && isDigitOrDot(text.charCodeAt(end))) end++;
    while (start < end && text.charCodeAt(start) === DOT) start++;
    if (end - start >= LONG_DIGITS) return true;
    // The next run starts after `end`: the positions from there on are looked at.
    at = end - 1;
  }
  return false;
}

function isDigitOrDot(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || code === DOT;
}

/**
 * The envelope of `{"value":<json>}` or `{"value":<json>,"expires":<ms>}`, parsing only `<json>`:
 * undefined when the text is not of that form, when `<json>` is not JSON (or holds a lone
 * surrogate, which Redis would not keep), may hold a number JSON.parse would round, or holds a
 * string that starts with ':' once parsed (Keyv's escapes, however the text wrote them).
 */
function envelopeAroundJson(text: string): ParsedKeyvEnvelope | undefined {
  if (!text.startsWith(VALUE_FIELD) || !text.endsWith('}')) return undefined;
  let end = text.length - 1;
  let expires: number | undefined;
  const expiresAt = text.lastIndexOf(EXPIRES_FIELD);
  if (expiresAt > VALUE_FIELD.length) {
    const digits = text.slice(expiresAt + EXPIRES_FIELD.length, end);
    if (WHOLE_NUMBER.test(digits)) [expires, end] = [Number(digits), expiresAt];
  }
  const json = text.slice(VALUE_FIELD.length, end);
  if (hasLongDigitRun(json) || !json.isWellFormed()) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (needsKeyvEscapes(value)) return undefined;
  return expires === undefined ? { value, json } : { value, expires, json };
}

function parseWholeEnvelope(text: string): ParsedKeyvEnvelope | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isKeyvEnvelope(parsed)) return undefined;
    if (needsKeyvEscapes(parsed)) {
      // Strings that start with ':' are Keyv's escapes (a Buffer, or a ':' more): revive them.
      const revived = JSON.parse(text, reviveKeyvString) as KeyvEnvelope;
      return serializeForKeyv(revived) === text ? revived : undefined;
    }
    const json = JSON.stringify(parsed.value) as string | undefined;
    if (json !== undefined && text === envelopeText(json, parsed.expires)) return { ...parsed, json };
    // Still Keyv's text when its fields come in another order.
    return JSON.stringify(parsed) === text ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `data` has the shape of what Keyv hands a store: `value`, and `expires` a number if there. */
export function isKeyvEnvelope(data: unknown): data is KeyvEnvelope {
  if (typeof data !== 'object' || data === null || Array.isArray(data) || Buffer.isBuffer(data)) return false;
  const { expires } = data as { expires?: unknown };
  return (
    Object.keys(data).every((key) => key === 'value' || key === 'expires') &&
    (expires === undefined || (typeof expires === 'number' && Number.isFinite(expires)))
  );
}

function reviveKeyvString(_key: string, value: unknown): unknown {
  if (typeof value !== 'string' || !value.startsWith(':')) return value;
  return value.startsWith(':base64:') ? Buffer.from(value.slice(':base64:'.length), 'base64') : value.slice(1);
}
