import type { INestApplicationContext } from '@nestjs/common';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BloomFilterService,
  PubSubService,
  QueueService,
  RedisConnections,
  RedisKeys,
  SessionService,
  StreamService,
} from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

/** Every series of a metric in Prometheus text, by its labels as written (`{a="b"}`, or '' for none). */
function series(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match) found.set(match[1] ?? '', Number(match[2]));
  }
  return found;
}

describe.each(topologies)('feature metrics on $topology', ({ connection }) => {
  const registry = new Registry();
  let app: INestApplicationContext;
  const metric = async (name: string, labels = '') => series(await registry.metrics(), `redis_patterns_${name}`).get(labels);
  beforeAll(async () => {
    app = await startContext({ connection: connection(), metrics: { prometheus: { registry }, commands: true } });
  });
  afterAll(() => app?.close());

  it('counts pub/sub messages out and in', async () => {
    const pubsub = app.get(PubSubService);
    // Sessions publish their events too (the next test): this one runs first, and counts from here.
    const [outBefore, inBefore] = [
      (await metric('pubsub_messages_total', '{direction="out"}')) ?? 0,
      (await metric('pubsub_messages_total', '{direction="in"}')) ?? 0,
    ];
    const received: number[] = [];
    const subscription = pubsub.subscribe<number>('metrics-channel').subscribe((n) => received.push(n));
    let published = 0;
    // Published until the subscription is in place (one receiver), then twice more.
    await expect.poll(async () => (published++, await pubsub.publish('metrics-channel', published))).toBe(1);
    for (let more = 0; more < 2; more++) await pubsub.publish('metrics-channel', ++published);
    await expect.poll(() => received.length).toBeGreaterThanOrEqual(3);
    subscription.unsubscribe();
    expect(await metric('pubsub_messages_total', '{direction="out"}')).toBe(outBefore + published);
    expect(await metric('pubsub_messages_total', '{direction="in"}')).toBe(inBefore + received.length);
  });

  it('counts sessions created, regenerated and destroyed', async () => {
    const sessions = app.get(SessionService);
    const session = await sessions.create('metrics-user', {});
    const renewed = await sessions.regenerate(session.id);
    await sessions.destroy(renewed!.id);
    expect(await metric('session_events_total', '{event="created"}')).toBe(1);
    expect(await metric('session_events_total', '{event="regenerated"}')).toBe(1);
    expect(await metric('session_events_total', '{event="destroyed"}')).toBe(1);
    // Live sessions per user, as each starts: a second session of one user is a 2.
    await sessions.create('metrics-user', {});
    await sessions.create('metrics-user', {});
    expect(await metric('sessions_per_user_count')).toBe(3);
    expect(await metric('sessions_per_user_bucket', '{le="1"}')).toBe(2);
    expect(await metric('sessions_per_user_bucket', '{le="2"}')).toBe(3);
  });

  it('counts stream entries handled, failed and dead-lettered, by stream', async () => {
    const streams = app.get(StreamService);
    for (const n of [1, 2, 3]) await streams.add('metrics-stream', { n });
    const consumer = await streams.consume<{ n: number }>(
      'metrics-stream',
      'g',
      ({ n }) => {
        if (n === 2) throw new Error('poison');
      },
      { block: '50ms', claimIdle: '1ms', maxDeliveries: 2 },
    );
    await expect
      .poll(() => metric('stream_entries_total', '{stream="metrics-stream",outcome="dead-lettered"}'), { timeout: 10_000 })
      .toBe(1);
    await consumer.stop();
    expect(await metric('stream_entries_total', '{stream="metrics-stream",outcome="handled"}')).toBe(2);
    expect(await metric('stream_entries_total', '{stream="metrics-stream",outcome="failed"}')).toBe(2);
    // The backlog, read in the background at each collection: nothing pending, one dead letter,
    // then the 4 entries added while no consumer reads.
    for (let n = 0; n < 4; n++) await streams.add('metrics-stream', { n });
    const labels = '{stream="metrics-stream",group="g"}';
    await expect.poll(() => metric('stream_lag', labels)).toBe(4);
    expect(await metric('stream_pending', labels)).toBe(0);
    expect(await metric('stream_dead_letters', '{stream="metrics-stream"}')).toBe(1);
  });

  it('counts queue jobs added (not an id already there), completed, retried and dead', async () => {
    const queue = app.get(QueueService).queue<string>('metrics-queue');
    await queue.add('ok', { jobId: 'one' });
    await queue.add('ok', { jobId: 'one' });
    await queue.add('bad');
    const worker = queue.process(
      (payload) => {
        if (payload === 'bad') throw new Error('always');
      },
      { block: '50ms', maxAttempts: 2, backoff: { type: 'fixed', delay: '10ms' } },
    );
    await expect.poll(() => metric('queue_jobs_total', '{queue="metrics-queue",outcome="dead"}'), { timeout: 10_000 }).toBe(1);
    await worker.stop();
    expect(await metric('queue_jobs_total', '{queue="metrics-queue",outcome="added"}')).toBe(2);
    expect(await metric('queue_jobs_total', '{queue="metrics-queue",outcome="completed"}')).toBe(1);
    expect(await metric('queue_jobs_total', '{queue="metrics-queue",outcome="retried"}')).toBe(1);
  });

  it('counts Bloom filter checks by filter and result', async () => {
    const filter = app.get(BloomFilterService).filter('metrics-filter', { capacity: 1_000, errorRate: 0.001 });
    expect(await filter.rebuild(['a', 'b'])).toBe(true);
    expect(await filter.mightContainMany(['a', 'b', 'never-added'])).toEqual([true, true, false]);
    expect(await metric('bloom_checks_total', '{filter="metrics-filter",result="maybe"}')).toBe(2);
    expect(await metric('bloom_checks_total', '{filter="metrics-filter",result="absent"}')).toBe(1);
  });

  it('reports the connection up, times its commands, and counts their errors by kind (with metrics.commands)', async () => {
    const redis = app.get(RedisConnections).get();
    const key = app.get(RedisKeys).key('metrics-string');
    const errorsBefore = (await metric('redis_command_errors_total', '{connection="default",kind="error"}')) ?? 0;
    await redis.set(key, 'x');
    await expect(redis.lpush(key, 'y')).rejects.toThrow(/^WRONGTYPE/);
    expect(await metric('redis_connection_up', '{connection="default"}')).toBe(1);
    expect(await metric('redis_command_errors_total', '{connection="default",kind="error"}')).toBe(errorsBefore + 1);
    expect(await metric('redis_command_duration_seconds_count', '{connection="default"}')).toBeGreaterThanOrEqual(2);
  });
});

describe('command metrics', () => {
  it('are left out unless metrics.commands is on: no per-command reaction, no series', async () => {
    const registry = new Registry();
    const app = await startContext({ connection: topologies[0].connection(), metrics: { prometheus: { registry } } });
    const redis = app.get(RedisConnections).get();
    await redis.set(app.get(RedisKeys).key('no-command-metrics'), 'x');
    const text = await registry.metrics();
    expect(text).not.toContain('redis_command_duration_seconds');
    expect(text).not.toMatch(/^redis_patterns_redis_command_errors_total\{/m);
    expect(text).toMatch(/^redis_patterns_redis_connection_up\{connection="default"\} 1$/m);
    await app.close();
  });
});
