import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { LockLostError, LockNotAcquiredError, LockService, RedisKeys, type Lock } from '../../lib/index.js';
import { command, RedisTestServer, waitFor } from '../support/redis-server.js';
import { QUICK_OUTAGES, startContext } from '../support/testing-app.js';
import { Observers, ownRedisSetups, type OwnRedis } from '../support/own-redis.js';

/** Keys with one hash tag: on a Cluster, one master holds them all, and stopping it takes them all away. */
const READ_KEY = '{rw-outage}:catalog';
const WRITE_KEY = '{rw-outage}:prices';

/** Servers that keep their data over a restart (AOF), so a lease taken before an outage is still there after it. */
describe.each(ownRedisSetups(['--appendonly', 'yes']))('a read-write lock while Redis is down, on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplicationContext;
  let locks: LockService;
  const observers = new Observers();
  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, ...QUICK_OUTAGES });
    locks = app.get(LockService);
  });
  afterAll(async () => {
    await app?.close();
    observers.close();
    await redis?.destroy();
  });
  afterEach(() => vi.restoreAllMocks());
  const serverOfKeys = () => redis.serverOf(`${app.get(RedisKeys).prefix}rwlock:r:t:${READ_KEY}`);
  /**
   * Takes `side` of the lock on `key` once Redis serves the app again (a Cluster may refuse for a
   * moment after its master came back, and an outage fails an acquisition at once).
   */
  const onceBack = async (key: string, side: 'read' | 'write') => {
    let lock: Lock | null = null;
    await waitFor(
      async () =>
        (lock = await locks
          .readWrite(key)
          [side].tryAcquire()
          .catch(() => null)) !== null,
      'a grant',
      20_000,
    );
    return lock!;
  };

  it("fails both sides with 'store-unavailable' (503), tells holders through their signal, and logs the outage once with the locks'", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const server = await serverOfKeys();
    const reader = await locks.readWrite(READ_KEY).read.acquire({ ttl: '600ms', autoExtend: true });
    const writer = await locks.readWrite(WRITE_KEY).write.acquire({ ttl: '600ms', autoExtend: true });
    const lost = [reader, writer].map(
      (lock) => new Promise<unknown>((resolve) => lock.signal.addEventListener('abort', () => resolve(lock.signal.reason))),
    );
    await server.stop();
    try {
      for (const side of ['read', 'write'] as const) {
        const error = await locks
          .readWrite(`${READ_KEY}:${side}`)
          [side].acquire({ wait: '1s' })
          .catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(LockNotAcquiredError);
        expect(error).toMatchObject({ reason: 'store-unavailable' });
        expect((error as LockNotAcquiredError).getStatus()).toBe(503);
        // tryAcquire does not hide an outage as "busy".
        await expect(locks.readWrite(READ_KEY)[side].tryAcquire()).rejects.toMatchObject({ reason: 'store-unavailable' });
      }
      await expect(locks.acquire('{rw-outage}:plain')).rejects.toMatchObject({ reason: 'store-unavailable' });
      // Renewals fail until the lease runs out: then the holders learn it.
      for (const reason of await Promise.all(lost)) {
        expect(reason).toBeInstanceOf(LockLostError);
        expect((reason as Error).message).toMatch(/its lease ran out/);
      }
      expect([reader.lost, writer.lost]).toEqual([true, true]);
    } finally {
      await server.start();
    }
    const again = await onceBack(READ_KEY, 'write');
    await again.release();
    const outages = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('unavailable to locks'));
    expect(outages).toHaveLength(1);
    expect(outages[0]).toMatch(
      /^Redis connection "default" is unavailable to locks \(.+\); locks are not granted \(LockNotAcquiredError, 503\)/,
    );
  }, 60_000);

  it('gives back a reader released while Redis was down as soon as it is back, not at the end of its lease', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const server = await serverOfKeys();
    const key = `${READ_KEY}:released`;
    const reader = await locks.readWrite(key).read.acquire({ ttl: '60s' });
    const kept = `${app.get(RedisKeys).prefix}{rw-outage}:kept`;
    // After the previous test's restart, a Cluster may take a moment to serve the slot again.
    await waitFor(
      async () =>
        (await observers
          .of(server)
          .set(kept, 'yes')
          .catch(() => null)) === 'OK',
      'the server to take writes',
      20_000,
    );
    await server.stop();
    expect(await reader.release()).toBe(false);
    await server.start();
    // The server kept its data (and the reader's lease) over its restart: only the retried release
    // removes the lease, long before its 60 s are over.
    await waitFor(
      async () =>
        (await observers
          .of(server)
          .get(kept)
          .catch(() => null)) === 'yes',
      'the data to be back',
      20_000,
    );
    const writer = await onceBack(key, 'write');
    expect(writer.fencingToken).toBeGreaterThan(reader.fencingToken);
    expect(await observers.of(server).exists(`${app.get(RedisKeys).prefix}rwlock:r:t:${key}`)).toBe(0);
    await writer.release();
  }, 60_000);
});

describe('a read-write lock in an app whose locks use Redlock', () => {
  let main: RedisTestServer;
  let quorum: RedisTestServer[];
  let app: INestApplicationContext;
  beforeAll(async () => {
    [main, ...quorum] = await Promise.all([1, 2, 3, 4].map(() => RedisTestServer.start()));
    app = await startContext({
      connection: main.address,
      connections: { lockA: quorum[0].address, lockB: quorum[1].address, lockC: quorum[2].address },
      lock: { redlock: { connections: ['lockA', 'lockB', 'lockC'] } },
    });
  });
  afterAll(async () => {
    await app?.close();
    await Promise.all([main, ...quorum].map((server) => server?.destroy()));
  });

  it('runs on the main connection (no quorum), while plain locks go to the Redlock servers', async () => {
    const locks = app.get(LockService);
    const { prefix } = app.get(RedisKeys);
    const writer = await locks.readWrite('report').write.acquire();
    const plain = await locks.acquire('report');
    const where = (key: string) => Promise.all([main, ...quorum].map((server) => command(server.port, `EXISTS ${key}`)));
    expect(await where(`${prefix}rwlock:w:{report}`)).toEqual([':1\r\n', ':0\r\n', ':0\r\n', ':0\r\n']);
    expect(await where(`${prefix}lock:{report}`)).toEqual([':0\r\n', ':1\r\n', ':1\r\n', ':1\r\n']);
    await Promise.all([writer.release(), plain.release()]);
  });
});
