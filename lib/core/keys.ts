import { InvalidOptionError } from './errors.js';
import { assertWellFormed } from './validation.js';

/**
 * An escaper for text inside keys: `%` (the escape itself), the space and control characters
 * (which tools that print or split keys, such as redis-cli, MONITOR and keyspace notifications
 * read line by line, would mangle) and the characters of `reserved` (a regular expression
 * character class body) become `%XX`. Each kind of key adds what would break it.
 *
 * @example
 * const escapeLockKey = keyEscaper('{}');
 * escapeLockKey('order {7}\n'); // 'order%20%7B7%7D%0A'
 */
export function keyEscaper(reserved: string): (text: string) => string {
  const has = new RegExp(`[%\\x00-\\x20\\x7F${reserved}]`);
  // The escape of each character below U+0100 ('' for none): a loop over the text is several
  // times faster than a replace() with a callback, and keys like `ip:<address>` always need it.
  const escapes = Array.from({ length: 256 }, (_, code) =>
    has.test(String.fromCharCode(code)) ? percentEncode(String.fromCharCode(code)) : '',
  );
  return (text) => {
    if (!has.test(text)) return text;
    let escaped = '';
    let from = 0;
    for (let at = 0; at < text.length; at++) {
      const code = text.charCodeAt(at);
      if (code < 256 && escapes[code] !== '') {
        escaped += text.slice(from, at) + escapes[code];
        from = at + 1;
      }
    }
    return escaped + text.slice(from);
  };
}

/** Key parts: also `:` (parts), braces (hash tags), glob characters and `\` (SCAN patterns). */
const escapePart = keyEscaper(':{}*?[\\]\\\\');

/**
 * Makes one key part safe to embed: `:`, `{`, `}`, glob characters, `\`, `%`, the space and
 * control characters (CR, LF, tab, NUL...) are percent-encoded. A user-supplied part can therefore
 * never reach another part of the key space, move a key to another cluster slot, or widen a SCAN
 * pattern. A part that is not well-formed Unicode (a lone surrogate) is refused with a
 * `MalformedTextError`: as UTF-8 it would be the same key as another string.
 *
 * @example
 * encodeKeyPart('a:b*'); // 'a%3Ab%2A'
 * encodeKeyPart('two words\n'); // 'two%20words%0A'
 */
export function encodeKeyPart(part: string | number): string {
  return typeof part === 'string' ? escapePart(assertWellFormed('key part', part)) : escapePart(String(part));
}

/** `%XX` for a character below U+0100. */
export function percentEncode(char: string): string {
  return `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
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

  /**
   * The first part of a key after the prefix: of its hash tag when it starts with one. Features
   * start their keys with parts of their own (their `keySegments`), and encoded parts never hold
   * `:`, `{` or `}`, so this names the feature a key belongs to. Undefined outside the prefix.
   *
   * @example
   * keys.segmentOf('nrp:{rl:ann}:api:login'); // 'rl'
   * keys.segmentOf('nrp:lock:{order%207}');   // 'lock'
   * keys.segmentOf('other:key');              // undefined
   */
  segmentOf(key: string): string | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const rest = key.slice(this.prefix.length);
    const tagged = rest.startsWith('{');
    const segment = /^[^:{}]*/.exec(tagged ? rest.slice(1) : rest)![0];
    return segment === '' ? undefined : segment;
  }
}
