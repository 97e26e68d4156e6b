import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeOutage, LockService, RedisConnections, RedisKeys } from '../../lib/index.js';
import { RedisTestServer, waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';
import { Observers, ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { RedisLink } from './redis-link.js';

const persistence = ['--appendonly', 'yes'];
const quickReconnect = { commandTimeout: '1s', reconnect: { minDelay: '20ms', maxDelay: '100ms' } } as const;
const observers = new Observers();
const observe = (server: RedisTestServer) => observers.of(server);

/** Servers that keep their data over a restart (AOF), so a lock taken before an outage is still there after it. */
describe.each(ownRedisSetups(persistence))('a lock released while its Redis is down, on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplicationContext;
  let locks: LockService;
  let lockKey: (key: string) => string;
  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, ...quickReconnect });
    locks = app.get(LockService);
    lockKey = (key) => `${app.get(RedisKeys).prefix}lock:{${key}}`;
  });
  afterAll(async () => {
    await app?.close();
    observers.close();
    await redis?.destroy();
  });
  afterEach(() => vi.restoreAllMocks());

  it('keeps its data over a restart (so the next test shows the retried release)', async () => {
    const server = await redis.serverOf('kept');
    await observe(server).set('kept', 'yes');
    await server.stop();
    await server.start();
    await waitFor(
      async () =>
        (await observe(server)
          .get('kept')
          .catch(() => null)) === 'yes',
      'the key to be back after the restart',
      10_000,
    );
    await waitFor(async () => app.get(RedisConnections).get().status === 'ready', 'the app to be connected again');
  });

  it("is released as soon as Redis is back, not at the end of its lease, and the outage is logged once in the library's words", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const server = await redis.serverOf(lockKey('report'));
    const lock = await locks.acquire('report', { ttl: '30s' });
    await server.stop();
    expect(await lock.release()).toBe(false);
    await expect(locks.acquire('report')).rejects.toMatchObject({ reason: 'store-unavailable' });
    await server.start();
    const back = performance.now();
    // The server kept the key over its restart: only the retried release removes it.
    await expect.poll(() => observe(server).exists(lockKey('report')), { timeout: 10_000, interval: 20 }).toBe(0);
    const next = await locks.acquire('report');
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
    // Well before the 30 s lease would have run out.
    expect(performance.now() - back).toBeLessThan(10_000);
    await next.release();

    const messages = warn.mock.calls.map(([message]) => String(message));
    const outages = messages.filter((message) => message.includes('unavailable to locks'));
    expect(outages).toHaveLength(1);
    const kinds = (['disconnected', 'timeout', 'failover'] as const).map(
      (kind) =>
        `Redis connection "default" is unavailable to locks (${describeOutage(kind)}); locks are not granted (LockNotAcquiredError, 503) and releases wait until it is back`,
    );
    expect(kinds).toContain(outages[0]);
    expect(messages.filter((message) => message.includes('Could not release'))).toEqual([]);
  }, 60_000);
});

describe('a lock released while Redis cannot be reached, taken by someone else before the app is back', () => {
  let server: RedisTestServer;
  let link: RedisLink;
  beforeAll(async () => {
    server = await RedisTestServer.start();
    link = await RedisLink.open(server.address);
  });
  afterAll(async () => {
    await link?.cut();
    await server?.destroy();
  });

  it('is never removed by the retried release: it checks the token', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    // The app reaches Redis through a link the test cuts: it is back only once the test restores it.
    const app = await startContext({ connection: link.address, ...quickReconnect });
    const client = app.get(RedisConnections).get();
    const key = `${app.get(RedisKeys).prefix}lock:{taken}`;
    const lock = await app.get(LockService).acquire('taken', { ttl: '10m' });
    const observer = observe(server);
    try {
      await link.cut();
      await waitFor(async () => client.status !== 'ready', 'the app to notice it lost Redis');
      expect(await lock.release()).toBe(false);
      // The key was still there: the release never reached Redis, and is not retried yet.
      expect(await observer.set(key, 'someone-else', 'PX', 600_000, 'GET')).toMatch(/^[0-9a-f]{32}$/);
      await observer.config('RESETSTAT');
      await link.restore();
      // The app runs no script but the retried release.
      const scripts = async () => /^cmdstat_eval(sha)?:calls=[1-9]/m.test(await observer.info('commandstats'));
      await waitFor(scripts, 'the release to be tried again', 30_000);
      expect(client.status).toBe('ready');
      expect(await observer.get(key)).toBe('someone-else');
    } finally {
      observers.close();
      await app.close();
      vi.restoreAllMocks();
    }
  }, 60_000);
});
