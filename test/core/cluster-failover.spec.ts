import type { INestApplicationContext } from '@nestjs/common';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, RedisScript } from '../../lib/index.js';
import { command, RedisClusterServers, waitFor } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

const addToBoth = RedisScript.fromFile(new URL('./fixtures/add-to-both.lua', import.meta.url));

async function roleOf(port: number): Promise<string> {
  return (await command(port, 'ROLE').catch(() => 'down')).split('\r\n')[2] ?? 'down';
}

describe('a cluster with replicas, when a master fails', () => {
  let servers: RedisClusterServers;
  let app: INestApplicationContext;
  beforeAll(async () => {
    servers = await RedisClusterServers.start({ masters: 3, replicasPerMaster: 1 });
    app = await startContext({ connection: { cluster: { nodes: servers.nodes } }, reconnect: { minDelay: '20ms', maxDelay: '200ms' } });
  });
  afterAll(async () => {
    await app.close();
    await servers.destroy();
  });

  it('keeps serving after the replica takes over, and re-sends scripts the new master never saw', async () => {
    const cluster = app.get(RedisConnections).get() as Cluster;
    const keys = app.get(RedisKeys);
    const pairs = Array.from({ length: 30 }, (_, i) => [keys.tagged(['failover', i], 'a'), keys.tagged(['failover', i], 'b')]);
    for (const pair of pairs) await addToBoth.run(cluster, pair, [1]);
    await Promise.all(cluster.nodes('master').map((node) => node.call('WAIT', '1', '500')));

    const roles = await Promise.all(servers.servers.map((server) => roleOf(server.port)));
    const victim = servers.servers[roles.indexOf('master')];
    const replicas = servers.servers.filter((_, i) => roles[i] === 'slave');
    await victim.stop();

    let promotedPort: number | undefined;
    const findPromoted = async () => {
      const replicaRoles = await Promise.all(replicas.map((replica) => roleOf(replica.port)));
      return replicas[replicaRoles.indexOf('master')]?.port;
    };
    await waitFor(async () => (promotedPort = await findPromoted()) !== undefined, 'a replica to be promoted', 90_000);
    await waitFor(async () => (await Promise.all(pairs.map((pair) => cluster.get(pair[0]).catch(() => null)))).every((value) => value === '1'), 'every key to be readable', 90_000);

    // The promoted replica has the data but not the script: the first EVALSHA there gets NOSCRIPT.
    expect(await command(promotedPort!, `SCRIPT EXISTS ${addToBoth.sha1}`)).toBe('*1\r\n:0\r\n');
    for (const pair of pairs) expect(await addToBoth.run(cluster, pair, [1])).toEqual([2, 2]);
    expect(await command(promotedPort!, `SCRIPT EXISTS ${addToBoth.sha1}`)).toBe('*1\r\n:1\r\n');
  }, 240_000);
});
