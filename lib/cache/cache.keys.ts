import type { RedisKeys } from '../core/keys.js';
import { toTextArgument } from '../core/validation.js';
import { decodeCacheKey, encodeCacheKey } from './cache-key.js';
import type { CacheEpochs } from './cache.epochs.js';

/** The Redis keys of one entry's miss path, all in the value key's slot. */
export interface EntryKeys {
  value: string;
  /** The entry's generation: a new random token on each write or delete (see cache-write.lua). */
  generation: string;
  /** The cross-instance stampede lock. */
  lock: string;
  /** The bulk-invalidation epoch of the slot (see `CacheEpochs`). */
  epoch: string;
}

/**
 * Where the cache keeps things in Redis. A cache key is checked (a non-empty, well-formed string)
 * and encoded with {@link encodeCacheKey}, so it cannot leave its hash tag nor act as a glob.
 */
export class CacheKeys {
  constructor(
    private readonly keys: RedisKeys,
    private readonly epochs: CacheEpochs,
  ) {}

  /** The keys of an entry, from its value key: `<value key>:g`, `<value key>:l`, and its slot's epoch. */
  entry(valueKey: string): EntryKeys {
    return { value: valueKey, generation: `${valueKey}:g`, lock: `${valueKey}:l`, epoch: this.epochs.keyFor(valueKey) };
  }

  /** The Redis key of an entry: `<prefix>{c:<key>}`, its own hash tag. */
  value(key: string): string {
    return `${this.keys.prefix}{c:${encodeCacheKey(toTextArgument('key', key))}}`;
  }

  /** The cache key of a value key (as SCAN finds them): the inverse of {@link value}. */
  cacheKeyOf(valueKey: string): string {
    return decodeCacheKey(valueKey.slice(this.keys.prefix.length + '{c:'.length, -'}'.length));
  }

  /** The sorted set of a tag's entries. */
  tag(tag: string): string {
    return this.keys.tagged(['ct', toTextArgument('tags', tag)]);
  }

  /**
   * The SCAN pattern of value keys whose cache key matches `pattern`: `*` and `?` stay wildcards,
   * `\*` and `\?` (see {@link escapeCachePattern}) and every other character are literal.
   */
  scanPattern(pattern: string): string {
    const text = toTextArgument('pattern', pattern);
    let body = '';
    for (let i = 0; i < text.length; i++) {
      const char = text[i];
      if (char === '\\' && i + 1 < text.length) body += encodeCacheKey(text[++i]);
      else body += char === '*' || char === '?' ? char : encodeCacheKey(char);
    }
    return `${this.keys.prefix}{c:${body}}`;
  }
}

/**
 * Escapes `*`, `?` and `\` in text that goes into a `deleteByPattern` pattern, so that user input
 * matches only itself.
 * @example
 * await cache.deleteByPattern(`user:${escapeCachePattern(name)}:*`);
 */
export function escapeCachePattern(text: string): string {
  return text.replace(/[*?\\]/g, '\\$&');
}
