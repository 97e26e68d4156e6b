import type { INestApplicationContext } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { CacheService, PubSubService, type CacheOptions, type RedisConnectionOptions } from '../../lib/index.js';
import { sleep } from '../support/redis-server.js';
import { StallProxy } from '../support/stall-proxy.js';
import { aclUser } from '../support/acl-user.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

const HEARTBEAT_MS = 200;
const modes: { mode: string; cache: CacheOptions }[] = [
  { mode: 'the bus', cache: { l1: { ttl: '1m', heartbeat: HEARTBEAT_MS } } },
  { mode: 'tracking', cache: { l1: { ttl: '1m', heartbeat: HEARTBEAT_MS, invalidation: 'tracking' } } },
];

/** Proxies in front of the shared servers, and the connection options of an instance that goes through them. */
async function throughProxies(topology: string): Promise<{ proxies: StallProxy[]; connection: RedisConnectionOptions }> {
  const { standalone, cluster } = inject('redis');
  if (topology === 'standalone') {
    const proxy = await StallProxy.start(standalone);
    return { proxies: [proxy], connection: proxy.address };
  }
  const proxies = await Promise.all(cluster.map((node) => StallProxy.start(node)));
  // The Cluster announces its nodes' own addresses: map each to its proxy.
  const natMap = Object.fromEntries(cluster.map((node, i) => [`${node.host}:${node.port}`, proxies[i].address]));
  return { proxies, connection: { cluster: { nodes: proxies.map((proxy) => proxy.address), options: { natMap } } } };
}

/** Reads `key` with L1: the value, and whether L1 answered. */
async function peek(cache: CacheService, key: string): Promise<{ value: unknown; fromL1: boolean }> {
  const hits = cache.stats().l1.hits;
  const value = await cache.get(key, { l1: true });
  return { value, fromL1: cache.stats().l1.hits > hits };
}

describe.each(topologies)('L1 when its invalidations stall, on $topology', ({ topology, connection }) => {
  describe.each(modes)('with $mode', ({ cache: cacheOptions }) => {
    const keyPrefix = uniquePrefix();
    let writer: INestApplicationContext;
    let stalled: INestApplicationContext;
    let proxies: StallProxy[];
    beforeAll(async () => {
      vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const proxied = await throughProxies(topology);
      proxies = proxied.proxies;
      [writer, stalled] = await Promise.all([
        startContext({ connection: connection(), keyPrefix, cache: cacheOptions }),
        startContext({ connection: proxied.connection, keyPrefix, cache: cacheOptions }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([writer?.close(), stalled?.close()]);
      await Promise.all(proxies.map((proxy) => proxy.close()));
      vi.restoreAllMocks();
    });

    it('stops answering from L1 once its heartbeat is overdue during a stall, and serves no stale value when it resumes', async () => {
      const [a, b] = [writer.get(CacheService), stalled.get(CacheService)];
      await a.set('stalled', 'v1');
      await expect.poll(() => peek(b, 'stalled')).toEqual({ value: 'v1', fromL1: true });
      expect(proxies.reduce((sum, proxy) => sum + proxy.subscribers, 0)).toBeGreaterThan(0);

      for (const proxy of proxies) proxy.stallSubscribers();
      await a.set('stalled', 'v2');
      // The invalidation is held back; L1 stops answering once its heartbeat is overdue, so the read goes to Redis.
      await expect.poll(() => b.get('stalled', { l1: true }), { timeout: 10_000 }).toBe('v2');
      // L1 may hold v2 now if something else dropped v1 (a reconnect clears L1) while the last
      // delivery check still held: two heartbeats on, that check is overdue whatever happened.
      await sleep(2 * HEARTBEAT_MS);
      for (let i = 0; i < 5; i++) expect(await peek(b, 'stalled')).toEqual({ value: 'v2', fromL1: false });

      for (const proxy of proxies) proxy.resume();
      expect(await b.get('stalled', { l1: true })).toBe('v2');
      // Delivery confirmed again: L1 answers again, with the new value.
      await expect.poll(() => peek(b, 'stalled'), { timeout: 10_000 }).toEqual({ value: 'v2', fromL1: true });
    });
  });
});

describe.each(topologies)('the bus on $topology, when a message is missed', ({ connection }) => {
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix: uniquePrefix(), cache: { l1: { ttl: '1m' } } });
  });
  afterAll(() => app.close());

  it('clears L1 when a publisher skips a number, and only then', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const cache = app.get(CacheService);
    const pubsub = app.get(PubSubService);
    await cache.set('kept', 'v1', { l1: true });
    await expect.poll(() => peek(cache, 'kept')).toEqual({ value: 'v1', fromL1: true });
    const flushes = cache.stats().l1.flushes;

    // Another instance's messages 1 and 2 arrive: nothing was missed.
    await pubsub.publish('cache:invalidate', { from: 'another-instance', seq: 1, keys: ['unrelated'] });
    await pubsub.publish('cache:invalidate', { from: 'another-instance', seq: 2 });
    await expect.poll(() => peek(cache, 'kept')).toEqual({ value: 'v1', fromL1: true });
    expect(cache.stats().l1.flushes).toBe(flushes);

    // Its message 3 never came: 4 shows it, and L1 is cleared.
    await pubsub.publish('cache:invalidate', { from: 'another-instance', seq: 4 });
    await expect.poll(() => cache.stats().l1.flushes).toBe(flushes + 1);
    expect(await peek(cache, 'kept')).toEqual({ value: 'v1', fromL1: false });
    vi.restoreAllMocks();
  });
});

describe.each(topologies)('the bus on $topology, when its subscription fails', ({ topology, connection }) => {
  const acl = aclUser(topology, 'bus');

  it('subscribes again once Redis lets it, and L1 turns on then', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    // A user who may run any command but use no channel: SUBSCRIBE (and PUBLISH) fail with NOPERM.
    await acl.set('reset', 'on', '~*', 'resetchannels', '+@all');
    const denied = acl.connection(connection());
    const keyPrefix = uniquePrefix();
    const cacheOptions: CacheOptions = { l1: { ttl: '1m', heartbeat: HEARTBEAT_MS } };
    const [writer, app] = await Promise.all([
      startContext({ connection: connection(), keyPrefix, cache: cacheOptions }),
      startContext({ connection: denied, keyPrefix, cache: cacheOptions }),
    ]);
    try {
      const [a, b] = [writer.get(CacheService), app.get(CacheService)];
      await a.set('denied', 'v1');
      await expect.poll(() => warn.mock.calls.some(([message]) => String(message).startsWith('L1 stays off'))).toBe(true);
      for (let i = 0; i < 3; i++) expect(await peek(b, 'denied')).toEqual({ value: 'v1', fromL1: false });

      await acl.set('allchannels');
      await expect.poll(() => peek(b, 'denied'), { timeout: 15_000 }).toEqual({ value: 'v1', fromL1: true });
      // It hears the other instance's writes: its copy is dropped.
      await a.set('denied', 'v2');
      await expect.poll(() => b.get('denied', { l1: true })).toBe('v2');
    } finally {
      await Promise.all([writer.close(), app.close()]);
      vi.restoreAllMocks();
    }
  });
});
