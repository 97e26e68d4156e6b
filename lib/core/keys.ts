import { InvalidOptionError } from './errors.js';

/** Characters that would let a key part span parts, change the hash slot, or act as a glob. */
const RESERVED = /[%:{}*?[\]\\]/g;
const HAS_RESERVED = /[%:{}*?[\]\\]/;

/**
 * Makes one key part safe to embed: `:`, `{`, `}`, glob characters, `\` and `%` are
 * percent-encoded. A user-supplied part can therefore never reach another part of the key space,
 * move a key to another cluster slot, or widen a SCAN pattern.
 *
 * @example
 * encodeKeyPart('a:b*'); // 'a%3Ab%2A'
 */
export function encodeKeyPart(part: string | number): string {
  const text = String(part);
  if (!HAS_RESERVED.test(text)) return text;
  return text.replace(RESERVED, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/**
 * Builds every key the library writes: `<prefix><part>:<part>...`, with each part encoded by
 * {@link encodeKeyPart}. Inject it where a feature needs keys.
 *
 * @example
 * keys.key('session', id);            // 'nrp:session:<id>'
 * keys.tagged('rl', userId, 'sec');   // 'nrp:{rl:<userId>}:sec' - all keys tagged the same way share a slot
 * keys.pattern('cache', 'users');     // 'nrp:cache:users:*'
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  /** A key made of the prefix and the encoded parts, joined with `:`. */
  key(...parts: readonly (string | number)[]): string {
    return this.prefix + parts.map(encodeKeyPart).join(':');
  }

  /**
   * A key whose hash tag is made of `tagParts`, followed by `parts`. Every key built with the same
   * tag parts lands in the same Redis Cluster slot, so one script may touch them all.
   */
  tagged(tagParts: readonly (string | number)[] | string, ...parts: readonly (string | number)[]): string {
    const tag = (typeof tagParts === 'string' ? [tagParts] : tagParts).map(encodeKeyPart).join(':');
    // Redis ignores an empty {} and hashes the whole key, so the keys would not share a slot.
    if (tag === '') throw new InvalidOptionError('tagParts', 'a non-empty hash tag', tagParts);
    return `${this.prefix}{${tag}}${parts.length ? ':' : ''}${parts.map(encodeKeyPart).join(':')}`;
  }

  /** A SCAN pattern matching every key under the given parts (`<prefix><parts>:*`). */
  pattern(...parts: readonly (string | number)[]): string {
    return `${this.key(...parts)}${parts.length ? ':' : ''}*`;
  }
}
