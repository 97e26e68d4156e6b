import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecError, JsonCodec } from '../../lib/index.js';
import { inject } from 'vitest';

const codec = new JsonCodec();
const roundTrip = (value: unknown) => codec.decode(codec.encode(value, 'k'), 'k');

describe('JsonCodec', () => {
  it.each([
    ['zero', 0],
    ['false', false],
    ['empty string', ''],
    ['null', null],
    ['undefined', undefined],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['negative zero', -0],
    ['BigInt', 12345678901234567890123n],
    ['Date', new Date('2026-11-24T10:00:00.123Z')],
    ['invalid Date', new Date(Number.NaN)],
    ['Map with object keys', new Map<unknown, unknown>([[{ id: 1 }, 'a'], ['b', new Date(0)]])],
    ['Set', new Set([1, 'two', 3n])],
    ['nested', { a: [1, undefined, null, { b: new Map([['x', new Set([new Date(5)])]]) }], c: undefined, d: 0 }],
    ['object using the tag property', { $nrp: 'Date', v: 'not a date', nested: { $nrp: 'undefined' } }],
    ['plain JSON', { name: 'Ada', tags: ['x', 'y'], score: 12.5, active: true }],
  ])('round-trips %s exactly', (_name, value) => {
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it('keeps the key of an undefined property', () => {
    const decoded = roundTrip({ present: undefined }) as Record<string, unknown>;
    expect(Object.keys(decoded)).toEqual(['present']);
  });

  it('stores plain JSON values as plain JSON, so other readers can use them', () => {
    expect(codec.encode({ a: 1, b: ['x'] })).toBe('{"a":1,"b":["x"]}');
    expect(codec.encode(0)).toBe('0');
    expect(codec.encode(new Date(0))).toBe('~{"$nrp":"Date","v":"1970-01-01T00:00:00.000Z"}');
  });

  it('does not let a stored "__proto__" property change the prototype', () => {
    const decoded = codec.decode<Record<string, unknown>>('~{"__proto__":{"polluted":{"$nrp":"undefined"}},"d":{"$nrp":"Date","v":null}}');
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(decoded, '__proto__')).toBe(true);
  });

  it.each([
    ['a function', { f: () => 1 }, /Cannot encode a function: only data can be stored for key "user:1"/],
    ['a symbol', [Symbol('s')], /Cannot encode a symbol: only data can be stored for key "user:1"/],
  ])('rejects %s with a CodecError naming the key', (_name, value, message) => {
    expect(() => codec.encode(value, 'user:1')).toThrow(CodecError);
    expect(() => codec.encode(value, 'user:1')).toThrow(message);
  });

  it('rejects a circular structure with a CodecError naming the key', () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const error = captureError(() => codec.encode(circular, 'graph:9'));
    expect(error).toBeInstanceOf(CodecError);
    expect((error as CodecError).key).toBe('graph:9');
    expect((error as CodecError).message).toBe('Cannot encode a circular structure for key "graph:9".');
  });

  it('rejects text that is not JSON with a CodecError naming the key', () => {
    expect(() => codec.decode('{not json', 'k1')).toThrow(/Cannot decode the stored value \(.*\) for key "k1"/);
    expect(() => codec.decode('~{"$nrp":"Bogus"}', 'k2')).toThrow(/unknown tag "Bogus".* for key "k2"/);
  });

  describe('through a real Redis', () => {
    let redis: Redis;
    beforeAll(() => {
      redis = new Redis(inject('redis').standalone);
    });
    afterAll(() => redis.quit());

    it('reads back exactly what was written, Buffers included', async () => {
      const value = { when: new Date('2030-01-01T00:00:00Z'), big: 2n ** 70n, seen: new Set(['a']), none: undefined, zero: 0, text: 'héllo ✓' };
      await redis.set('codec:spec:value', codec.encode(value, 'codec:spec:value'));
      expect(codec.decode(await redis.get('codec:spec:value') as string)).toStrictEqual(value);
      expect(codec.decode((await redis.getBuffer('codec:spec:value')) as Buffer)).toStrictEqual(value);
    });
  });
});

function captureError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
