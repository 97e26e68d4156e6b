import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecError, JsonCodec } from '../../lib/index.js';
import { inject } from 'vitest';

const codec = new JsonCodec();
const roundTrip = (value: unknown) => codec.decode(codec.encode(value, 'k'), 'k');
/** Plain data nested `depth` objects deep. */
const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : { level: depth, next: nested(depth - 1) });

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
    [
      'Map with object keys',
      new Map<unknown, unknown>([
        [{ id: 1 }, 'a'],
        ['b', new Date(0)],
      ]),
    ],
    ['Set', new Set([1, 'two', 3n])],
    ['nested', { a: [1, undefined, null, { b: new Map([['x', new Set([new Date(5)])]]) }], c: undefined, d: 0 }],
    ['Buffer', Buffer.from([0, 1, 254, 255])],
    ['Uint8Array', new Uint8Array([9, 8, 7])],
    ['object using the tag property', { $nrp: 'Date', v: 'not a date', nested: { $nrp: 'undefined' } }],
    ['plain JSON', { name: 'Ada', tags: ['x', 'y'], score: 12.5, active: true }],
    ['a Date deep in plain data', { a: [{ b: { c: [1, { d: new Date(7) }] } }] }],
    ['-0 deep in plain data', { a: [[[{ b: -0 }]]] }],
    ['the tag property deep in plain data', { a: [{ b: { $nrp: 'x' } }] }],
    ['plain data nested 100 levels deep', nested(100)],
  ])('round-trips %s exactly', (_name, value) => {
    expect(roundTrip(value)).toStrictEqual(value);
  });

  it('writes plain data as JSON.stringify does, at any depth, and anything else tagged', () => {
    const plain = { a: [1, 'two', null, true, { b: 2.5 }], deep: nested(100) };
    expect(codec.encode(plain)).toBe(JSON.stringify(plain));
    const bare = Object.assign(Object.create(null) as object, { x: 1 });
    expect(codec.encode(bare)).toBe('{"x":1}');
    // A class instance keeps its toJSON form, as before.
    class Money {
      constructor(readonly cents: number) {}
      toJSON() {
        return `${this.cents / 100} EUR`;
      }
    }
    expect(codec.encode({ price: new Money(250) })).toBe('{"price":"2.5 EUR"}');
    // A hole reads as undefined, and is written as one.
    // eslint-disable-next-line no-sparse-arrays
    expect(codec.encode([1, , 3])).toBe('~[1,{"$nrp":"undefined"},3]');
    expect(codec.encode({ when: [new Date(0)] })).toBe('~{"when":[{"$nrp":"Date","v":"1970-01-01T00:00:00.000Z"}]}');
  });

  it('refuses a value without a JSON form with a CodecError naming the key, not an undefined text', () => {
    const nothing = { toJSON: () => undefined };
    expect(() => codec.encode(nothing, 'user:7')).toThrow(CodecError);
    expect(() => codec.encode(nothing, 'user:7')).toThrow(/no JSON form.*"user:7"/);
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
    [
      'a symbol key',
      { a: 1, [Symbol('s')]: 2 },
      /Cannot encode an object with symbol keys: only string keys can be stored for key "user:1"/,
    ],
  ])('rejects %s with a CodecError naming the key', (_name, value, message) => {
    expect(() => codec.encode(value, 'user:1')).toThrow(CodecError);
    expect(() => codec.encode(value, 'user:1')).toThrow(message);
  });

  const circularObject: Record<string, unknown> = { name: 'loop' };
  circularObject.self = circularObject;
  const circularMap = new Map<string, unknown>();
  circularMap.set('self', circularMap);
  const circularSet = new Set<unknown>();
  circularSet.add({ parent: circularSet });
  const circularTagged: Record<string, unknown> = { $nrp: 1 };
  circularTagged.self = circularTagged;

  it.each([
    ['an object', circularObject],
    ['a Map', circularMap],
    ['a Set', circularSet],
    ['an object using the tag property', circularTagged],
  ])('rejects a cycle through %s with a CodecError naming the key', (_name, value) => {
    const error = captureError(() => codec.encode(value, 'graph:9'));
    expect(error).toBeInstanceOf(CodecError);
    expect((error as CodecError).key).toBe('graph:9');
    expect((error as CodecError).message).toBe('Cannot encode a circular or too deeply nested structure for key "graph:9".');
  });

  it('encodes the same Map twice when it is shared, not as a cycle', () => {
    const shared = new Map([['a', 1]]);
    expect(roundTrip({ x: shared, y: shared })).toStrictEqual({ x: new Map([['a', 1]]), y: new Map([['a', 1]]) });
  });

  it('rejects text that is not JSON with a CodecError naming the key', () => {
    expect(() => codec.decode('{not json', 'k1')).toThrow(/Cannot decode the stored value \(.*\) for key "k1"/);
    expect(() => codec.decode('~{"$nrp":"Bogus"}', 'k2')).toThrow(/unknown tag "Bogus".* for key "k2"/);
    expect(() => codec.decode('~{"$nrp":"Number","v":"12"}', 'k3')).toThrow(/invalid number "12".* for key "k3"/);
  });

  describe('through a real Redis', () => {
    let redis: Redis;
    beforeAll(() => {
      redis = new Redis(inject('redis').standalone);
    });
    afterAll(() => redis.quit());

    it('reads back exactly what was written, whether read as a string or as a Buffer', async () => {
      const value = {
        when: new Date('2030-01-01T00:00:00Z'),
        big: 2n ** 70n,
        seen: new Set(['a']),
        none: undefined,
        zero: 0,
        text: 'héllo ✓',
        bytes: Buffer.from('\u0000\u00ff'),
      };
      await redis.set('codec:spec:value', codec.encode(value, 'codec:spec:value'));
      expect(codec.decode((await redis.get('codec:spec:value')) as string)).toStrictEqual(value);
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
