import type { INestApplicationContext } from '@nestjs/common';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisConnections, RedisInsightsService, type RedisNodeSnapshot } from '../../lib/index.js';
import { ownSentinelServers } from '../support/own-redis-server.js';
import { command, RedisTestCluster, waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

describe('RedisInsightsService on a Cluster with replicas', () => {
  let servers: RedisTestCluster;
  let app: INestApplicationContext;
  let insights: RedisInsightsService;
  beforeAll(async () => {
    servers = await RedisTestCluster.start({ masters: 3, replicasPerMaster: 1 });
    // Redis 7 lists a replica in CLUSTER SLOTS, where ioredis learns of it when it connects, once
    // the replica has replicated something.
    const seeder = new Cluster(servers.nodes);
    for (let i = 0; i < 30; i++) await seeder.set(`seed:${i}`, 'x');
    seeder.disconnect();
    // ioredis reads CLUSTER SLOTS from one node at startup (and not again unless redirected): wait
    // until every node lists all six, whichever it asks.
    const listed = async (port: number) => (await command(port, 'CLUSTER SLOTS')).split('127.0.0.1').length - 1;
    const everyNodeListsSix = async () =>
      (await Promise.all(servers.servers.map(({ port }) => listed(port)))).every((count) => count === 6);
    await waitFor(everyNodeListsSix, 'CLUSTER SLOTS of every node to list the replicas');
    app = await startContext({ connection: { cluster: { nodes: servers.nodes } } });
    insights = app.get(RedisInsightsService);
    // ioredis connects to the replicas it learns of in the background.
    await vi.waitFor(() => expect((app.get(RedisConnections).get() as Cluster).nodes('slave')).toHaveLength(3), { timeout: 10_000 });
  });
  afterAll(async () => {
    await app?.close();
    await servers?.destroy();
  });

  it('reads the masters only, unless asked for the replicas too, which come after them', async () => {
    const roles = (nodes: RedisNodeSnapshot[]) => nodes.map((node) => node.role);
    const masters = (await insights.snapshot()).nodes as RedisNodeSnapshot[];
    expect(roles(masters)).toEqual(['master', 'master', 'master']);
    const all = (await insights.snapshot({ replicas: true })).nodes as RedisNodeSnapshot[];
    expect(roles(all)).toEqual(['master', 'master', 'master', 'replica', 'replica', 'replica']);
    expect(all.map((node) => node.node).sort()).toEqual(servers.nodes.map(({ host, port }) => `${host}:${port}`).sort());
    for (const replica of all.slice(3)) expect(replica.memory.usedBytes).toBeGreaterThan(0);
    expect((await insights.slowlog(1, { replicas: true })).nodes).toHaveLength(6);
  });

  it('still answers when a replica is down: it is left out (ioredis forgets it) or unavailable, never a failure', async () => {
    const all = (await insights.snapshot({ replicas: true })).nodes;
    const victim = servers.servers.find((server) => `${server.host}:${server.port}` === all[3].node)!;
    await victim.stop();
    const snapshot = await insights.snapshot({ replicas: true });
    const read = snapshot.nodes.filter((node): node is RedisNodeSnapshot => node.available);
    expect(read.map((node) => node.role)).toEqual(['master', 'master', 'master', 'replica', 'replica']);
    expect(read.map((node) => node.node)).not.toContain(all[3].node);
    for (const node of snapshot.nodes) if (!node.available) expect(node.reason).toMatch(/^unreachable: /);
  });
});

describe('RedisInsightsService through Sentinel', () => {
  const own = ownSentinelServers();

  it('names the master it is connected to, not the Sentinel', async () => {
    const app = await startContext({ connection: own.connection() });
    const { nodes } = await app.get(RedisInsightsService).snapshot();
    const { host, port } = own.servers.master;
    expect(nodes).toEqual([expect.objectContaining({ node: `${host}:${port}`, available: true, role: 'master' })]);
    await app.close();
  });
});
