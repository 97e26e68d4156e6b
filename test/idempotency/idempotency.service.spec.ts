import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IdempotencyConflictError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyReusedError,
  IdempotencyService,
  InvalidOptionError,
  RedisConnections,
  RedisKeys,
} from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

describe.each(topologies)('IdempotencyService on $topology, two app instances', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  beforeAll(async () => {
    apps = await Promise.all([1, 2].map(() => startContext({ connection: connection(), keyPrefix, idempotency: { lease: '2s' } })));
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  const service = (instance = 0) => apps[instance].get(IdempotencyService);
  const redis = () => apps[0].get(RedisConnections).get();
  const recordKey = (key: string, scope?: string) =>
    apps[0].get(RedisKeys).tagged(scope === undefined ? ['idem', key] : ['idem', scope, key]);

  it('runs a function once for concurrent calls on both instances; the others are refused (409) or get the value, decoded by the codec', async () => {
    const key = randomUUID();
    let calls = 0;
    const charge = async () => {
      calls++;
      await sleep(200);
      return { chargedAt: new Date('2026-12-01T10:00:00Z'), cents: 300n, note: undefined };
    };
    const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, n) => service(n % 2).run(key, '{"cents":300}', charge)));
    expect(calls).toBe(1);
    const values = settled.filter((result) => result.status === 'fulfilled').map((result) => result.value);
    expect(values.filter((result) => !result.replayed)).toHaveLength(1);
    for (const result of settled.filter((candidate) => candidate.status === 'rejected'))
      expect(result.reason).toMatchObject({ constructor: IdempotencyConflictError, key, retryAfterMs: 1000 });
    const replay = await service(1).run(key, '{"cents":300}', charge);
    expect(replay).toEqual({ value: { chargedAt: new Date('2026-12-01T10:00:00Z'), cents: 300n, note: undefined }, replayed: true });
    expect(replay.value.chargedAt).toBeInstanceOf(Date);
    expect(calls).toBe(1);
    const pttl = await redis().pttl(recordKey(key));
    expect(pttl).toBeGreaterThan(86_400_000 - 10_000);
    expect(pttl).toBeLessThanOrEqual(86_400_000);
  });

  it('frees the key when the function throws, so that a retry runs; a different fingerprint is refused with 422', async () => {
    const key = randomUUID();
    await expect(service(0).run(key, 'a', () => Promise.reject(new Error('provider down')))).rejects.toThrow('provider down');
    expect(await redis().exists(recordKey(key))).toBe(0);
    expect(await service(1).run(key, 'a', () => 'paid')).toEqual({ value: 'paid', replayed: false });
    const reused = service(0).run(key, 'b', () => 'other');
    await expect(reused).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
    await expect(reused).rejects.toMatchObject({ key, status: 422 });
    expect(await service(0).run(key, Buffer.from('a'), () => 'other')).toEqual({ value: 'paid', replayed: true });
  });

  it('keeps scopes apart, and honours a per-call ttl', async () => {
    const key = randomUUID();
    expect(await service(0).run(key, 'x', () => 'ann', { scope: 'ann', ttl: '2s' })).toEqual({ value: 'ann', replayed: false });
    expect(await service(1).run(key, 'x', () => 'bob', { scope: 'bob' })).toEqual({ value: 'bob', replayed: false });
    expect(await service(1).run(key, 'x', () => 'nobody')).toEqual({ value: 'nobody', replayed: false });
    expect(await service(0).run(key, 'x', () => 'again', { scope: 'ann' })).toEqual({ value: 'ann', replayed: true });
    const pttl = await redis().pttl(recordKey(key, 'ann'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(2_000);
  });

  it('stores nothing for a claim whose key was taken over after its lease: only the holder of the token stores', async () => {
    const key = randomUUID();
    const first = await service(0).begin(key, 'f');
    if (first.outcome !== 'run') throw new Error(`expected to run, got ${first.outcome}`);
    await expect(service(1).begin(key, 'f')).rejects.toBeInstanceOf(IdempotencyConflictError);
    // Its lease ran out (as after a long pause) and another request took the key over.
    await redis().del(recordKey(key));
    const second = await service(1).begin(key, 'f');
    if (second.outcome !== 'run') throw new Error(`expected to run, got ${second.outcome}`);
    expect(await first.claim.complete({ status: 201, headers: [['location', '/a']], body: Buffer.from('first') })).toBe('lost');
    expect(await first.claim.release()).toBe('lost');
    expect(await second.claim.complete({ status: 200, headers: [['etag', ['"2"']]], body: Buffer.from([0, 255, 1]) })).toBe('stored');
    expect(await service(0).begin(key, 'f')).toEqual({
      outcome: 'replay',
      record: { status: 200, headers: [['etag', ['"2"']]], body: Buffer.from([0, 255, 1]) },
    });
  });

  it('refuses bad keys and options with typed errors naming them', async () => {
    for (const [key, reason] of [
      ['', 'at least 1 character'],
      ['k'.repeat(256), 'at most 255 characters'],
      ['lone \ud800', 'well-formed Unicode'],
      [42, 'expected a string'],
    ] as const) {
      const run = service().run(key as string, 'f', () => 1);
      await expect(run).rejects.toBeInstanceOf(IdempotencyKeyInvalidError);
      await expect(run).rejects.toMatchObject({ argument: 'key', status: 400, message: expect.stringContaining(reason) });
    }
    await expect(service().run('k', 'f', () => 1, { ttl: '-1s' as never })).rejects.toMatchObject({
      constructor: InvalidOptionError,
      option: 'options.ttl',
    });
    await expect(service().run('k', 'f', () => 1, { wait: 1 } as never)).rejects.toMatchObject({ option: 'options.wait' });
    await expect(service().run('k', 'f', () => 1, { onStoreError: 'maybe' as never })).rejects.toMatchObject({
      option: 'options.onStoreError',
    });
    await expect(service().run('k', 'f', () => 1, { scope: '' })).rejects.toMatchObject({ argument: 'options.scope' });
    await expect(service().run('k', 42 as never, () => 1)).rejects.toMatchObject({
      constructor: InvalidOptionError,
      option: 'fingerprint',
    });
  });
});
