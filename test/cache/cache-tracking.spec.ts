import { Logger } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { CacheService, InvalidOptionError, type CacheOptions } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { startContext } from '../support/testing-app.js';
import { clusterStateOk, waitFor } from '../support/redis-server.js';
import { allSee, primed, storedEntry, trackedInstances, TRACKING, type OwnTopology } from './near-cache.js';

/** The ids of the library's tracking connections on a server. */
async function trackingClients(node: Redis): Promise<string[]> {
  const list = (await node.client('LIST')) as string;
  return [...list.matchAll(/^id=(\d+) .* name=\S*:tracking /gm)].map((match) => match[1]);
}

describe.each(['standalone', 'cluster'] as const)('L1 kept honest by Redis (client tracking) on %s', (topology) => {
  const own = trackedInstances(topology);
  const key = (name: string) => own.key(name);

  it('a SET, DEL, EXPIRE or expiry by a plain client reaches the L1 of every instance, one in a child process', async () => {
    const cache = own.instances.apps[0].get(CacheService);
    await cache.set('set-elsewhere', 'v1');
    await primed(own.instances.all, 'set-elsewhere', 'v1');
    await own.redis.plain.set(key('set-elsewhere'), storedEntry('v2'));
    await allSee(own.instances.all, 'set-elsewhere', 'v2');

    await own.redis.plain.del(key('set-elsewhere'));
    await allSee(own.instances.all, 'set-elsewhere', undefined);

    // EXPIRE changes no value, yet drops the L1 copies: the next read of each instance goes to Redis.
    await cache.set('expire-elsewhere', 'kept');
    await primed(own.instances.all, 'expire-elsewhere', 'kept');
    await own.redis.plain.expire(key('expire-elsewhere'), 600);
    for (const instance of own.instances.all) await expect.poll(async () => (await instance.peek('expire-elsewhere')).fromL1).toBe(false);

    // An entry Redis expires by itself (its L1 copy would live a minute).
    await own.redis.plain.set(key('expires'), storedEntry('short-lived'), 'PX', 3_000);
    await primed(own.instances.all, 'expires', 'short-lived');
    await allSee(own.instances.all, 'expires', undefined);
  });

  it('FLUSHDB drops every entry from every L1', async () => {
    const cache = own.instances.apps[0].get(CacheService);
    const names = Array.from({ length: 12 }, (_, i) => `flushed-${i}`);
    for (const name of names) await cache.set(name, name);
    for (const name of names) await primed(own.instances.all, name, name);
    for (const master of own.redis.masters()) await master.flushdb();
    for (const name of names) await allSee(own.instances.all, name, undefined);
  });

  it('an entry evicted under maxmemory leaves every L1', async () => {
    const cache = own.instances.apps[0].get(CacheService);
    await cache.set('evicted', 'v1');
    await primed(own.instances.all, 'evicted', 'v1');
    const owner = ownerOf(own.redis, key('evicted'));
    const used = Number(/used_memory:(\d+)/.exec(await owner.info('memory'))![1]);
    await owner.config('SET', 'maxmemory-policy', 'allkeys-random');
    await owner.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024));
    try {
      // Fillers in the entry's slot, so on a Cluster they land on its master.
      const filler = 'x'.repeat(64 * 1024);
      for (let i = 0; (await owner.exists(key('evicted'))) === 1; i++) {
        expect(i, 'the entry to be evicted').toBeLessThan(5_000);
        await owner.set(`${key('evicted')}:filler:${i}`, filler).catch(() => undefined);
      }
      expect(Number(/evicted_keys:(\d+)/.exec(await owner.info('stats'))![1])).toBeGreaterThan(0);
    } finally {
      await owner.config('SET', 'maxmemory', '0');
    }
    await allSee(own.instances.all, 'evicted', undefined);
  });

  it('a killed tracking connection never lets a stale value through: a write made while it is down is not served from L1', async () => {
    const cache = own.instances.apps[0].get(CacheService);
    await cache.set('while-down', 'v1');
    await primed(own.instances.all, 'while-down', 'v1');
    const owner = ownerOf(own.redis, key('while-down'));
    const killed = await trackingClients(owner);
    expect(killed).toHaveLength(3); // one per instance
    for (const id of killed) await owner.client('KILL', 'ID', id);
    // Made after the kill: Redis has no connection left to report it to. Each instance learnt of
    // the kill (the connection's close reached it before the write's reply reached this test), so
    // even its first read after the write goes to Redis.
    await own.redis.plain.set(key('while-down'), storedEntry('v2'));
    for (const instance of own.instances.all) expect(await instance.peek('while-down')).toEqual({ value: 'v2', fromL1: false });
    // Tracking comes back on new connections, L1 fills again and hears the next write.
    await expect.poll(() => trackingClients(owner), { timeout: 10_000 }).toHaveLength(3);
    await primed(own.instances.all, 'while-down', 'v2');
    for (const instance of own.instances.all) expect((await instance.peek('while-down')).value).toBe('v2');
    await own.redis.plain.set(key('while-down'), storedEntry('v3'));
    await allSee(own.instances.all, 'while-down', 'v3');
  });

  it('a dropped data connection costs L1 nothing: it keeps its entries and still hears every write', async () => {
    const cache = own.instances.apps[0].get(CacheService);
    await cache.set('data-dropped', 'v1');
    await primed(own.instances.all, 'data-dropped', 'v1');
    const flushes = await Promise.all(own.instances.all.map((instance) => instance.flushes()));
    // Every normal connection (the instances' data connections); the tracking ones are pub/sub.
    for (const master of own.redis.masters()) await master.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    for (const instance of own.instances.all) await expect.poll(() => instance.peek('data-dropped')).toEqual({ value: 'v1', fromL1: true });
    expect(await Promise.all(own.instances.all.map((instance) => instance.flushes()))).toEqual(flushes);
    await own.redis.plain.set(key('data-dropped'), storedEntry('v2'));
    await allSee(own.instances.all, 'data-dropped', 'v2');
  });
});

describe('L1 kept honest by Redis when a Cluster master fails', () => {
  const own = trackedInstances('cluster', 1);
  const key = (name: string) => own.key(name);

  it('after a master is killed and its replica takes over, tracking is on the new master, and only its L1 entries were dropped', async () => {
    const cache = own.instances.apps[0].get(CacheService);
    const plain = own.redis.plain as Cluster;
    const names = Array.from({ length: 30 }, (_, i) => `failover-${i}`);
    for (const name of names) await cache.set(name, name);
    for (const name of names) await primed(own.instances.all, name, name);
    const victimAddress = plain.slots[calculateSlot(key(names[0]))][0];
    const victim = own.redis.cluster!.servers.find((server) => `${server.host}:${server.port}` === victimAddress)!;
    const elsewhere = names.find((name) => plain.slots[calculateSlot(key(name))][0] !== victimAddress)!;

    await victim.kill();
    const survivors = own.redis.cluster!.servers.filter((server) => server !== victim);
    await waitFor(
      async () => (await Promise.all(survivors.map((server) => clusterStateOk(server.port)))).every(Boolean),
      'the replica to take over',
      90_000,
    );
    const written = () =>
      plain.set(key(names[0]), storedEntry('after-failover')).then(
        () => true,
        () => false,
      );
    await waitFor(written, 'the new master to take writes', 30_000);
    // Written on the new master: every L1 drops the old value.
    await allSee(own.instances.all, names[0], 'after-failover');
    // The entries of the other masters stayed (the failover dropped only the failed master's).
    for (const instance of own.instances.all) expect(await instance.peek(elsewhere)).toEqual({ value: elsewhere, fromL1: true });
    // The new master is tracked: L1 fills with its entries again and hears their next write.
    await primed(own.instances.all, names[0], 'after-failover');
    await plain.set(key(names[0]), storedEntry('second-write'));
    await allSee(own.instances.all, names[0], 'second-write');
  }, 240_000);
});

/** A client to the master that holds `key` (the server itself when standalone). */
function ownerOf(redis: OwnTopology, key: string): Redis {
  if (!(redis.plain instanceof Cluster)) return redis.plain;
  const address = redis.plain.slots[calculateSlot(key)][0];
  return redis.masters().find((node) => `${node.options.host}:${node.options.port}` === address)!;
}

describe('L1 tracking that Redis refuses (an ACL without CLIENT TRACKING)', () => {
  const own = ownRedisServer();

  it('keeps no L1 entries, logs it once, and turns on once Redis allows it', async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const log = vi.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const admin = new Redis(own.server.address);
    await admin.acl('SETUSER', 'app', 'on', '>secret', '~*', '&*', '+@all', '-client|tracking');
    const app = await startContext({
      connection: { ...own.server.address, username: 'app', password: 'secret' },
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
      cache: TRACKING,
    });
    const cache = app.get(CacheService);
    const refusals = () => error.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('client tracking'));
    await expect
      .poll(refusals)
      .toEqual([
        expect.stringMatching(/^L1 keeps no entries of the Redis server: Redis refused client tracking \(NOPERM .*\); it needs Redis 6/),
      ]);
    await cache.set('refused', 'v1');
    for (let i = 0; i < 5; i++) expect(await peekOf(cache, 'refused')).toEqual({ value: 'v1', fromL1: false });

    await admin.acl('SETUSER', 'app', '+client|tracking');
    await expect.poll(() => peekOf(cache, 'refused'), { timeout: 15_000 }).toEqual({ value: 'v1', fromL1: true });
    expect(log.mock.calls.map(([message]) => String(message))).toContain(
      'L1 keeps entries of the Redis server again: its changes are tracked',
    );
    expect(refusals()).toHaveLength(1); // however many retries it took
    await app.close();
    admin.disconnect();
    vi.restoreAllMocks();
  });
});

describe('cache.l1.invalidation and cache.l1.heartbeat options', () => {
  const failure = (cache: CacheOptions) =>
    startContext({ connection: { host: '127.0.0.1', port: 1 }, cache }).then(
      () => undefined,
      (caught: unknown) => caught as Error,
    );

  it("accept 'bus' or 'tracking', and a positive heartbeat", async () => {
    const wrongMode = await failure({ l1: { invalidation: 'push' as never } });
    expect(wrongMode).toBeInstanceOf(InvalidOptionError);
    expect(wrongMode?.message).toBe('Invalid option "cache.l1.invalidation": expected \'bus\' or \'tracking\', got "push".');
    expect((await failure({ l1: { heartbeat: 0 } }))?.message).toMatch(/^Invalid option "cache.l1.heartbeat": /);
  });

  it('refuse a bus transport beside tracking: there is no bus then', async () => {
    const error = await failure({ invalidation: 'stream', l1: { invalidation: 'tracking' } });
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error?.message).toBe(
      'Invalid option "cache.invalidation": expected no value with cache.l1.invalidation \'tracking\' (Redis reports the changes: there is no bus), got "stream".',
    );
  });
});

async function peekOf(cache: CacheService, key: string): Promise<{ value: unknown; fromL1: boolean }> {
  const hits = cache.stats().l1.hits;
  const value = await cache.get(key, { l1: true });
  return { value, fromL1: cache.stats().l1.hits > hits };
}
