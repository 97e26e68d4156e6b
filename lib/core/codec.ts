import { CodecError } from './errors.js';

/**
 * Turns values into what Redis stores and back. Replace the default with
 * `RedisPatternsModule.forRoot({ codec })`, for example to use msgpack.
 *
 * @example
 * import { pack, unpack } from 'msgpackr';
 * const msgpackCodec: RedisCodec = {
 *   binary: true,
 *   encode: (value) => pack(value),
 *   decode: (raw) => unpack(raw as Buffer),
 * };
 */
export interface RedisCodec {
  /** When true, features read values as Buffers (GETBUFFER) and pass them to `decode`. */
  readonly binary?: boolean;
  /** @param key the Redis key the value is written to, for error messages. */
  encode(value: unknown, key?: string): string | Buffer;
  /** @param key the Redis key the value was read from, for error messages. */
  decode<T = unknown>(raw: string | Buffer, key?: string): T;
}

/** The property that marks an encoded special value inside the JSON text. */
const TAG = '$nrp';

/** Encoded text that holds tagged values starts with this character; plain JSON never does. */
const TAGGED_PREFIX = '~';

type Tagged = { [TAG]: string; v?: unknown };

/** The numbers JSON cannot hold, as the codec writes them. */
const SPECIAL_NUMBERS = new Set(['NaN', 'Infinity', '-Infinity', '-0']);

/**
 * The default codec: JSON, extended so that values round-trip exactly.
 *
 * - `Date`, `BigInt`, `Map`, `Set`, `Buffer`, `Uint8Array`, `undefined` (also inside objects and
 *   arrays), `NaN`, `±Infinity` and `-0` come back as they went in; `null`, `0`, `false` and `''` are ordinary values.
 * - Values made only of plain JSON types are stored as plain JSON and decoded with a bare
 *   `JSON.parse`, so the common case costs nothing extra.
 * - Functions, symbols (as values or keys) and circular structures are rejected with a
 *   {@link CodecError} naming the key.
 *
 * Class instances other than the ones above come back as plain objects.
 */
export class JsonCodec implements RedisCodec {
  readonly binary = false;

  encode(value: unknown, key?: string): string {
    // Plain JSON data (the common case) needs no replacer, which costs a call per property.
    if (isPlainJson(value, 0)) return JSON.stringify(value);
    let tagged = false;
    const replacer = function (this: Record<string, unknown>, property: string, jsonValue: unknown): unknown {
      const special = encodeSpecial(this[property], jsonValue, key);
      if (special === jsonValue) return jsonValue;
      tagged = true;
      return special;
    };
    let text: string;
    try {
      text = JSON.stringify(value, replacer);
    } catch (error) {
      if (error instanceof CodecError) throw error;
      // JSON.stringify reports plain cycles; a cycle through a Map or Set overflows the stack instead.
      const cyclic = error instanceof RangeError || /circular/i.test((error as Error).message);
      throw new CodecError(
        key,
        cyclic ? 'encode a circular or too deeply nested structure' : `encode the value (${(error as Error).message})`,
        { cause: error },
      );
    }
    // JSON.stringify gives no text for a value whose toJSON() returns undefined.
    if (text === undefined) throw new CodecError(key, 'encode the value: it has no JSON form (its toJSON() returned undefined)');
    return tagged ? TAGGED_PREFIX + text : text;
  }

  /**
   * `encoded` itself when it is the JSON text of a plain value (written without tags, so it
   * decodes with a bare `JSON.parse`), else undefined: for callers that can pass such text on as it is.
   */
  plainJsonText(encoded: string | Buffer): string | undefined {
    return typeof encoded === 'string' && encoded.charCodeAt(0) !== TAGGED_PREFIX.charCodeAt(0) ? encoded : undefined;
  }

  /**
   * What to store for `value` when it came from `JSON.parse` of `json` (plain JSON data): `json`
   * itself, without writing it again (a bare `JSON.parse` reads it back), unless it may hold the tag
   * property (then the value is encoded, and escaped, as usual).
   */
  encodeParsedJson(value: unknown, json: string, key?: string): string {
    return json.includes(`"${TAG}"`) ? this.encode(value, key) : json;
  }

  /**
   * An object from the JSON text of an object whose properties hold values as this codec encodes
   * them without their '~' (the text starting with '~' when any of them holds tags): each property
   * is decoded, the object itself is never taken for a tagged value (a property may be named `$nrp`).
   */
  decodeProperties(text: string, key?: string): Record<string, unknown> {
    try {
      if (text.charCodeAt(0) !== TAGGED_PREFIX.charCodeAt(0)) return JSON.parse(text) as Record<string, unknown>;
      return reviveProperties(JSON.parse(text.slice(1)) as Record<string, unknown>);
    } catch (error) {
      throw new CodecError(key, `decode the stored value (${(error as Error).message})`, { cause: error });
    }
  }

  decode<T = unknown>(raw: string | Buffer, key?: string): T {
    const text = typeof raw === 'string' ? raw : raw.toString('utf8');
    try {
      if (text.charCodeAt(0) !== TAGGED_PREFIX.charCodeAt(0)) return JSON.parse(text) as T;
      return reviveTree(JSON.parse(text.slice(1))) as T;
    } catch (error) {
      throw new CodecError(key, `decode the stored value (${(error as Error).message})`, { cause: error });
    }
  }
}

/** Nesting past this depth takes the replacer's path, which also reports cycles. */
const MAX_PLAIN_DEPTH = 64;

/**
 * Whether JSON.stringify writes `value` exactly as it is, so that it decodes to an equal value:
 * strings, booleans, null, finite numbers other than -0, arrays without holes or undefined, and
 * plain objects (no class, no symbol keys, no tag property) of such values. Anything else, Dates
 * and class instances included, is left to {@link encodeSpecial}.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_PLAIN_DEPTH) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype === Array.prototype) {
    const array = value as unknown[];
    for (let i = 0; i < array.length; i++) if (!isPlainJson(array[i], depth + 1)) return false;
    return true;
  }
  if (prototype !== Object.prototype && prototype !== null) return false;
  const record = value as Record<string, unknown>;
  if (Object.hasOwn(record, TAG) || Object.getOwnPropertySymbols(record).length > 0) return false;
  for (const property of Object.keys(record)) if (!isPlainJson(record[property], depth + 1)) return false;
  return true;
}

/**
 * Returns `jsonValue` unchanged for plain JSON values, or a tagged replacement. `raw` is the value
 * before `toJSON` ran (a Date's `jsonValue` is already a string).
 */
function encodeSpecial(raw: unknown, jsonValue: unknown, key: string | undefined): unknown {
  switch (typeof raw) {
    case 'string':
    case 'boolean':
      return jsonValue;
    case 'number':
      return Number.isFinite(raw) && !Object.is(raw, -0) ? jsonValue : { [TAG]: 'Number', v: String(raw === 0 ? '-0' : raw) };
    case 'bigint':
      return { [TAG]: 'BigInt', v: raw.toString() };
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'function':
    case 'symbol':
      throw new CodecError(key, `encode a ${typeof raw}: only data can be stored`);
  }
  if (raw instanceof Date) return { [TAG]: 'Date', v: Number.isNaN(raw.getTime()) ? null : raw.toISOString() };
  if (raw instanceof Uint8Array)
    return {
      [TAG]: Buffer.isBuffer(raw) ? 'Buffer' : 'Uint8Array',
      v: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64'),
    };
  // null, and objects whose toJSON() already chose their JSON form.
  if (typeof raw !== 'object' || raw === null || jsonValue !== raw) return jsonValue;
  if (raw instanceof Map) return { [TAG]: 'Map', v: [...raw] };
  if (raw instanceof Set) return { [TAG]: 'Set', v: [...raw] };
  if (Array.isArray(raw)) return jsonValue;
  if (Object.getOwnPropertySymbols(raw).length > 0)
    throw new CodecError(key, 'encode an object with symbol keys: only string keys can be stored');
  // A plain object that happens to use the tag property travels as its entries.
  if (Object.hasOwn(raw, TAG)) return { [TAG]: 'Object', v: Object.entries(raw) };
  return jsonValue;
}

/** Replaces tagged objects, depth first, without a JSON.parse reviver (which drops undefined). */
function reviveTree(node: unknown): unknown {
  if (node === null || typeof node !== 'object') return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = reviveTree(node[i]);
    return node;
  }
  const record = reviveProperties(node as Record<string, unknown>);
  return Object.hasOwn(record, TAG) ? reviveTagged(record as Tagged) : record;
}

/** `record` with the value of each of its properties revived. */
function reviveProperties(record: Record<string, unknown>): Record<string, unknown> {
  for (const property of Object.keys(record)) {
    const revived = reviveTree(record[property]);
    // Plain assignment to "__proto__" would change the prototype; define an own property instead.
    if (revived !== record[property])
      Object.defineProperty(record, property, { value: revived, enumerable: true, writable: true, configurable: true });
  }
  return record;
}

function reviveTagged(tagged: Tagged): unknown {
  const { v } = tagged;
  switch (tagged[TAG]) {
    case 'undefined':
      return undefined;
    case 'Number':
      if (!SPECIAL_NUMBERS.has(v as string)) throw new Error(`invalid number ${JSON.stringify(v)}`);
      return Number(v);
    case 'BigInt':
      return BigInt(v as string);
    case 'Date':
      return new Date(v === null ? Number.NaN : (v as string));
    case 'Buffer':
      return Buffer.from(v as string, 'base64');
    case 'Uint8Array':
      return new Uint8Array(Buffer.from(v as string, 'base64'));
    case 'Map':
      return new Map(v as [unknown, unknown][]);
    case 'Set':
      return new Set(v as unknown[]);
    case 'Object':
      return Object.fromEntries(v as [string, unknown][]);
    default:
      throw new Error(`unknown tag ${JSON.stringify(tagged[TAG])}`);
  }
}
