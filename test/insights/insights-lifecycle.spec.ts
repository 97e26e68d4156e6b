import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RedisInsightsService, RedisUnavailableError } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { QUICK_OUTAGES, standaloneConnection, startContext } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the insights section', () => {
  afterEach(() => vi.restoreAllMocks());

  it('takes a snapshot of the watched connections every interval for the gauges, and stops when the app closes', async () => {
    const snapshots = vi.spyOn(RedisInsightsService.prototype, 'snapshot');
    const registry = new Registry();
    const app = await startContext({
      connection: standaloneConnection(),
      connections: { reports: standaloneConnection() },
      metrics: { prometheus: { registry } },
      insights: { interval: '1s', connections: ['reports'] },
    });
    // One at startup, then one a second.
    await expect.poll(() => snapshots.mock.calls.length, { timeout: 5_000, interval: 50 }).toBeGreaterThanOrEqual(2);
    expect(snapshots.mock.calls.every(([options]) => options?.connection === 'reports')).toBe(true);
    const text = await registry.metrics();
    expect(text).toMatch(/^redis_patterns_redis_memory_used_bytes\{connection="reports",node="127\.0\.0\.1:\d+"\} \d+$/m);
    // Only the watched connection has server gauges (every connection has its own connection metrics).
    expect(text).not.toMatch(/^redis_patterns_redis_(memory|ops|keyspace|connected|evicted|expired)[a-z_]*\{connection="default"/m);

    await app.close();
    const taken = snapshots.mock.calls.length;
    await sleep(1_500);
    expect(snapshots.mock.calls.length).toBe(taken);
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  it('without an interval, takes no snapshot until asked', async () => {
    const snapshots = vi.spyOn(RedisInsightsService.prototype, 'snapshot');
    const app = await startContext({ connection: standaloneConnection() });
    await sleep(200);
    expect(snapshots).not.toHaveBeenCalled();
    await app.close();
  });

  it.each([
    [{ interval: 500 }, 'Invalid option "insights.interval": expected false, or a duration of at least 1s, such as \'15s\', got 500.'],
    [{ interval: 'soon' }, 'Invalid option "insights.interval": expected a non-negative number of milliseconds'],
    [
      { connections: ['nope'] },
      'Invalid option "insights.connections[0]": expected an array of the module\'s connection names (default), got "nope".',
    ],
    [{ connections: [] }, 'Invalid option "insights.connections": expected an array of the module\'s connection names'],
    [{ health: 'yes' }, 'Invalid option "insights.health": expected true or false, got "yes".'],
    [{ every: '1s' }, 'Invalid option "insights.every": expected one of the known options (interval, connections, health)'],
  ])('refuses %j at startup, naming the option', async (insights, message) => {
    await expect(startContext({ connection: standaloneConnection(), insights: insights as never })).rejects.toThrow(message);
  });
});

describe('RedisInsightsService while Redis is unreachable', () => {
  const own = ownRedisServer();
  afterEach(() => vi.restoreAllMocks());

  it('rejects with RedisUnavailableError (503), logs the outage once, and answers again once Redis is back', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const app = await startContext({ connection: own.server.address, ...QUICK_OUTAGES });
    const insights = app.get(RedisInsightsService);
    await own.server.stop();
    for (const call of [() => insights.snapshot(), () => insights.slowlog(5), () => insights.bigKeys({ sample: 10 })]) {
      const error = await call().catch((failure: unknown) => failure);
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ statusCode: 503, feature: 'server insights', connection: 'default' });
    }
    expect(warn.mock.calls.filter(([message]) => String(message).includes('unavailable to server insights'))).toHaveLength(1);

    await own.server.start();
    await expect
      .poll(
        () =>
          insights.snapshot().then(
            (snapshot) => snapshot.nodes[0].available,
            () => false,
          ),
        { timeout: 10_000 },
      )
      .toBe(true);
    await app.close();
  });
});
