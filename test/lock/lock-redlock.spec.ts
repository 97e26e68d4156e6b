import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LockNotAcquiredError, LockService, WithLock } from '../../lib/index.js';
import { command, RedisTestServer } from '../support/redis-server.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { startContext } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

@Injectable()
class Guarded {
  runs = 0;

  @WithLock({ key: 'guarded', ttl: '2s' })
  async run(): Promise<void> {
    this.runs++;
  }
}

describe('Redlock over three independent servers', () => {
  let servers: RedisTestServer[];
  let instances: INestApplicationContext[];
  beforeAll(async () => {
    servers = await Promise.all([1, 2, 3].map(() => RedisTestServer.start()));
    const options = {
      connection: servers[0].address,
      connections: { lockA: servers[0].address, lockB: servers[1].address, lockC: servers[2].address },
      lock: { redlock: { connections: ['lockA', 'lockB', 'lockC'] } },
      connectTimeout: '300ms',
      commandTimeout: '300ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    } as const;
    const keyPrefix = `redlock${Date.now()}:`;
    instances = await Promise.all([1, 2].map(() => startContext({ ...options, keyPrefix }, { providers: [Guarded] })));
  });
  afterAll(async () => {
    await Promise.all(instances.map((app) => app.close()));
    await Promise.all(servers.map((server) => server.destroy()));
  });

  it('excludes across instances, with increasing fencing tokens, holding the key on every server', async () => {
    const [a, b] = instances.map((app) => app.get(LockService));
    const lock = await a.acquire('shared', { ttl: '5s' });
    expect(await b.tryAcquire('shared')).toBeNull();
    const held = await Promise.all(servers.map((server) => command(server.port, `EXISTS ${keyPrefixOf(instances[0])}lock:{shared}`)));
    expect(held).toEqual([':1\r\n', ':1\r\n', ':1\r\n']);
    await lock.release();
    const next = await b.acquire('shared');
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
    await next.release();
  });

  it("keeps fencing tokens growing when the servers' fences drifted apart", async () => {
    const locks = instances[0].get(LockService);
    const fence = `${keyPrefixOf(instances[0])}fence:{drift}`;
    // Failed attempts raised the first server's fence alone.
    expect(await command(servers[0].port, `SET ${fence} 5`)).toBe('+OK\r\n');
    // With the third server down, the majority must be the first two: token 6.
    await servers[2].stop();
    let first;
    try {
      first = await locks.acquire('drift');
      expect(first.fencingToken).toBe(6);
      await first.release();
    } finally {
      await servers[2].start();
    }
    await sleep(300); // the client reconnects
    // Now without the first server: the second (raised to 6) and the third must go on from 6.
    await servers[0].stop();
    try {
      const second = await locks.acquire('drift', { wait: '5s' });
      expect(second.fencingToken).toBe(7);
      await second.release();
    } finally {
      await servers[0].start();
    }
    await sleep(300);
  });

  it('decides at a majority without waiting for a server that does not answer', async () => {
    await command(servers[2].port, 'CLIENT PAUSE 1500 ALL');
    // A 250ms lease: waiting out the stalled server (commandTimeout 300ms) would leave no validity.
    const lock = await instances[1].get(LockService).acquire('stalled', { ttl: '250ms' });
    expect(lock.fencingToken).toBeGreaterThan(0);
    await lock.release();
    await sleep(1_600);
  });

  it("still acquires with one of three servers down, and fails clearly (store-unavailable) with two down, logging each server's outage once", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const locks = instances[0].get(LockService);
    // Every server answers, a second after the last failure: the outages of the tests above are over.
    await (await locks.acquire('all-up')).release();
    await servers[2].stop();
    try {
      for (let i = 0; i < 3; i++) {
        const lock = await locks.acquire('one-down');
        expect(lock.fencingToken).toBeGreaterThan(0);
        await lock.release();
      }
      const outages = () =>
        warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('unavailable to locks'));
      expect(outages()).toEqual([
        'Redis connection "lockC" is unavailable to locks (no connection to the server); this server grants no locks and its releases wait until it is back',
      ]);

      await servers[1].stop();
      const guarded = instances[0].get(Guarded);
      const error = await guarded.run().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(LockNotAcquiredError);
      expect(error).toMatchObject({ reason: 'store-unavailable', keys: ['guarded'] });
      // Never run unlocked.
      expect(guarded.runs).toBe(0);
      // The one server still up does not keep a stray grant: a grant that answers after the
      // decision is given back in the background (the decision does not wait for it).
      await expect.poll(() => command(servers[0].port, `EXISTS ${keyPrefixOf(instances[0])}lock:{guarded}`)).toBe(':0\r\n');
      expect(outages()).toHaveLength(2);
      expect(outages()[1]).toMatch(/^Redis connection "lockB" is unavailable to locks \(/);
    } finally {
      await Promise.all([servers[1].start(), servers[2].start()]);
    }
    await sleep(300); // the clients reconnect
    const guarded = instances[0].get(Guarded);
    await expect
      .poll(
        async () =>
          await guarded.run().then(
            () => 'ran',
            () => 'not yet',
          ),
        { timeout: 10_000, interval: 100 },
      )
      .toBe('ran');
    vi.restoreAllMocks();
  });
});

describe('a lock when its Redis restarts or is down', () => {
  const own = ownRedisServer();

  it('marks a held lock lost (aborting its signal) when the server restarts without its key', async () => {
    const app = await startContext({
      connection: own.server.address,
      commandTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    const lock = await app.get(LockService).acquire('restart', { ttl: '900ms', autoExtend: true });
    const aborted = new Promise<void>((resolve) => lock.signal.addEventListener('abort', () => resolve()));
    await own.server.stop();
    await own.server.start();
    await aborted;
    expect(lock.lost).toBe(true);
    await app.close();
  });

  it('fails with store-unavailable, promptly, while Redis is down', async () => {
    const app = await startContext({
      connection: own.server.address,
      commandTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
    });
    await own.server.stop();
    try {
      const error = await app
        .get(LockService)
        .acquire('down', { wait: '5s' })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(LockNotAcquiredError);
      expect(error).toMatchObject({ reason: 'store-unavailable' });
      expect((error as LockNotAcquiredError).waitedMs).toBeLessThan(5_000);
    } finally {
      await own.server.start();
      await app.close();
    }
  });
});

function keyPrefixOf(app: INestApplicationContext): string {
  return (app.get(LockService) as unknown as { keys: { prefix: string } }).keys.prefix;
}
