import { createHash } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError, MalformedTextError, RedisConnections, RedisKeys, SessionCookies, SessionService } from '../../lib/index.js';
import { resolveSessionOptions } from '../../lib/session/session.options-validator.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let users = 0;
const freshUser = () => `user-${++users}-${Math.random().toString(36).slice(2, 8)}`;

describe.each(topologies)('SessionService on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  let sessions: SessionService;
  beforeAll(async () => {
    apps = await Promise.all(
      [1, 2].map(() =>
        startContext({ connection: connection(), keyPrefix, session: { idleTtl: '600ms', absoluteTtl: '2s', touchInterval: '100ms' } }),
      ),
    );
    sessions = apps[0].get(SessionService);
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  it('creates a session with a 256-bit id, and reads it back with its data and deadlines', async () => {
    const userId = freshUser();
    const created = await sessions.create(userId, { role: 'admin', since: new Date('2026-01-02T03:04:05Z'), count: 0 });
    expect(created.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(created.id, 'base64url')).toHaveLength(32);
    expect(created.expiresAt - created.createdAt).toBe(600);
    const read = await apps[1].get(SessionService).get(created.id);
    expect(read).toEqual({ ...created, lastSeenAt: read!.lastSeenAt, expiresAt: read!.expiresAt });
    expect(read!.data.since).toBeInstanceOf(Date);
    expect(read!.data.count).toBe(0);
  });

  it('stores a hash of the id, never the id itself', async () => {
    const { id } = await sessions.create(freshUser(), { secret: 'x' });
    const keys = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    const handle = createHash('sha256').update(id).digest('base64url');
    expect(await redis.exists(keys.tagged(['s', handle]))).toBe(1);
    expect(await redis.exists(keys.tagged(['s', id]))).toBe(0);
    const stored = await redis.hgetall(keys.tagged(['s', handle]));
    expect(JSON.stringify(stored)).not.toContain(id);
  });

  it('expires after the idle timeout, slides it on reads, and still ends at the absolute timeout', async () => {
    const idle = await sessions.create(freshUser());
    await sleep(700);
    expect(await sessions.get(idle.id)).toBeNull();

    const busy = await sessions.create(freshUser());
    const alive: boolean[] = [];
    for (let elapsed = 0; elapsed < 1_600; elapsed += 200) {
      await sleep(200);
      alive.push((await sessions.get(busy.id)) !== null);
    }
    // Read every 200ms: alive well past the 600ms idle timeout.
    expect(alive.every(Boolean)).toBe(true);
    await sleep(300);
    await sessions.get(busy.id);
    await sleep(200);
    // Past the 2s absolute timeout, however often it was read.
    expect(await sessions.get(busy.id)).toBeNull();
  });

  it("slides the idle timeout on Redis's clock, on an instance whose own clock is an hour off", async () => {
    for (const skewMs of [-3_600_000, 3_600_000]) {
      const { id } = await sessions.create(freshUser());
      const now = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => now() + skewMs);
      const skewed = await startContext({
        connection: connection(),
        keyPrefix,
        session: { idleTtl: '600ms', absoluteTtl: '2s', touchInterval: '100ms' },
      });
      try {
        const lastSeen: number[] = [];
        for (let elapsed = 0; elapsed < 1_200; elapsed += 150) {
          await sleep(150);
          const read = await skewed.get(SessionService).get(id);
          expect(read, `read ${elapsed + 150}ms after creation (clock off by ${skewMs}ms)`).not.toBeNull();
          lastSeen.push(read!.lastSeenAt);
        }
        // Each slide is stamped with Redis's time, never this host's.
        expect(lastSeen.every((seen) => Math.abs(seen - now()) < 2_000)).toBe(true);
      } finally {
        vi.restoreAllMocks();
        await skewed.close();
      }
    }
  });

  it('keeps concurrent updates of different fields, from two instances', async () => {
    const { id } = await sessions.create(freshUser(), { keep: 'me' });
    await Promise.all(Array.from({ length: 20 }, (_, i) => apps[i % 2].get(SessionService).update(id, { [`f${i}`]: i })));
    await sessions.update(id, { keep: undefined });
    const { data } = (await sessions.get(id))!;
    expect(data).toEqual(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, i])));
    expect(await sessions.update('not-an-id', { a: 1 })).toBe(false);
  });

  it('regenerates: a new id with the same data, and the old id dead at once', async () => {
    const userId = freshUser();
    const before = await sessions.create(userId, { cart: ['book'] });
    const after = (await sessions.regenerate(before.id))!;
    expect(after.id).not.toBe(before.id);
    expect(after).toMatchObject({ userId, data: { cart: ['book'] }, createdAt: before.createdAt });
    expect(await apps[1].get(SessionService).get(before.id)).toBeNull();
    expect((await sessions.get(after.id))?.data).toEqual({ cart: ['book'] });
    expect((await sessions.listForUser(userId)).map((session) => session.handle)).toEqual([
      createHash('sha256').update(after.id).digest('base64url'),
    ]);
    expect(await sessions.regenerate(before.id)).toBeNull();
  });

  it("lists a user's sessions made by two instances, repairs dead entries, and logs out everywhere else", async () => {
    const userId = freshUser();
    const mine = await sessions.create(userId, { device: 'laptop' });
    const others = await Promise.all([1, 2, 3].map((n) => apps[n % 2].get(SessionService).create(userId, { device: `phone-${n}` })));
    expect((await sessions.listForUser(userId)).map((session) => session.data.device).sort()).toEqual([
      'laptop',
      'phone-1',
      'phone-2',
      'phone-3',
    ]);

    // A session deleted behind the index's back is dropped from the list and from the index.
    const keys = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    await redis.del(keys.tagged(['s', createHash('sha256').update(others[0].id).digest('base64url')]));
    expect(await sessions.listForUser(userId)).toHaveLength(3);
    expect(await redis.zcard(keys.tagged(['su', userId]))).toBe(3);

    expect(await apps[1].get(SessionService).destroyAllForUser(userId, { except: mine.id })).toBe(2);
    expect((await sessions.listForUser(userId)).map((session) => session.data.device)).toEqual(['laptop']);
    expect(await sessions.get(others[1].id)).toBeNull();
    expect(await sessions.destroy(mine.id)).toBe(true);
    expect(await sessions.listForUser(userId)).toEqual([]);
    // The index goes with the user's last session.
    expect(await redis.exists(keys.tagged(['su', userId]))).toBe(0);
  });

  it('lists and ends all 600 sessions of one user in bounded steps, with the count, within the default commandTimeout', async () => {
    const userId = freshUser();
    // Timeouts longer than the suite's 600ms idle timeout: none may expire while the 600 are made and listed.
    const timeouts = { idleTtl: '2m', absoluteTtl: '2m' } as const;
    for (let made = 0; made < 600; made += 50)
      await Promise.all(Array.from({ length: 50 }, (_, n) => sessions.create(userId, { n: made + n }, timeouts)));
    expect((await sessions.listForUser(userId)).map((session) => session.data.n).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 600 }, (_, n) => n),
    );
    expect(await sessions.destroyAllForUser(userId)).toBe(600);
    expect(await sessions.listForUser(userId)).toEqual([]);
  });

  it('answers null for forged, malformed and overlong ids, and rejects bad input by name', async () => {
    for (const id of ['', 'short', 'a'.repeat(43).replace(/a$/, '!'), 'a'.repeat(10_000), 42 as unknown as string])
      expect(await sessions.get(id)).toBeNull();
    // Well-formed, but never issued.
    expect(await sessions.get(Buffer.alloc(32, 7).toString('base64url'))).toBeNull();
    await expect(sessions.create('', {})).rejects.toThrow(InvalidOptionError);
    await expect(sessions.create(null, [] as never)).rejects.toThrow(/Invalid option "data"/);
    await expect(sessions.create(null, {}, { idleTtl: 0 })).rejects.toThrow(/"options.idleTtl"/);
  });

  it('keeps anonymous sessions out of any index, and logs one in with regenerate', async () => {
    const session = await sessions.create(null, { visits: 1 });
    expect((await sessions.get(session.id))?.userId).toBeNull();
    const userId = freshUser();
    const loggedIn = (await sessions.regenerate(session.id, { userId }))!;
    expect(loggedIn).toMatchObject({ userId, data: { visits: 1 } });
    expect(await sessions.get(session.id)).toBeNull();
    expect((await sessions.listForUser(userId)).map((listed) => listed.handle)).toEqual([loggedIn.handle]);
    expect(await sessions.destroy(loggedIn.id)).toBe(true);
    expect(await sessions.destroy(loggedIn.id)).toBe(false);
  });

  it('regenerate takes the old session away at once: a concurrent regenerate or update of it finds nothing', async () => {
    const { id } = await sessions.create(freshUser(), { n: 0 });
    const [first, second] = await Promise.all([sessions.regenerate(id), apps[1].get(SessionService).regenerate(id)]);
    expect([first, second].filter((result) => result !== null)).toHaveLength(1);
    expect(await sessions.update(id, { n: 1 })).toBe(false);
  });

  it('stores a data field named __proto__ as a field, not as the prototype', async () => {
    const { id } = await sessions.create(null, JSON.parse('{"__proto__":{"isAdmin":true}}') as Record<string, unknown>);
    const { data } = (await sessions.get(id))!;
    expect((data as { isAdmin?: boolean }).isAdmin).toBeUndefined();
    expect(Object.keys(data)).toEqual(['__proto__']);
  });

  it('answers malformed, forged or oversized ids without sending Redis a command', async () => {
    const redis = apps[0].get(RedisConnections).get();
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      // 43 base64url characters only: express-session's 32-character ids go through RedisSessionStore.
      for (const id of [
        '',
        'short',
        'a'.repeat(32),
        'a'.repeat(44),
        'has spaces in it and is long enough',
        '../../etc/passwd-and-more-chars',
        '*'.repeat(43),
      ]) {
        expect(await sessions.get(id)).toBeNull();
        expect(await sessions.update(id, { a: 1 })).toBe(false);
        expect(await sessions.regenerate(id)).toBeNull();
        expect(await sessions.destroy(id)).toBe(false);
        expect(await sessions.destroyHandle('some-user', id)).toBe(false);
      }
      expect(sent).not.toHaveBeenCalled();
      // A well-formed id nobody issued costs exactly one lookup.
      expect(await sessions.get('A'.repeat(43))).toBeNull();
      expect(sent.mock.calls.map(([command]) => command.name.toLowerCase())).toEqual(['evalsha']);
    } finally {
      sent.mockRestore();
    }
  });

  it('keeps a long session (30 days) and its user index for exactly their timeouts', async () => {
    const userId = freshUser();
    const session = await sessions.create(userId, {}, { idleTtl: '25d', absoluteTtl: '30d' });
    const day = 24 * 3_600_000;
    expect(session.expiresAt - session.createdAt).toBe(25 * day);
    const keys = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    expect(await redis.pexpiretime(keys.tagged(['s', session.handle]))).toBeCloseTo(session.createdAt + 25 * day, -1);
    // The index expires with the absolute deadline of its last session.
    expect(await redis.pexpiretime(keys.tagged(['su', userId]))).toBe(session.createdAt + 30 * day);
  });

  it('refuses user ids and data field names that are not well-formed Unicode, naming the argument', async () => {
    const loneSurrogate = 'ann\uD800';
    const { id } = await sessions.create(freshUser());
    const refusals: [string, () => Promise<unknown>][] = [
      ['userId', () => sessions.create(loneSurrogate)],
      ['userId', () => sessions.regenerate(id, { userId: loneSurrogate })],
      ['userId', () => sessions.listForUser(loneSurrogate)],
      ['userId', () => sessions.destroyAllForUser(loneSurrogate)],
      ['userId', () => sessions.destroyHandle(loneSurrogate, 'A'.repeat(43))],
      ['data (a field name)', () => sessions.create(null, { [loneSurrogate]: 1 })],
      ['data (a field name)', () => sessions.update(id, { [loneSurrogate]: 1 })],
    ];
    for (const [argument, call] of refusals) {
      const error = await call().then(
        () => undefined,
        (rejection: unknown) => rejection,
      );
      // A 400: such text comes from requests.
      expect(error).toBeInstanceOf(MalformedTextError);
      expect(error).toMatchObject({ option: argument, expected: 'well-formed Unicode text' });
      expect((error as MalformedTextError).getStatus()).toBe(400);
    }
    // The refused regenerate left the session as it was.
    expect(await sessions.get(id)).not.toBeNull();
    // Well-formed text beyond ASCII is a user id like any other.
    const userId = `${freshUser()}-Zoë-😀`;
    await sessions.create(userId, { 'naïve 😀': true });
    expect((await sessions.listForUser(userId)).map((session) => session.data)).toEqual([{ 'naïve 😀': true }]);
  });
});

describe('session cookies', () => {
  it("expire with the session's absolute timeout, counted to Redis's now (a regenerated session's cookie too)", async () => {
    const app = await startContext({
      connection: topologies[0].connection(),
      session: { idleTtl: '5s', absoluteTtl: '10s', touchInterval: '1s', cookie: { secret: 'y'.repeat(32) } },
    });
    const sessions = app.get(SessionService);
    const issued: string[] = [];
    const response = { header: (_name: string, value: string | string[]) => issued.push(String(value)), getHeader: () => undefined };
    const created = await sessions.create('cookie-user');
    app.get(SessionCookies).issue(response, created);
    await sleep(1_100);
    app.get(SessionCookies).issue(response, (await sessions.regenerate(created.id))!);
    // Rounded down, so the cookie never outlives the session: 9 when a millisecond passed since creation.
    expect(issued.map((cookie) => Number(/Max-Age=(\d+)/.exec(cookie)![1]))).toEqual([expect.toBeOneOf([9, 10]), 8]);
    await app.close();
  });
});

describe('session options', () => {
  const secret = 'x'.repeat(32);
  it.each([
    [{ name: 'sid;evil' }, /"session.cookie.name": expected a cookie name/],
    [
      { name: '__Host-sid', path: '/app' },
      /"session.cookie.name": expected a __Host- name only with secure: true, path '\/' and no domain/,
    ],
    [{ name: '__Host-sid', domain: 'example.com' }, /__Host- name only/],
    [{ name: '__Secure-sid', secure: false }, /"session.cookie.name": expected a __Secure- name only with secure: true/],
    [{ path: 'app' }, /"session.cookie.path": expected a path starting with '\/'/],
    [{ path: '/a;b' }, /"session.cookie.path"/],
    [{ domain: 'exa mple.com' }, /"session.cookie.domain": expected a host name/],
  ])('reject the cookie %o at startup', (cookie, message) => {
    expect(() => resolveSessionOptions({ cookie: { secret, ...cookie } })).toThrow(message);
  });

  it('accept a __Host- cookie with its required attributes, and timeouts beyond 24 days', () => {
    const resolved = resolveSessionOptions({ idleTtl: '30d', absoluteTtl: '90d', cookie: { secret, name: '__Host-sid' } });
    expect(resolved).toMatchObject({
      idleTtlMs: 30 * 86_400_000,
      absoluteTtlMs: 90 * 86_400_000,
      cookie: { name: '__Host-sid', secure: true, path: '/', domain: undefined },
    });
  });

  it('fail at startup when the touch interval is not shorter than the idle timeout', async () => {
    await expect(
      startContext({ connection: topologies[0].connection(), keyPrefix: uniquePrefix(), session: { idleTtl: '1m', touchInterval: '2m' } }),
    ).rejects.toThrow(/"session.touchInterval": expected less than session.idleTtl/);
  });
});
