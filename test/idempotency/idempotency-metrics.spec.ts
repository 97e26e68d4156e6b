import type { INestApplicationContext } from '@nestjs/common';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IdempotencyService, RedisConnections, RedisKeys } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

/** The value of each series of `name` in Prometheus text, by its labels as written (`{a="b"}`). */
function series(text: string, name: string): Record<string, number> {
  const found: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match) found[match[1] ?? ''] = Number(match[2]);
  }
  return found;
}

describe.each(topologies)('idempotency metrics on $topology', ({ connection }) => {
  const registry = new Registry();
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), metrics: { prometheus: { registry } } });
  });
  afterAll(() => app?.close());

  it('counts how requests with a key began and how the ones that ran ended', async () => {
    const service = app.get(IdempotencyService);
    await service.run('m1', 'f', () => 1);
    await service.run('m1', 'f', () => 1);
    await expect(service.run('m1', 'other', () => 1)).rejects.toMatchObject({ status: 422 });
    await expect(service.run('m2', 'f', () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    const held = await service.begin('m3', 'f');
    await expect(service.begin('m3', 'f')).rejects.toMatchObject({ status: 409 });
    await app
      .get(RedisConnections)
      .get()
      .del(app.get(RedisKeys).tagged(['idem', 'm3']));
    if (held.outcome === 'run') await held.claim.complete({ status: undefined, headers: [], body: Buffer.from('1') });

    const text = await registry.metrics();
    expect(series(text, 'redis_patterns_idempotency_requests_total')).toEqual({
      '{outcome="executed"}': 3,
      '{outcome="replayed"}': 1,
      '{outcome="mismatch"}': 1,
      '{outcome="in-progress"}': 1,
    });
    expect(series(text, 'redis_patterns_idempotency_claims_ended_total')).toEqual({
      '{end="stored"}': 1,
      '{end="released"}': 1,
      '{end="lost"}': 1,
    });
  });
});
