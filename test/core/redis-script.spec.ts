import type { INestApplicationContext } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrossSlotError, RedisConnections, RedisKeys, RedisScript } from '../../lib/index.js';
import { ownRedisSetups, type OwnRedis } from '../support/own-redis.js';
import { clusterConnection, startContext } from '../support/testing-app.js';

const addToBoth = RedisScript.fromFile(new URL('./fixtures/add-to-both.lua', import.meta.url));

// SCRIPT FLUSH would pull the scripts from under the suites that share the test servers: this one has its own.
describe.each(ownRedisSetups([]))('RedisScript on $topology', ({ topology, start }) => {
  let own: OwnRedis;
  let app: INestApplicationContext;
  let connections: RedisConnections;
  let keys: RedisKeys;
  beforeAll(async () => {
    own = await start();
    app = await startContext({ connection: own.connection });
    connections = app.get(RedisConnections);
    keys = app.get(RedisKeys);
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await own?.destroy();
  });

  const flushScripts = async () => {
    const client = connections.get();
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    await Promise.all(nodes.map((node) => node.script('FLUSH')));
  };

  it('is loaded from its .lua file and named after it', () => {
    expect(addToBoth.name).toBe('add-to-both');
    expect(addToBoth.sha1).toMatch(/^[0-9a-f]{40}$/);
  });

  it('runs with keys and arguments, and works again after SCRIPT FLUSH on every node', async () => {
    // Keys under several tags, so on the cluster the calls reach every master.
    const pairs = Array.from({ length: 12 }, (_, i) => [keys.tagged(['script', i], 'a'), keys.tagged(['script', i], 'b')]);
    for (const pair of pairs) expect(await addToBoth.run(connections.get(), pair, [2])).toEqual([2, 2]);
    await flushScripts();
    for (const pair of pairs) expect(await addToBoth.run(connections.get(), pair, [3])).toEqual([5, 5]);
    // EVAL loaded it again on every node that the keys reach (all three masters of the cluster).
    const client = connections.get();
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    expect(nodes).toHaveLength(topology === 'cluster' ? 3 : 1);
    for (const node of nodes) expect(await node.script('EXISTS', addToBoth.sha1)).toEqual([1]);
  });

  it('passes arguments as ARGV, never as Lua source', async () => {
    const key = keys.tagged('inject', 'x');
    const hostile = "1) redis.call('FLUSHALL') --";
    await expect(addToBoth.run(connections.get(), [key, keys.tagged('inject', 'y')], [hostile])).rejects.toThrow(/not an integer/);
    expect(await connections.get().exists(key)).toBe(0);
  });
});

describe('RedisScript on a cluster', () => {
  let app: INestApplicationContext;
  let connections: RedisConnections;
  let keys: RedisKeys;
  beforeAll(async () => {
    app = await startContext({ connection: clusterConnection() });
    connections = app.get(RedisConnections);
    keys = app.get(RedisKeys);
  });
  afterAll(() => app.close());

  it('rejects keys in different slots before sending anything, naming them', async () => {
    const a = keys.key('unrelated', 'a');
    const b = keys.key('unrelated', 'b');
    const error = await addToBoth.run(connections.get(), [a, b], [1]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CrossSlotError);
    expect((error as CrossSlotError).keys).toEqual([a, b]);
    expect((error as Error).message).toContain(`Script "add-to-both" was called with keys in different cluster slots (${a}, ${b})`);
    expect([await connections.get().exists(a), await connections.get().exists(b)]).toEqual([0, 0]);
  });
});
