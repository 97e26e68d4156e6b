import calculateSlot from 'cluster-key-slot';
import { InvalidOptionError } from '../core/errors.js';
import { keyEscaper } from '../core/keys.js';
import { assertWellFormed } from '../core/validation.js';
import type { ReadWriteKeys } from './lock.read-write.js';
import type { LockKeys } from './lock.store.js';

/**
 * The keys of a lock as the caller gave them, sorted and without repeats; each must be a non-empty
 * string of well-formed Unicode.
 * @throws InvalidOptionError naming `key` (or `key[<index>]`).
 */
export function lockUserKeys(key: string | readonly string[]): string[] {
  const given: readonly unknown[] | undefined = typeof key === 'string' ? [key] : Array.isArray(key) ? key : undefined;
  if (!given || given.length === 0 || given.some((part) => typeof part !== 'string' || part.length === 0)) {
    throw new InvalidOptionError('key', 'a non-empty string, or a non-empty array of them', key);
  }
  // As UTF-8, a lone surrogate becomes U+FFFD: two different keys would be one lock.
  given.forEach((part, index) => assertWellFormed(typeof key === 'string' ? 'key' : `key[${index}]`, part as string));
  return [...new Set(given as string[])].sort();
}

/**
 * `<prefix>lock:{<key>}` (`%`, `{`, `}`, the space and control characters percent-encoded), or
 * `<prefix>lock:t:<key>` when the key has a hash tag of its own (keys locked together must share
 * one on a Cluster; only `%`, the space and control characters are encoded then); each key's
 * fence is the same under `<prefix>fence:`, in the same slot. No key can name another's fence.
 * @throws InvalidOptionError naming `key` when keys locked together fall in different slots of a Cluster.
 */
export function lockRedisKeys(prefix: string, cluster: boolean, userKeys: readonly string[]): LockKeys {
  const parts = userKeys.map(lockKeyPart);
  const locks = parts.map((part) => `${prefix}lock:${part}`);
  if (cluster && locks.length > 1 && locks.some((lock) => calculateSlot(lock) !== calculateSlot(locks[0]))) {
    throw new InvalidOptionError(
      'key',
      'keys locked together that share one hash tag on a Cluster, such as ["{order:1}:payment", "{order:1}:stock"]',
      userKeys,
    );
  }
  return { names: userKeys, locks, fences: parts.map((part) => `${prefix}fence:${part}`) };
}

/** The keys of the read-write lock `name`: `<prefix>rwlock:<r|w|i|f>:` and the key's part, one hash tag for all four. */
export function readWriteLockKeys(prefix: string, name: string): ReadWriteKeys {
  const of = (role: string) => `${prefix}rwlock:${role}:${lockKeyPart(name)}`;
  return { readers: of('r'), writer: of('w'), intents: of('i'), fence: of('f') };
}

/** A lock key as it goes inside its own hash tag: braces encoded too, so it cannot leave the tag. */
const escapeKey = keyEscaper('{}');
/** A key with a hash tag of its own keeps its braces. */
const escapeTaggedKey = keyEscaper('');

/** A key as it goes into its Redis keys: inside a hash tag of its own, or keeping the one it has (`t:`). */
function lockKeyPart(key: string): string {
  return hasHashTag(key) ? `t:${escapeTaggedKey(key)}` : `{${escapeKey(key)}}`;
}

/** Whether Redis would hash only part of the key: a `{` followed later by a `}` with something between. */
function hasHashTag(key: string): boolean {
  const open = key.indexOf('{');
  if (open === -1) return false;
  const close = key.indexOf('}', open + 1);
  return close > open + 1;
}
