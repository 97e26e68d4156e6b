import type { INestApplicationContext } from '@nestjs/common';
import Keyv, { type KeyvOptions } from 'keyv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CacheService, RedisConnections, RedisKeys, RedisKeyvStore } from '../../lib/index.js';
import { encodeCacheKey } from '../../lib/cache/cache-key.js';
import { unpackEntry } from '../../lib/cache/cache.entry.js';
import { parseKeyvEnvelope, serializeForKeyv } from '../../lib/cache/cache.keyv-format.js';
import { scanKeys } from '../support/scan.js';
import { SLOW_BULK_OPERATIONS, startContext, topologies } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("Keyv's default serialization, as the store reads and writes it", () => {
  // Keyv's own serializer (@keyv/serialize's defaultSerialize), as a Keyv instance holds it.
  const keyv = new Keyv();
  const values: unknown[] = [
    'plain',
    ':starts with a colon',
    '::two',
    ':base64:not really',
    '',
    0,
    -1.5,
    true,
    null,
    [1, 'two', null, undefined, { three: 3 }],
    { nested: { deep: [':x', Buffer.from('bytes')] }, skipped: undefined, fn: () => 1 },
    Buffer.from([0, 255, 1]),
    new Date(0),
    { toJSON: () => ({ replaced: true }) },
    { ['__proto__']: 'own property' },
    new Map([[1, 2]]),
    new Set([1]),
    Number.NaN,
    [new Date(0), { deep: [':colon'] }],
    new Uint8Array([1, 2]),
    { date: new Date(0), plain: { json: ['only', 1, false, null] } },
  ];

  it.each(values.map((value) => [value]))('writes %o as Keyv does, alone and in an envelope', async (value) => {
    expect(serializeForKeyv({ value })).toBe(await keyv.serialize!({ value }));
    expect(serializeForKeyv({ value, expires: 1_700_000_000_000 })).toBe(await keyv.serialize!({ value, expires: 1_700_000_000_000 }));
  });

  it('reads back an envelope only when serializing its value again gives the same text', async () => {
    const text = await keyv.serialize!({ value: { buffer: Buffer.from('hi'), colon: ':c' }, expires: 5 });
    expect(parseKeyvEnvelope(text)).toEqual({ value: { buffer: Buffer.from('hi'), colon: ':c' }, expires: 5 });
    expect(parseKeyvEnvelope(await keyv.serialize!({ value: undefined, expires: undefined }))).toEqual({});
    // JSONbig's integers beyond 2^53, another serializer's spacing, -0, not an envelope, not JSON.
    // Without Keyv's escapes, the value's JSON text comes along, to be stored as it is.
    expect(parseKeyvEnvelope('{"value":{"a":[1,"b"]},"expires":5}')).toEqual({ value: { a: [1, 'b'] }, expires: 5, json: '{"a":[1,"b"]}' });
    expect(parseKeyvEnvelope('{"value":"x"}')).toEqual({ value: 'x', json: '"x"' });
    // Fields in another order: still Keyv's text, read without the value's text.
    expect(parseKeyvEnvelope('{"expires":5,"value":1}')).toEqual({ expires: 5, value: 1 });
    // An "expires" of the value's own, with and without the envelope's.
    expect(parseKeyvEnvelope('{"value":{"expires":2}}')).toEqual({ value: { expires: 2 }, json: '{"expires":2}' });
    expect(parseKeyvEnvelope('{"value":{"a":1,"expires":2},"expires":5}')).toEqual({
      value: { a: 1, expires: 2 },
      expires: 5,
      json: '{"a":1,"expires":2}',
    });
    // JSON that JSON.parse reads exactly, though JSON.stringify would write it otherwise: kept as it came.
    expect(parseKeyvEnvelope('{"value":-0}')).toEqual({ value: -0, json: '-0' });
    expect(parseKeyvEnvelope('{"value":{ "a": 1.0 }}')).toEqual({ value: { a: 1 }, json: '{ "a": 1.0 }' });
    // Sixteen digits in a string: read the long way (its JSON checked by writing it again), and kept.
    expect(parseKeyvEnvelope('{"value":"1234567890123456"}')).toEqual({ value: '1234567890123456', json: '"1234567890123456"' });
    // Keyv's escapes written otherwise (\u003a is ':', a space before the string), which Keyv's own
    // deserialize strips: not Keyv's default text; nor is a lone surrogate left unescaped.
    for (const escaped of [
      '{"value":"\\u003ax"}',
      '{"value":["\\u003ax"]}',
      '{"value": ":x"}',
      '{"value":[1, ":x"]}',
      '{"value":"\ud800"}',
    ])
      expect(parseKeyvEnvelope(escaped)).toBeUndefined();
    // The same lone surrogate escaped, as JSON.stringify writes it: Keyv's text.
    expect(parseKeyvEnvelope('{"value":"\\ud800"}')).toEqual({ value: '\ud800', json: '"\\ud800"' });
    for (const other of [
      '{"value":9223372036854775807}',
      '{"value":123456789.123456789}',
      '{"value":[12345678901234567890]}',
      '{ "value": 1 }',
      '{"value":1,"expires":2,"expires":3}',
      '{"value":1,"value":2}',
      '{"value":,"expires":5}',
      '{"other":1}',
      '{"value":1,"expires":"soon"}',
      'x',
    ])
      expect(parseKeyvEnvelope(other)).toBeUndefined();
  });

  it('tells sixteen digits or dots in a row from fifteen, wherever in the text they stand', () => {
    // The space after '[' shows which way read the text: the short way keeps it, the long way (the
    // text written again by JSON.stringify) refuses it.
    for (let offset = 0; offset < 20; offset++) {
      const before = '7,'.repeat(offset);
      expect(parseKeyvEnvelope(`{"value":[ ${before}123456789012345]}`)).toMatchObject({ json: `[ ${before}123456789012345]` });
      for (const long of ['1234567890123456', '12345678901234567', '1.23456789012345', '"1234567890.12345"'])
        expect(parseKeyvEnvelope(`{"value":[ ${before}${long}]}`)).toBeUndefined();
      // Dots before the first digit do not count.
      const dotsFirst = `[ "${before}.....12345678901234"]`;
      expect(parseKeyvEnvelope(`{"value":${dotsFirst}}`)).toMatchObject({ json: dotsFirst });
    }
  });
});

describe.each(topologies)('RedisKeyvStore on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let cache: CacheService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), cache: { ttl: '10s', l1: { maxEntries: 1_000 } }, ...SLOW_BULK_OPERATIONS });
    cache = app.get(CacheService);
  });
  afterAll(() => app.close());

  const redis = () => app.get(RedisConnections).get();
  const redisKey = (key: string) => `${app.get(RedisKeys).prefix}{c:${encodeCacheKey(key)}}`;
  const keyvOver = (options: Omit<KeyvOptions, 'store'> = {}, store = new RedisKeyvStore(cache)) => new Keyv(store, options);

  it("hands Keyv, for every value, the text Keyv's own serializer writes of it, or with decoded: true what Keyv's deserializer makes of that text", async () => {
    const serializer = new Keyv();
    const stores = [new RedisKeyvStore(cache), new RedisKeyvStore(cache, { decoded: true })];
    // The same, from L1 (its second read): built around the text L1 keeps, or a copy of the value.
    const nearStores = [new RedisKeyvStore(cache, { l1: true }), new RedisKeyvStore(cache, { l1: true, decoded: true })];
    // L1 keeps entries once the instance listens for invalidations.
    await expect
      .poll(async () => (await cache.set('l1-ready', 1, { l1: true }), await cache.get('l1-ready', { l1: true }), cache.stats().l1.hits))
      .toBeGreaterThan(0);
    const values: unknown[] = [
      'plain',
      ':starts with a colon',
      '',
      0,
      -1.5,
      true,
      null,
      [1, 'two', null, { three: 3 }],
      [':first'],
      ['a', ':later'],
      { a: ':value' },
      { 'key:': 1 },
      { 'key:': ':both' },
      { nested: { deep: ['x', ':y'] } },
      { date: new Date(0) },
      { ['__proto__']: 'own property' },
      { text: 'x'.repeat(1_000), quote: 'say ":" then' },
    ];
    // The one value the codec stores tagged (a Date): Keyv gets its text either way.
    const notPlainJson = 14;
    let objects = 0;
    for (const [at, value] of values.entries()) {
      for (const ttl of [Infinity, 60_000]) {
        await cache.set(`text:${at}`, value, { ttl, jitter: 0 });
        const entry = (await cache.getEntry(`text:${at}`))!;
        const expires = entry.freshUntil === Infinity ? undefined : entry.freshUntil;
        const text = await serializer.serialize!({ value: entry.value, expires });
        for (const decoded of [false, true]) {
          const expected = decoded && at !== notPlainJson ? await serializer.deserialize!(text) : text;
          const got = await stores[Number(decoded)].get(`text:${at}`);
          if (typeof got === 'object') objects++;
          expect(got).toStrictEqual(expected);
          const l1Hits = cache.stats().l1.hits;
          for (let read = 0; read < 2; read++) expect(await nearStores[Number(decoded)].get(`text:${at}`)).toStrictEqual(expected);
          // The first near store's first read fills L1; every read after it is an L1 hit.
          expect(cache.stats().l1.hits).toBe(l1Hits + (decoded ? 2 : 1));
        }
      }
    }
    // With decoded: true, every value but the Date, from Redis, came as an object (null's envelope is one).
    expect(objects).toBe(2 * (values.length - 1));
  });

  it('stores what Keyv writes exactly as CacheService.set stores the same value, and reads it back equal', async () => {
    const keyv = keyvOver({ namespace: 'bytes' });
    let deep: unknown = 'bottom';
    for (let level = 0; level < 70; level++) deep = { level, deep };
    const values: unknown[] = [
      { name: 'Ada', tags: ['a', 'b'], n: 0.1, big: 1e21, none: null },
      // The default codec's tag property is escaped, however the value came.
      { $nrp: 'Date', v: 0 },
      [{ nested: { $nrp: 'x' } }],
      deep,
      { ['__proto__']: 'own property' },
      'line\u2028separator, emoji 🎉, lone \ud800 escaped',
      ':colon',
      { buffer: Buffer.from('hi') },
    ];
    for (const [at, value] of values.entries()) {
      await keyv.set(`keyv:${at}`, value, 60_000);
      const fromKeyv = unpackEntry((await redis().get(redisKey(`bytes:keyv:${at}`)))!)!;
      // The same value as Keyv's JSON reads it back, written by the cache.
      const expected = await keyv.get(`keyv:${at}`);
      await cache.set(`bytes:cache:${at}`, expected, { ttl: 60_000, jitter: 0 });
      const fromCache = unpackEntry((await redis().get(redisKey(`bytes:cache:${at}`)))!)!;
      expect(fromKeyv.encoded).toEqual(fromCache.encoded);
      expect(await cache.get(`bytes:keyv:${at}`)).toEqual(expected);
    }
  });

  it('is the module’s injectable, and shares its key space with CacheService both ways', async () => {
    expect(app.get(RedisKeyvStore)).toBeInstanceOf(RedisKeyvStore);
    const keyv = keyvOver({ namespace: 'shared' });
    await keyv.set('from-keyv', { name: 'Ada', bytes: Buffer.from('ab'), colon: ':x' });
    expect(await cache.get('shared:from-keyv')).toEqual({ name: 'Ada', bytes: Buffer.from('ab'), colon: ':x' });
    await cache.set('shared:from-cache', { when: new Date(0), count: 0 });
    // What Keyv's JSON makes of it: the date as its ISO text.
    expect(await keyv.get('from-cache')).toEqual({ when: '1970-01-01T00:00:00.000Z', count: 0 });
    await cache.set('shared:null', null, { nullTtl: '10s' });
    expect(await keyv.get('null')).toBeNull();
    expect(await keyv.has('null')).toBe(true);
    // Without a namespace (as @nestjs/cache-manager makes its Keyv), the key is the cache key itself.
    const bare = keyvOver({ namespace: undefined });
    await bare.set('product:1', 'one');
    expect(await cache.get('product:1')).toBe('one');
  });

  it('keeps a value whose JSON is spaced, or -0, as it came, and another envelope as its text', async () => {
    // The envelope as Keyv writes it, the value's JSON spaced: JSON.parse reads it exactly, so it is stored as it came.
    const spacedValue = keyvOver({
      namespace: 'spaced',
      serialize: ({ value, expires }) => `{"value":${JSON.stringify(value, null, 1).replaceAll('\n', '')},"expires":${expires}}`,
    });
    await spacedValue.set('doc', { a: [1, 'b'], nested: { c: null } }, 60_000);
    expect(unpackEntry((await redis().get(redisKey('spaced:doc')))!)!.encoded).toBe('{ "a": [  1,  "b" ], "nested": {  "c": null }}');
    expect(await cache.get('spaced:doc')).toEqual({ a: [1, 'b'], nested: { c: null } });
    expect(await spacedValue.get('doc')).toEqual({ a: [1, 'b'], nested: { c: null } });
    expect(await keyvOver({ namespace: 'spaced' }).get('doc')).toEqual({ a: [1, 'b'], nested: { c: null } });

    // The envelope itself spaced: another serializer's text, kept as it came for the Keyv that wrote it.
    const spacedEnvelope = keyvOver({ namespace: 'spaced', serialize: (data) => JSON.stringify(data, null, 1) });
    await spacedEnvelope.set('other', { a: 1 }, 60_000);
    expect(await spacedEnvelope.get('other')).toEqual({ a: 1 });
    expect(await cache.get('spaced:other')).toEqual({
      $keyv: JSON.stringify({ value: { a: 1 }, expires: (await spacedEnvelope.getRaw('other'))!.expires }, null, 1),
    });

    // -0: Keyv's JSON writes 0; a serializer that writes -0 has it stored, and read back, as -0.
    await keyvOver({ namespace: 'spaced' }).set('zero', -0);
    expect(unpackEntry((await redis().get(redisKey('spaced:zero')))!)!.encoded).toBe('0');
    const signed = keyvOver({
      namespace: 'spaced',
      serialize: ({ value }) => (Object.is(value, -0) ? '{"value":-0}' : JSON.stringify({ value })),
    });
    await signed.set('minus-zero', -0);
    expect(unpackEntry((await redis().get(redisKey('spaced:minus-zero')))!)!.encoded).toBe('-0');
    expect(Object.is(await cache.get('spaced:minus-zero'), -0)).toBe(true);
    expect(Object.is(await signed.get('minus-zero'), -0)).toBe(true);
  });

  it("writes Keyv's TTL in milliseconds exactly, and no TTL (or 0) as no expiry", async () => {
    const keyv = keyvOver({ namespace: 'ttl' });
    await keyv.set('five-seconds', 1, 5_000);
    const pttl = await redis().pttl(redisKey('ttl:five-seconds'));
    expect(pttl).toBeGreaterThan(4_800);
    expect(pttl).toBeLessThanOrEqual(5_000);
    const raw = await keyv.getRaw('five-seconds');
    expect(raw!.value).toBe(1);
    expect(raw!.expires! - Date.now()).toBeGreaterThan(4_800);
    expect(raw!.expires! - Date.now()).toBeLessThanOrEqual(5_000);

    await keyv.set('forever', 1);
    await keyv.set('zero', 1, 0);
    expect(await redis().pttl(redisKey('ttl:forever'))).toBe(-1);
    expect(await redis().pttl(redisKey('ttl:zero'))).toBe(-1);
    expect(await keyv.getRaw('forever')).toEqual({ value: 1 });

    const withDefault = keyvOver({ namespace: 'ttl', ttl: 3_000 });
    await withDefault.set('default', 1);
    expect(await redis().pttl(redisKey('ttl:default'))).toBeGreaterThan(2_800);
    expect(await redis().pttl(redisKey('ttl:default'))).toBeLessThanOrEqual(3_000);

    await keyv.set('brief', 'gone soon', 150);
    await sleep(250);
    expect(await keyv.get('brief')).toBeUndefined();
    expect(await redis().exists(redisKey('ttl:brief'))).toBe(0);
  });

  it("stores another serializer's text as it came, under $keyv", async () => {
    // Base64 of JSON, as a compression adapter would hand over: not Keyv's default serialization.
    const keyv = keyvOver({
      namespace: 'other',
      serialize: (data) => Buffer.from(JSON.stringify(data)).toString('base64'),
      deserialize: (text) => JSON.parse(Buffer.from(text, 'base64').toString()),
    });
    await keyv.set('n', { id: 7 }, 4_000);
    const text = (await cache.get<{ $keyv: string }>('other:n'))!.$keyv;
    expect(JSON.parse(Buffer.from(text, 'base64').toString())).toMatchObject({ value: { id: 7 } });
    expect(await keyv.get('n')).toEqual({ id: 7 });
    // From Redis, then from L1: the text as it came.
    const near = new RedisKeyvStore(cache, { l1: true });
    expect([await near.get('other:n'), await near.get('other:n')]).toEqual([text, text]);
    expect(await redis().pttl(redisKey('other:n'))).toBeGreaterThan(3_800);
  });

  it('clears only its namespace, a thousand at a time over every master, and everything without a namespace', async () => {
    const mine = keyvOver({ namespace: 'mine' });
    const theirs = keyvOver({ namespace: 'theirs' });
    await mine.setMany(Array.from({ length: 2_500 }, (_, i) => ({ key: `k${i}`, value: i })));
    await theirs.set('k1', 'kept');
    await cache.set('mine-but-not-namespaced', 'kept');
    await mine.clear();
    expect(await mine.get(['k0', 'k1', 'k2499'])).toEqual([undefined, undefined, undefined]);
    expect(await countKeys(`${app.get(RedisKeys).prefix}{c:mine:*}`)).toBe(0);
    expect(await theirs.get('k1')).toBe('kept');
    expect(await cache.get('mine-but-not-namespaced')).toBe('kept');

    await keyvOver({ namespace: undefined }).clear();
    expect(await theirs.get('k1')).toBeUndefined();
    expect(await cache.get('mine-but-not-namespaced')).toBeUndefined();
  });

  it('iterates over its namespace across SCAN steps and masters; getMany, hasMany, deleteMany use the store', async () => {
    const keyv = keyvOver({ namespace: 'iter' });
    const entries = Array.from({ length: 2_100 }, (_, i) => ({ key: `k:${i}`, value: { i } }));
    await keyv.setMany(entries);
    await keyvOver({ namespace: 'iter-not' }).set('k:0', 'other namespace');
    const seen = new Map<string, unknown>();
    for await (const [key, value] of keyv.iterator!(undefined)) seen.set(key as string, value);
    expect(seen.size).toBe(2_100);
    expect(seen.get('k:7')).toEqual({ i: 7 });

    expect(await keyv.getMany(['k:1', 'missing', 'k:2'])).toEqual([{ i: 1 }, undefined, { i: 2 }]);
    expect(await keyv.hasMany(['k:1', 'missing'])).toEqual([true, false]);
    expect(await keyv.deleteMany(entries.map(({ key }) => key))).toBe(true);
    expect(await keyv.deleteMany(['k:1'])).toBe(false);
    expect(await countKeys(`${app.get(RedisKeys).prefix}{c:iter:*}`)).toBe(0);
  });

  it("keeps a value shaped like the store's own keeping of a text ({ $keyv: string }) as Keyv wrote it, in every mode", async () => {
    const marker = { $keyv: 'not a text of ours' };
    for (const decoded of [false, true]) {
      const store = new RedisKeyvStore(cache, { decoded });
      const keyv = keyvOver({ namespace: `marker-${decoded}` }, store);
      await keyv.set('value', marker);
      expect(await keyv.get('value')).toEqual(marker);
      // The same envelope as another serializer may space it.
      await store.set(`marker-${decoded}:spaced`, '{"value":{"$keyv":"abc"} }');
      expect(await keyv.get('spaced')).toEqual({ $keyv: 'abc' });
    }
    const raw = new Keyv({
      store: new RedisKeyvStore(cache, { serialize: false }),
      namespace: 'marker-raw',
      serialize: undefined,
      deserialize: undefined,
    });
    await raw.set('value', marker);
    expect(await raw.get('value')).toEqual(marker);
    expect(await cache.get('marker-raw:value')).toEqual(marker);
  });

  it('with serialize: false, keeps values as they are, through the module codec', async () => {
    const store = new RedisKeyvStore(cache, { serialize: false });
    const keyv = new Keyv({ store, namespace: 'raw', serialize: undefined, deserialize: undefined });
    const value = { at: new Date(5), tags: new Set(['a']), big: 2n ** 70n, map: new Map([[1, { one: true }]]) };
    await keyv.set('typed', value, 4_000);
    expect(await keyv.get('typed')).toStrictEqual(value);
    expect(await cache.get('raw:typed')).toStrictEqual(value);
    expect((await keyv.getRaw('typed'))!.expires! - Date.now()).toBeLessThanOrEqual(4_000);
    const iterated = [];
    for await (const entry of keyv.iterator!(undefined)) iterated.push(entry);
    expect(iterated).toStrictEqual([['typed', value]]);
  });

  it.each([false, true])("gives Keyv's get, getRaw, getMany, getManyRaw and iterator the same entries (decoded: %s)", async (decoded) => {
    const keyv = keyvOver({ namespace: `reads-${decoded}` }, new RedisKeyvStore(cache, { decoded, l1: true }));
    await keyv.set('object', { a: [1, ':b'] }, 60_000);
    await keyv.set('text', ':colon');
    const envelope = { value: { a: [1, ':b'] }, expires: (await keyv.getRaw('object'))!.expires };
    expect(envelope.expires! - Date.now()).toBeGreaterThan(59_000);
    expect(await keyv.get('object')).toEqual({ a: [1, ':b'] });
    expect(await keyv.getMany(['object', 'text', 'none'])).toEqual([{ a: [1, ':b'] }, ':colon', undefined]);
    expect(await keyv.getManyRaw(['object', 'text', 'none'])).toEqual([envelope, { value: ':colon' }, undefined]);
    const iterated = [];
    for await (const entry of keyv.iterator!(undefined)) iterated.push(entry);
    expect(iterated.sort()).toEqual([
      ['object', { a: [1, ':b'] }],
      ['text', ':colon'],
    ]);
    // Each read, from Redis or L1, is a copy of its own: changing one changes nothing stored.
    const hits = cache.stats().l1.hits;
    for (let read = 0; read < 3; read++) {
      const value = (await keyv.get<{ a: unknown[] }>('object'))!;
      expect(value).toEqual({ a: [1, ':b'] });
      value.a.push('changed');
    }
    expect(cache.stats().l1.hits).toBeGreaterThan(hits);
  });

  it('with decoded: true and l1.shared, hands Keyv the instance L1 keeps', async () => {
    const shared = await startContext({ connection: connection(), cache: { ttl: '10s', l1: { maxEntries: 100, shared: true } } });
    try {
      const sharedCache = shared.get(CacheService);
      await expect
        .poll(
          async () => (
            await sharedCache.set('ready', 1, { l1: true }),
            await sharedCache.get('ready', { l1: true }),
            sharedCache.stats().l1.hits
          ),
        )
        .toBeGreaterThan(0);
      const store = new RedisKeyvStore(sharedCache, { decoded: true, l1: true });
      await sharedCache.set('doc', { n: 1 }, { l1: true });
      const first = (await store.get('doc')) as { value: unknown };
      const second = (await store.get('doc')) as { value: unknown };
      expect(first.value).toEqual({ n: 1 });
      expect(second.value).toBe(first.value);
    } finally {
      await shared.close();
    }
  });

  it('serves a Keyv with its own deserialize the values it revives (the store hands it text)', async () => {
    const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
    const revive = (_key: string, value: unknown) => (typeof value === 'string' && iso.test(value) ? new Date(value) : value);
    const keyv = keyvOver({
      namespace: 'revived',
      serialize: JSON.stringify,
      deserialize: (text: string) => JSON.parse(text, revive) as never,
    });
    await keyv.set('event', { at: new Date(0), name: 'launch' }, 60_000);
    expect(await keyv.get('event')).toStrictEqual({ at: new Date(0), name: 'launch' });
    expect(await keyv.getMany(['event'])).toStrictEqual([{ at: new Date(0), name: 'launch' }]);
  });

  it('serves a Keyv with compression its own entries, whether the compressed value is text, bytes or left as it was', async () => {
    const doc = { title: 'compressed', n: 1 };
    const compressions = {
      text: {
        compress: async (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64'),
        decompress: async (value: unknown) => JSON.parse(Buffer.from(value as string, 'base64').toString()) as unknown,
      },
      // A Uint8Array, which Keyv's JSON writes as an object of its bytes.
      bytes: {
        compress: async (value: unknown) => new Uint8Array(Buffer.from(JSON.stringify(value))),
        decompress: async (value: unknown) => JSON.parse(Buffer.from(Object.values(value as Record<string, number>)).toString()) as unknown,
      },
      identity: { compress: async (value: unknown) => value, decompress: async (value: unknown) => value },
    };
    for (const [name, compression] of Object.entries(compressions)) {
      const keyv = keyvOver({ namespace: `zipped-${name}`, compression });
      await keyv.set('doc', doc, 60_000);
      expect(await keyv.get('doc')).toEqual(doc);
      expect(await keyv.getMany(['doc', 'none'])).toEqual([doc, undefined]);
    }
    // Stored as the compressed text it is, which CacheService reads as a string.
    expect(await cache.get('zipped-text:doc')).toBe(Buffer.from(JSON.stringify(doc)).toString('base64'));
  });

  it('keeps its entries in L1 with l1: true', async () => {
    const keyv = keyvOver({ namespace: 'near' }, new RedisKeyvStore(cache, { l1: true }));
    await keyv.set('hot', 'value', 5_000);
    const before = cache.stats().l1.hits;
    expect(await keyv.get('hot')).toBe('value');
    expect(await keyv.get('hot')).toBe('value');
    expect(cache.stats().l1.hits).toBe(before + 2);
  });

  it('refuses options it does not know or of the wrong type, naming them', () => {
    expect(() => new RedisKeyvStore(cache, { serialize: 'no' as never })).toThrow(
      /Invalid option "RedisKeyvStore.serialize": expected true or false/,
    );
    expect(() => new RedisKeyvStore(cache, { l1: 1 as never })).toThrow(/Invalid option "RedisKeyvStore.l1"/);
    expect(() => new RedisKeyvStore(cache, { decoded: 'yes' as never })).toThrow(
      /Invalid option "RedisKeyvStore.decoded": expected true or false/,
    );
    expect(() => new RedisKeyvStore(cache, { namespace: 'x' } as never)).toThrow(/Invalid option "RedisKeyvStore.namespace"/);
  });

  it('refuses a TTL that is not a duration, naming it, and resolves false without throwOnErrors', async () => {
    await expect(keyvOver({ throwOnErrors: true }).set('bad-ttl', 1, -5)).rejects.toThrow(/Invalid option "ttl"/);
    const errors: unknown[] = [];
    const keyv = keyvOver();
    keyv.on('error', (error: unknown) => errors.push(error));
    expect(await keyv.set('bad-ttl', 1, Number.NaN)).toBe(false);
    expect(String(errors[0])).toMatch(/Invalid option "ttl"/);
  });

  const countKeys = async (match: string) => (await scanKeys(redis(), match)).length;
});
