import { createHash } from 'node:crypto';
import { keyEscaper } from '../core/keys.js';

/**
 * A cache key as it goes inside its hash tag: braces (the hash tag), glob characters, `\`, `%`,
 * the space and control characters are percent-encoded, `:` is kept (keys like `user:42` stay
 * readable, and most keys need no work at all). A key therefore cannot leave its hash tag or act
 * as a glob in a SCAN pattern. The caller checks that the key is well-formed Unicode.
 */
export const encodeCacheKey = keyEscaper('{}*?[\\]\\\\');

/** The cache key back from its {@link encodeCacheKey} form: every `%XX` is the character it stands for. */
export function decodeCacheKey(encoded: string): string {
  return encoded.includes('%')
    ? encoded.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    : encoded;
}

/** Arguments up to this length appear in the key as they are; longer ones are hashed. */
const MAX_READABLE_LENGTH = 64;

/**
 * A stable text for method arguments: object keys are sorted (so `{a, b}` and `{b, a}` give the
 * same key), and Dates, Maps, Sets, BigInts and undefined are told apart. Short results are kept
 * readable; long ones become a SHA-256 digest.
 *
 * @example
 * argumentsKey([42, { page: 2, sort: 'name' }]); // '[42,{"page":2,"sort":"name"}]'
 */
export function argumentsKey(args: readonly unknown[]): string {
  const text = JSON.stringify(args, stableReplacer) ?? '';
  return text.length <= MAX_READABLE_LENGTH ? text : `#${createHash('sha256').update(text).digest('base64url').slice(0, 32)}`;
}

function stableReplacer(this: Record<string, unknown>, property: string, value: unknown): unknown {
  const raw = this[property];
  if (raw === undefined) return '\u0000undefined';
  if (typeof raw === 'bigint') return `\u0000${raw}n`;
  if (raw instanceof Date) return `\u0000date:${raw.getTime()}`;
  if (raw instanceof Map) return { '\u0000map': [...raw].sort(byFirst) };
  if (raw instanceof Set) return { '\u0000set': [...raw].map((item) => JSON.stringify(item, stableReplacer)).sort() };
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, (value as Record<string, unknown>)[key]]),
    );
  }
  return value;
}

function byFirst(a: [unknown, unknown], b: [unknown, unknown]): number {
  const left = JSON.stringify(a[0], stableReplacer);
  const right = JSON.stringify(b[0], stableReplacer);
  return left < right ? -1 : left > right ? 1 : 0;
}
