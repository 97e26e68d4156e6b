import { EventEmitter } from 'node:events';
import { Injectable, Optional } from '@nestjs/common';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import { mapBounded } from '../core/bounded.js';
import { knownRecord, toBoolean } from '../core/validation.js';
import { BULK_CHUNK } from './cache.bulk-delete.js';
import { isKeyvEnvelope, keyvTextAround, parseKeyvEnvelope, serializeForKeyv, type KeyvEnvelope } from './cache.keyv-format.js';
import { CacheService, escapeCachePattern, type CachedEntry, type CacheEntryOptions } from './cache.service.js';

/** How many entries `getMany`, `hasMany` and the iterator read at once. */
const READ_CONCURRENCY = 64;

/**
 * The property an entry holds Keyv's own text under, when that text is not Keyv's default
 * serialization (JSONbig's, say): `{ $keyv: '<text>' }`, given back to Keyv as it came.
 */
const KEYV_TEXT = '$keyv';
/** How the JSON text of such an entry starts. */
const KEYV_TEXT_JSON = `{"${KEYV_TEXT}":`;

/** Options of a {@link RedisKeyvStore}. */
export interface RedisKeyvStoreOptions {
  /**
   * Whether the Keyv over the store serializes values, as it does by default. `false` for a Keyv
   * made with `serialize: undefined, deserialize: undefined`: it hands the store values as they
   * are, which the module's codec stores (a `Date`, `Map` or `BigInt` comes back as it went in).
   * @default true
   * @example
   * new Keyv({ store: new RedisKeyvStore(cache, { serialize: false }), serialize: undefined, deserialize: undefined });
   */
  serialize?: boolean;
  /** Keep Keyv's entries in the cache's L1 tier too (`l1` of `CacheEntryOptions`). @default the module's `cache.l1.default` */
  l1?: boolean;
  /**
   * Hand Keyv's `get` an entry of plain JSON data decoded, as the envelope object that Keyv takes
   * as already deserialized, instead of text that Keyv parses again (with a reviver, its costliest
   * step). Only for a Keyv with its default `deserialize` and no `compression`, such as the one
   * @nestjs/cache-manager makes around a store: a Keyv with its own `deserialize` would get values
   * it never revived, and one with `compression` would miss (it decompresses only text). With
   * `l1.shared`, a value read from L1 is the instance L1 keeps: do not change it.
   * @default false
   * @example
   * CacheModule.registerAsync({
   *   inject: [CacheService],
   *   useFactory: (cache: CacheService) => ({ stores: [new RedisKeyvStore(cache, { decoded: true })] }),
   * });
   */
  decoded?: boolean;
}

/**
 * A Keyv 5 storage adapter over {@link CacheService}, for cache-manager 7 and @nestjs/cache-manager:
 * Keyv's keys are cache keys (`<namespace>:<key>`, or the key alone without a namespace), so
 * `CacheService`, `@Cacheable` and Keyv read each other's entries, through L1 and Redis, with the
 * module's codec and key prefix.
 *
 * - TTLs are Keyv's, in milliseconds, exact (no jitter); none (or 0) means the entry never expires.
 * - A value Keyv serialized its default way is stored as the value itself; another serializer's
 *   text is stored as it came, under `$keyv`.
 * - Reads reach Keyv as its text, or with `decoded: true` decoded (Keyv then does not parse them):
 *   for a Keyv with its default `deserialize` and no `compression`, as @nestjs/cache-manager makes.
 * - `clear()` deletes the namespace's entries (every cache entry without a namespace) with SCAN on
 *   every master; `iterator()` reads them the same way.
 * - `disconnect()` leaves the module's connection open: the module closes it.
 * - When Redis is down, reads miss and writes reject with `RedisUnavailableError` (Keyv reports
 *   it as an `error` event and resolves `false`).
 *
 * @example
 * CacheModule.registerAsync({
 *   inject: [RedisKeyvStore],
 *   useFactory: (store: RedisKeyvStore) => ({ stores: [store], ttl: 60_000 }),
 * });
 * const keyv = new Keyv({ store: new RedisKeyvStore(app.get(CacheService)), namespace: 'sessions' });
 */
@Injectable()
export class RedisKeyvStore extends EventEmitter implements KeyvStoreAdapter {
  /** Set by Keyv: the namespace its keys start with, which `clear()` and `iterator()` keep to. */
  namespace?: string;
  /** What Keyv reads of its store: `dialect: 'redis'` has it use {@link iterator}. */
  readonly opts: { dialect: 'redis'; serialize: boolean; l1?: boolean; decoded: boolean };
  private readonly serialize: boolean;
  private readonly l1: boolean | undefined;
  private readonly decoded: boolean;

  constructor(
    private readonly cache: CacheService,
    @Optional() options: RedisKeyvStoreOptions = {},
  ) {
    super();
    const given = knownRecord('RedisKeyvStore', options, ['serialize', 'l1', 'decoded']);
    this.serialize = toBoolean('RedisKeyvStore.serialize', given.serialize ?? true);
    this.l1 = given.l1 === undefined ? undefined : toBoolean('RedisKeyvStore.l1', given.l1);
    this.decoded = toBoolean('RedisKeyvStore.decoded', given.decoded ?? false);
    this.opts = { dialect: 'redis', serialize: this.serialize, l1: this.l1, decoded: this.decoded };
  }

  /**
   * The entry as Keyv reads it, or undefined on a miss. With `decoded`, an entry of plain JSON data
   * comes as the envelope object, which Keyv's `get` and `getRaw` take as deserialized: the value
   * is parsed once, here, not again by Keyv.
   */
  async get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.read<Value>(key, this.decoded);
  }

  /** The entries as Keyv's text (its `getManyRaw` deserializes every row it gets), undefined for a miss. */
  async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return mapBounded(keys, READ_CONCURRENCY, (key) => this.read<Value>(key, false));
  }

  /** Writes what Keyv hands over, for `ttl` milliseconds (none or 0: for ever). */
  async set(key: string, data: unknown, ttl?: number): Promise<void> {
    const { value, json } = this.fromKeyv(data);
    const options = this.entryOptions(ttl);
    // Keyv's text held the value as JSON writes it: that text is stored, not written again.
    await (json === undefined ? this.cache.set(key, value, options) : this.cache.setParsedJson(key, value, json, options));
  }

  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    await this.cache.warm(
      entries.map(({ key, value, ttl }) => ({ key, value: this.fromKeyv(value).value, options: this.entryOptions(ttl) })),
    );
  }

  /** Whether the entry exists and is fresh. */
  async has(key: string): Promise<boolean> {
    const entry = await this.cache.getEntry(key, { l1: this.l1 });
    return entry !== undefined && entry.freshUntil > Date.now();
  }

  async hasMany(keys: string[]): Promise<boolean[]> {
    return mapBounded(keys, READ_CONCURRENCY, (key) => this.has(key));
  }

  /** @returns whether the entry existed. */
  async delete(key: string): Promise<boolean> {
    return (await this.cache.delete(key)) > 0;
  }

  /** @returns whether any of the entries existed. Deleted a thousand at a time. */
  async deleteMany(keys: string[]): Promise<boolean> {
    let deleted = 0;
    for (let at = 0; at < keys.length; at += BULK_CHUNK) deleted += await this.cache.delete(...keys.slice(at, at + BULK_CHUNK));
    return deleted > 0;
  }

  /** Deletes the namespace's entries, or every cache entry when Keyv has no namespace. */
  async clear(): Promise<void> {
    await this.cache.clear(this.namespace === undefined ? '' : `${this.namespace}:`);
  }

  /** The entries of `namespace` (every cache entry without one), as `[key, data]`, read a SCAN step at a time. */
  async *iterator<Value>(namespace?: string): AsyncGenerator<Array<string | Awaited<Value> | undefined>, void> {
    for await (const keys of this.cache.scan(namespace === undefined ? '*' : `${escapeCachePattern(namespace)}:*`)) {
      const found = await this.getMany<Value>(keys);
      for (const [index, data] of found.entries()) if (data !== undefined) yield [keys[index], data as Awaited<Value>];
    }
  }

  /** Nothing to do: the connection is the module's, closed with the app. */
  async disconnect(): Promise<void> {}

  private async read<Value>(key: string, envelopeObject: boolean): Promise<StoredData<Value> | undefined> {
    const entry = await this.cache.storedEntry(key, this.l1);
    return entry === undefined ? undefined : (this.toKeyv(entry, envelopeObject) as StoredData<Value> | undefined);
  }

  private entryOptions(ttl: number | undefined): CacheEntryOptions {
    const lifetime = ttl === undefined || ttl === 0 ? Infinity : ttl;
    return { ttl: lifetime, nullTtl: lifetime, jitter: 0, l1: this.l1 };
  }

  /**
   * What goes into the cache for what Keyv hands over: the value of an envelope (with its JSON
   * text, see `parseKeyvEnvelope`), else Keyv's data as it came.
   */
  private fromKeyv(data: unknown): { value: unknown; json?: string } {
    if (typeof data === 'string') {
      const envelope = parseKeyvEnvelope(data);
      // A value shaped like the store's own keeping of a text (`{ $keyv: '...' }`) is kept as Keyv's text too.
      const keptAsText = envelope === undefined || keyvTextOf(envelope.value) !== undefined;
      return keptAsText ? { value: { [KEYV_TEXT]: data } } : envelope;
    }
    return { value: isKeyvEnvelope(data) ? data.value : data };
  }

  /**
   * What Keyv gets for an entry: the text it stored, or an envelope of the value, serialized unless
   * `serialize: false` (around the stored JSON text where it can be, without reading the value,
   * which an L1 hit would copy, nor serializing it again). With `envelopeObject`, an entry of plain
   * JSON data comes as the envelope object, which is what Keyv's default `deserialize` makes of
   * that text (values stored with their strings' ':' escapes revived).
   */
  private toKeyv(entry: CachedEntry & { json?: string }, envelopeObject: boolean): string | KeyvEnvelope | undefined {
    const expires = entry.freshUntil === Infinity ? undefined : entry.freshUntil;
    const { json } = entry;
    // An entry holding another serializer's text is JSON's `{"$keyv":"<text>"}`: that text goes back as it is, below.
    if (this.serialize && json !== undefined && !json.startsWith(KEYV_TEXT_JSON)) {
      if (envelopeObject) return envelopeOf(entry.value, expires);
      const around = keyvTextAround(json, expires);
      if (around !== undefined) return around;
    }
    const { value } = entry;
    const text = this.serialize ? keyvTextOf(value) : undefined;
    if (text !== undefined) return text;
    const envelope = envelopeOf(value, expires);
    return this.serialize ? serializeForKeyv(envelope) : envelope;
  }
}

/** Keyv's envelope of a value, without `expires` for an entry that never expires. */
function envelopeOf(value: unknown, expires: number | undefined): KeyvEnvelope {
  return expires === undefined ? { value } : { value, expires };
}

/** The text of an entry that holds Keyv's own serialization, or undefined. */
function keyvTextOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !Object.hasOwn(value, KEYV_TEXT)) return undefined;
  const keys = Object.keys(value);
  const text = (value as Record<string, unknown>)[KEYV_TEXT];
  return keys.length === 1 && keys[0] === KEYV_TEXT && typeof text === 'string' ? text : undefined;
}
