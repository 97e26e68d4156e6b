import { randomBytes } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecError, RedisConnections, RedisKeys, SessionService, type RedisClient, type RedisCodec } from '../../lib/index.js';
import { handleOf } from '../../lib/session/session-ids.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { commandsSent, freshId } from './store-sessions.js';

/** Names a document must keep apart and whole: JSON's escapes, the lines' own separators, the codec's tag, the prototype. */
const ODD_NAMES = ['a"b', 'back\\slash', 'tab\there', 'new\nline', 'sl/ash', '$nrp', '__proto__', '', 'émoji 🎉', '\u2028'];

describe.each(topologies)("a session's data as one document, on $topology", ({ connection }) => {
  let app: INestApplicationContext;
  let sessions: SessionService;
  let redis: RedisClient;
  let keys: RedisKeys;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix: uniquePrefix(), session: { idleTtl: '100s', absoluteTtl: '150s' } });
    sessions = app.get(SessionService);
    redis = app.get(RedisConnections).get();
    keys = app.get(RedisKeys);
  });
  afterAll(() => app.close());

  const keyOf = (id: string) => keys.tagged(['s', handleOf(id)]);
  const docOf = (id: string) => redis.hget(keyOf(id), 'j');

  it('merges updates into the document: set, replaced, added and deleted fields, the others as they were', async () => {
    const { id } = await sessions.create(null, { keep: { n: 1 }, change: 'old', drop: [1, 2] });
    expect(await sessions.update(id, { change: 'new', added: null, drop: undefined })).toBe(true);
    expect(await docOf(id)).toBe('{\n"keep"\t:{"n":1},\n"change"\t:"new",\n"added"\t:null\n}');
    expect((await sessions.get(id))!.data).toEqual({ keep: { n: 1 }, change: 'new', added: null });
    // The last field deleted: the one before it loses its comma; added again, it comes last.
    expect(await sessions.update(id, { added: undefined })).toBe(true);
    expect(await docOf(id)).toBe('{\n"keep"\t:{"n":1},\n"change"\t:"new"\n}');
    expect(await sessions.update(id, { added: [null] })).toBe(true);
    expect(await docOf(id)).toBe('{\n"keep"\t:{"n":1},\n"change"\t:"new",\n"added"\t:[null]\n}');
    expect(await sessions.update(id, { keep: undefined, change: undefined, added: undefined })).toBe(true);
    expect(await docOf(id)).toBe('{\n}');
    expect((await sessions.get(id))!.data).toEqual({});
  });

  it('keeps values only the codec can write (Date, Map, BigInt, undefined inside) exact, marking the document while one is there', async () => {
    const since = new Date('2026-12-08T01:02:03.004Z');
    const { id } = await sessions.create(null, { since, plain: 'text' });
    expect((await docOf(id))!.startsWith('~{')).toBe(true);
    const read = (await sessions.get(id))!.data;
    expect(read.since).toBeInstanceOf(Date);
    expect(read).toEqual({ since, plain: 'text' });

    const roles = new Map([['admin', new Set(['eu'])]]);
    expect(await sessions.update(id, { roles, big: 12345678901234567890n, list: [1, undefined, 3] })).toBe(true);
    expect((await sessions.get(id))!.data).toEqual({ since, plain: 'text', roles, big: 12345678901234567890n, list: [1, undefined, 3] });
    // The last tagged value gone, the document is plain JSON again.
    expect(await sessions.update(id, { since: undefined, roles: undefined, big: undefined, list: undefined })).toBe(true);
    expect(await docOf(id)).toBe('{\n"plain"\t:"text"\n}');
    // A plain object holding the tag's own name stays a plain object.
    expect(await sessions.update(id, { tricky: { $nrp: 'Date', v: 0 } })).toBe(true);
    expect((await sessions.get(id))!.data).toEqual({ plain: 'text', tricky: { $nrp: 'Date', v: 0 } });
    // A value with no JSON form is refused, naming its field; the session stays as it was.
    await expect(sessions.update(id, { odd: { toJSON: () => undefined } })).rejects.toThrow(/no JSON form.*session data "odd"/);
    await expect(sessions.create(null, { odd: { toJSON: () => undefined } })).rejects.toThrow(CodecError);
    expect((await sessions.get(id))!.data).toEqual({ plain: 'text', tricky: { $nrp: 'Date', v: 0 } });
  });

  it('keeps fields with odd names apart and whole, through create, update, delete, regenerate and listing', async () => {
    const userId = freshId('user');
    const data: Record<string, unknown> = {};
    for (const [index, name] of ODD_NAMES.entries()) Object.defineProperty(data, name, { value: index, enumerable: true, writable: true });
    const { id } = await sessions.create(userId, data);
    const created = (await sessions.get(id))!.data;
    expect(Object.getPrototypeOf(created)).toBe(Object.prototype);
    expect(Object.keys(created).sort()).toEqual([...ODD_NAMES].sort());
    for (const [index, name] of ODD_NAMES.entries()) expect(Object.getOwnPropertyDescriptor(created, name)?.value).toBe(index);

    const patch: Record<string, unknown> = {};
    for (const name of ODD_NAMES) Object.defineProperty(patch, name, { value: `${name}!`, enumerable: true });
    expect(await sessions.update(id, patch)).toBe(true);
    const deleted: Record<string, unknown> = {};
    for (const name of ODD_NAMES.slice(0, 5)) Object.defineProperty(deleted, name, { value: undefined, enumerable: true });
    expect(await sessions.update(id, deleted)).toBe(true);
    const expected = ODD_NAMES.slice(5).map((name) => [name, `${name}!`]);
    const regenerated = (await sessions.regenerate(id))!;
    for (const found of [(await sessions.get(regenerated.id))!.data, regenerated.data, (await sessions.listForUser(userId))[0].data]) {
      expect(Object.getPrototypeOf(found)).toBe(Object.prototype);
      expect(Object.entries(found).sort()).toEqual(expected.sort());
    }
    expect(await sessions.get(id)).toBeNull();
  });

  it('keeps concurrent updates of different fields, and of the same field the last', async () => {
    const { id } = await sessions.create(null, { keep: 'me' });
    await Promise.all(Array.from({ length: 40 }, (_, i) => sessions.update(id, { [`f${i % 20}`]: i })));
    const { data } = (await sessions.get(id))!;
    expect(data).toEqual({ keep: 'me', ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, i + 20])) });
  });

  it('reads and updates a session kept a field to each data field (written before the document) in that layout', async () => {
    const userId = freshId('user');
    const id = randomBytes(32).toString('base64url');
    const key = keyOf(id);
    const [seconds] = await redis.time();
    const now = Number(seconds) * 1000;
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`d:f${i}`, JSON.stringify(i)]));
    await redis.hset(key, { m: `${now},${now},100000,150000,,,${userId}`, 'd:theme': '"dark"', 'd:a/b"c': '[1]', ...many });
    await redis.pexpire(key, 100_000);
    await redis.zadd(keys.tagged(['su', userId]), now + 150_000, handleOf(id));
    const fields = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, i]));
    expect((await sessions.get(id))!.data).toEqual({ theme: 'dark', 'a/b"c': [1], ...fields });

    // 300 fields deleted: more than one HDEL takes.
    const deleted = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, undefined]));
    expect(await sessions.update(id, { theme: 'light', 'a/b"c': undefined, visits: 2, ...deleted })).toBe(true);
    expect((await redis.hkeys(key)).sort()).toEqual(['d:theme', 'd:visits', 'm']);
    expect((await sessions.get(id))!.data).toEqual({ theme: 'light', visits: 2 });
    expect((await sessions.listForUser(userId)).map((session) => session.data)).toEqual([{ theme: 'light', visits: 2 }]);
    // Twice within the touch interval: remembered as kept in fields, read with one HGETALL.
    expect(await commandsSent(redis, async () => expect((await sessions.get(id))!.data).toEqual({ theme: 'light', visits: 2 }))).toEqual([
      'hgetall',
    ]);
    const regenerated = (await sessions.regenerate(id))!;
    expect(regenerated.data).toEqual({ theme: 'light', visits: 2 });
    expect((await redis.hkeys(keyOf(regenerated.id))).sort()).toEqual(['d:theme', 'd:visits', 'm']);
  });

  it("holds another codec's text as JSON strings in the document, decoded by that codec", async () => {
    const reversed: RedisCodec = {
      encode: (value) => `rev:${JSON.stringify(value).split('').reverse().join('')}`,
      decode: <T>(raw: string | Buffer) => JSON.parse(String(raw).slice(4).split('').reverse().join('')) as T,
    };
    const own = await startContext({ connection: connection(), keyPrefix: uniquePrefix(), codec: reversed, session: {} });
    try {
      const service = own.get(SessionService);
      const ownKeys = own.get(RedisKeys);
      const { id } = await service.create(null, { a: { b: 1 }, 'x\ty': 'line\nbreak' });
      expect(await service.update(id, { c: [true], a: undefined })).toBe(true);
      const text = (value: unknown) => JSON.stringify(reversed.encode(value));
      expect(await redis.hget(ownKeys.tagged(['s', handleOf(id)]), 'j')).toBe(
        `{\n${JSON.stringify('x\ty')}\t:${text('line\nbreak')},\n"c"\t:${text([true])}\n}`,
      );
      expect((await service.get(id))!.data).toEqual({ 'x\ty': 'line\nbreak', c: [true] });
      expect((await service.regenerate(id))!.data).toEqual({ 'x\ty': 'line\nbreak', c: [true] });
    } finally {
      await own.close();
    }
  });
});
