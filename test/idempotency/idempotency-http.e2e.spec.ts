import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys } from '../../lib/index.js';
import { topologies, uniquePrefix } from '../support/testing-app.js';
import { platforms, runs, send, startHttpApp, type Received } from './idempotency-app.js';

const TTL_MS = 3_600_000;
const LEASE_MS = 3_000;

describe.each(topologies)('@Idempotent over HTTP on $topology', ({ connection }) => {
  describe.each(platforms)('with $platform, two app instances', ({ adapter }) => {
    const keyPrefix = uniquePrefix();
    let apps: { app: INestApplication; url: string }[];
    beforeAll(async () => {
      apps = await Promise.all(
        [1, 2].map(() => startHttpApp(adapter(), { connection: connection(), keyPrefix, idempotency: { ttl: TTL_MS, lease: LEASE_MS } })),
      );
    });
    afterAll(() => Promise.all(apps.map(({ app }) => app.close())));

    const url = (instance: number, path = '') => `${apps[instance].url}/payments${path}`;
    const redis = () => apps[0].app.get(RedisConnections).get();
    const recordKey = (key: string, user?: string) =>
      apps[0].app.get(RedisKeys).tagged(user === undefined ? ['idem', key] : ['idem', user, key]);
    const runsOf = (handler: string) => runs.get(handler) ?? 0;
    const newKey = () => randomUUID();

    const expectReplayOf = (replay: Received, original: Received) => {
      expect(replay.status).toBe(original.status);
      expect(replay.bytes.equals(original.bytes)).toBe(true);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      for (const header of ['content-type', 'location', 'etag']) expect(replay.headers.get(header)).toBe(original.headers.get(header));
      expect(replay.headers.get('content-length')).toBe(String(original.bytes.length));
    };

    it('runs the handler once for concurrent duplicates on both instances: the others get 409 with Retry-After, or the replay', async () => {
      const key = newKey();
      const before = runsOf('create');
      const responses = await Promise.all(
        Array.from({ length: 10 }, (_, n) => send(url(n % 2), { key, body: { amount: 10, delayMs: 300 } })),
      );
      expect(runsOf('create') - before).toBe(1);
      const originals = responses.filter((response) => response.status === 201 && response.headers.get('idempotent-replayed') === null);
      expect(originals).toHaveLength(1);
      for (const response of responses.filter((candidate) => candidate !== originals[0])) {
        if (response.status === 409) {
          expect(response.headers.get('retry-after')).toBe('1');
          expect(response.json().message).toMatch(/still being processed/);
        } else expectReplayOf(response, originals[0]);
      }
      expect(responses.filter((response) => response.status === 409).length).toBeGreaterThan(0);
      // Afterwards, both instances replay it.
      for (const instance of [0, 1]) expectReplayOf(await send(url(instance), { key, body: { amount: 10, delayMs: 300 } }), originals[0]);
      expect(runsOf('create') - before).toBe(1);
    });

    it('replays status, body bytes and the chosen headers byte for byte, not the others; the record lives for the TTL', async () => {
      const key = newKey();
      const original = await send(url(0), { key, body: { amount: 25 } });
      expect(original.status).toBe(201);
      expect(original.json()).toMatchObject({ amount: 25, run: runsOf('create') });
      expect(original.headers.get('x-run')).toBe(String(runsOf('create')));
      const replay = await send(url(1), { key, body: { amount: 25 } });
      expectReplayOf(replay, original);
      expect(replay.headers.get('x-run')).toBeNull();

      const stored = await redis().hgetall(recordKey(key));
      expect(stored).toMatchObject({ state: 'done', status: '201', body: original.bytes.toString() });
      expect(stored.token).toBeUndefined();
      expect(
        JSON.parse(stored.headers)
          .map(([name]: [string]) => name)
          .sort(),
      ).toEqual(['content-type', 'etag', 'location']);
      const pttl = await redis().pttl(recordKey(key));
      expect(pttl).toBeGreaterThan(TTL_MS - 10_000);
      expect(pttl).toBeLessThanOrEqual(TTL_MS);
    });

    it('replays a text body with its content type, and an empty body, on PUT and PATCH', async () => {
      const key = newKey();
      const text = await send(url(0, '/text'), { method: 'PUT', key, body: { text: 'héllo' } });
      expect(text.status).toBe(200);
      expect(text.bytes.toString()).toMatch(/^héllo #\d+ /);
      expectReplayOf(await send(url(1, '/text'), { method: 'PUT', key, body: { text: 'héllo' } }), text);

      const before = runsOf('empty');
      const emptyKey = newKey();
      const empty = await send(url(0, '/empty'), { method: 'PATCH', key: emptyKey });
      expect([empty.status, empty.bytes.length]).toEqual([200, 0]);
      const again = await send(url(1, '/empty'), { method: 'PATCH', key: emptyKey });
      expect([again.status, again.bytes.length, again.headers.get('idempotent-replayed')]).toEqual([200, 0, 'true']);
      expect(runsOf('empty') - before).toBe(1);
    });

    it('replays the response of a handler that sends it itself (@Res())', async () => {
      const key = newKey();
      const before = runsOf('manual');
      const original = await send(url(0, '/manual'), { key });
      expect([original.status, original.json().run]).toEqual([202, before + 1]);
      expectReplayOf(await send(url(1, '/manual'), { key }), original);
      expect(runsOf('manual') - before).toBe(1);
    });

    it('answers 422 for the key with another body, path or method, and keeps keys of different users apart', async () => {
      const key = newKey();
      const original = await send(url(0), { key, body: { amount: 1 } });
      const before = runsOf('create');
      for (const other of [
        send(url(1), { key, body: { amount: 2 } }),
        send(url(1, '/required'), { key }),
        send(url(1, '/text'), { method: 'PUT', key, body: { amount: 1 } }),
        send(`${url(1)}?coupon=1`, { key, body: { amount: 1 } }),
      ]) {
        const response = await other;
        expect(response.status).toBe(422);
        expect(response.json().message).toMatch(/already used for a different request/);
      }
      expect(runsOf('create')).toBe(before);
      // The original still replays.
      expectReplayOf(await send(url(1), { key, body: { amount: 1 } }), original);

      // Keys are per user: ann's key is not bob's, nor the anonymous one.
      const ann = await send(url(0), { key, body: { amount: 1 }, headers: { 'x-user': 'ann' } });
      const bob = await send(url(1), { key, body: { amount: 1 }, headers: { 'x-user': 'bob' } });
      expect([ann.status, bob.status, ann.headers.get('idempotent-replayed'), bob.headers.get('idempotent-replayed')]).toEqual([
        201,
        201,
        null,
        null,
      ]);
      expect(runsOf('create') - before).toBe(2);
      expectReplayOf(await send(url(1), { key, body: { amount: 1 }, headers: { 'x-user': 'ann' } }), ann);
      expect(await redis().hget(recordKey(key, 'ann'), 'state')).toBe('done');
    });

    it('frees the key after a 5xx or a thrown error, so that a retry runs again', async () => {
      for (const [path, handler, status] of [
        ['/crash', 'crash', 500],
        ['/unavailable', 'unavailable', 503],
      ] as const) {
        const key = newKey();
        const before = runsOf(handler);
        expect((await send(url(0, path), { key })).status).toBe(status);
        expect(await redis().exists(recordKey(key))).toBe(0);
        const retry = await send(url(1, path), { key });
        expect([retry.status, retry.headers.get('idempotent-replayed')]).toEqual([status, null]);
        expect(runsOf(handler) - before).toBe(2);
      }
    });

    it('stores 4xx responses and replays them, unless storeClientErrors is false', async () => {
      const key = newKey();
      const before = runsOf('invalid');
      const original = await send(url(0, '/invalid'), { key });
      expect([original.status, original.json().message]).toEqual([400, `invalid payment, run ${before + 1}`]);
      expectReplayOf(await send(url(1, '/invalid'), { key }), original);
      expect(runsOf('invalid') - before).toBe(1);

      const missingKey = newKey();
      const missingBefore = runsOf('missing');
      expect((await send(url(0, '/missing'), { key: missingKey })).status).toBe(404);
      expect(await redis().exists(recordKey(missingKey))).toBe(0);
      const retry = await send(url(1, '/missing'), { key: missingKey });
      expect([retry.status, retry.json().message]).toEqual([404, `no such account, run ${missingBefore + 2}`]);
    });

    it('honours the TTL: once the record expires, the key runs again', async () => {
      const key = newKey();
      const first = (await send(url(0, '/short'), { key })).json().run;
      expect(await redis().pttl(recordKey(key))).toBeLessThanOrEqual(300);
      expect((await send(url(1, '/short'), { key })).json().run).toBe(first);
      await expect.poll(() => redis().exists(recordKey(key)), { timeout: 5_000, interval: 50 }).toBe(0);
      expect((await send(url(1, '/short'), { key })).json().run).toBe(first + 1);
    });

    it('answers 400 naming the header for a missing key where it is required, and for ill-formed keys', async () => {
      const missing = await send(url(0, '/required'));
      expect([missing.status, missing.json().message]).toEqual([400, expect.stringContaining('needs an Idempotency-Key header')]);
      const before = runsOf('create');
      for (const [key, reason] of [
        ['k'.repeat(256), 'at most 255 characters, got 256'],
        ['two words', 'printable ASCII'],
        ['""', 'at least 1 character'],
        ['"unclosed', 'closing quote'],
        [['a', 'b'], 'one key in one Idempotency-Key header, got several'],
      ] as const) {
        const response = await send(url(0), { key: key as string | string[], body: { amount: 1 } });
        expect([response.status, response.json().message]).toEqual([400, expect.stringContaining(reason)]);
        expect(response.json().message).toMatch(/^Invalid Idempotency-Key: /);
      }
      expect(runsOf('create')).toBe(before);
      // A quoted key (RFC 8941) is the same key as the bare one.
      const key = newKey();
      const bare = await send(url(0), { key, body: { amount: 3 } });
      expectReplayOf(await send(url(1), { key: `"${key}"`, body: { amount: 3 } }), bare);
    });

    it('applies @Idempotent() on a controller to its handlers, once per request where a handler has its own', async () => {
      const refunds = (instance: number, path = '') => `${apps[instance].url}/refunds${path}`;
      expect((await send(refunds(0))).status).toBe(400);
      const key = newKey();
      const before = runsOf('refund');
      const original = await send(refunds(0), { key });
      expect([original.status, original.json().run]).toEqual([201, before + 1]);
      expectReplayOf(await send(refunds(1), { key }), original);
      // The handler's own options win (no key needed), and its key is taken once, not by each of the two.
      expect((await send(refunds(0, '/optional'))).status).toBe(201);
      const optionalKey = newKey();
      const optional = await send(refunds(0, '/optional'), { key: optionalKey });
      expect([optional.status, optional.headers.get('idempotent-replayed')]).toEqual([201, null]);
      expectReplayOf(await send(refunds(1, '/optional'), { key: optionalKey }), optional);
    });

    it('runs requests without a key, GETs and over-large responses as usual', async () => {
      const before = runsOf('create');
      await send(url(0), { body: { amount: 1 } });
      await send(url(1), { body: { amount: 1 } });
      expect(runsOf('create') - before).toBe(2);
      const readsBefore = runsOf('read');
      expect((await send(url(0, '/read'), { method: 'GET' })).status).toBe(200);
      expect(runsOf('read') - readsBefore).toBe(1);

      // A body over maxResponseBytes (1 MiB) is sent whole but not stored: the key is freed.
      const key = newKey();
      const big = await send(url(0, '/big'), { key, body: { bytes: 1_100_000 } });
      expect([big.status, big.json().padding.length]).toEqual([201, 1_100_000]);
      expect(await redis().exists(recordKey(key))).toBe(0);
      expect((await send(url(1, '/big'), { key, body: { bytes: 1_100_000 } })).headers.get('idempotent-replayed')).toBeNull();
    });
  });
});
