import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { scanKeys as scanEveryKey } from '../support/scan.js';
import { encodeKeyPart, MalformedTextError, RedisKeys } from '../../lib/index.js';

describe('RedisKeys', () => {
  const keys = new RedisKeys('app:');

  it('joins encoded parts after the prefix', () => {
    expect(keys.key('session', 'abc', 42)).toBe('app:session:abc:42');
  });

  it('encodes separators, hash-tag braces, glob characters, backslashes and %', () => {
    expect(encodeKeyPart('a:b{c}*?[x]\\%')).toBe('a%3Ab%7Bc%7D%2A%3F%5Bx%5D%5C%25');
    expect(encodeKeyPart('plain-id_1.2')).toBe('plain-id_1.2');
  });

  it('encodes the space and control characters, so keys print and split safely', () => {
    expect(encodeKeyPart('two words\r\n\t\u0000\u007f')).toBe('two%20words%0D%0A%09%00%7F');
    expect(keys.key('u', 'a b')).not.toBe(keys.key('u', 'a%20b'));
  });

  it('refuses parts that are not well-formed Unicode: as UTF-8 they would be the same key as U+FFFD', () => {
    expect(() => encodeKeyPart('x\ud800')).toThrow(
      'Invalid option "key part": expected well-formed Unicode text, got a string with a lone surrogate (not valid UTF-16).',
    );
    expect(() => keys.tagged(['rl', 'user\udc00'])).toThrow(MalformedTextError);
    expect(encodeKeyPart('emoji \ud83d\ude00')).toBe('emoji%20\ud83d\ude00');
  });

  it('keeps distinct user parts distinct (no collisions through separators)', () => {
    expect(keys.key('u', 'a:b', 'c')).not.toBe(keys.key('u', 'a', 'b:c'));
    expect(keys.key('u', 'a%3Ab')).not.toBe(keys.key('u', 'a:b'));
  });

  it('puts every key with the same tag parts in one cluster slot, whatever follows', () => {
    const tagged = ['a', 'b:c', 'd{e}'].map((suffix) => keys.tagged(['rl', 'user:7'], suffix));
    expect(tagged[0]).toBe('app:{rl:user%3A7}:a');
    expect(new Set(tagged.map(calculateSlot)).size).toBe(1);
    expect(calculateSlot(keys.tagged('x{y}'))).toBe(calculateSlot(keys.tagged('x{y}', 'z')));
  });

  it('rejects an empty hash tag, which Redis would ignore', () => {
    expect(() => keys.tagged([])).toThrow('Invalid option "tagParts": expected a non-empty hash tag, got an array of 0.');
    expect(() => keys.tagged('')).toThrow(/expected a non-empty hash tag/);
  });

  it('builds patterns that a user part cannot widen', () => {
    expect(keys.pattern('cache', '*')).toBe('app:cache:%2A:*');
  });

  it('tells the first part of a key, or of its hash tag, whatever a user part holds', () => {
    expect(keys.segmentOf(keys.tagged(['rl', 'a:b{c}'], 'login'))).toBe('rl');
    expect(keys.segmentOf(keys.tagged('cache-invalidations'))).toBe('cache-invalidations');
    expect(keys.segmentOf(keys.key('lock', '{x}'))).toBe('lock');
    expect(keys.segmentOf('app:c-epoch{a}')).toBe('c-epoch');
    expect(keys.segmentOf('app:c-epoch')).toBe('c-epoch');
    expect(keys.segmentOf('app:{}x')).toBeUndefined();
    expect(keys.segmentOf('other:lock:x')).toBeUndefined();
  });

  describe('against a real SCAN', () => {
    let redis: Redis;
    const scanKeys = new RedisKeys('keys-spec:');
    beforeAll(async () => {
      redis = new Redis(inject('redis').standalone);
      await redis.mset(
        scanKeys.key('cache', 'alice', '1'),
        'a',
        scanKeys.key('cache', 'bob', '1'),
        'b',
        scanKeys.key('cache', '*', '1'),
        'star',
      );
    });
    afterAll(() => redis.quit());

    it('a "*" supplied by a user matches only its own key, not other users\' keys', async () => {
      // A whole SCAN: the shared server holds the other suites' keys too.
      const scanAll = (match: string) => scanEveryKey(redis, match);
      const found = await scanAll(scanKeys.pattern('cache', '*'));
      expect(found).toEqual([scanKeys.key('cache', '*', '1')]);
      const all = await scanAll(scanKeys.pattern('cache'));
      expect(all.sort()).toEqual(
        [scanKeys.key('cache', '*', '1'), scanKeys.key('cache', 'alice', '1'), scanKeys.key('cache', 'bob', '1')].sort(),
      );
    });
  });
});
