import type { INestApplicationContext } from '@nestjs/common';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import calculateSlot from 'cluster-key-slot';
import { CommandInFlightLostError, RedisConnections, RedisKeys, RedisScript } from '../../lib/index.js';
import { command, RedisTestCluster, waitFor, waitForReplica } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';

const addToBoth = RedisScript.fromFile(new URL('./fixtures/add-to-both.lua', import.meta.url));

async function roleOf(port: number): Promise<string> {
  return (await command(port, 'ROLE').catch(() => 'down')).split('\r\n')[2] ?? 'down';
}

/** The port of the replica of the master on `port`. */
async function replicaOf(port: number): Promise<number> {
  const info = await command(port, 'INFO replication');
  return Number(/slave0:ip=[^,]+,port=(\d+)/.exec(info)![1]);
}

describe('a cluster with replicas, when a master fails', () => {
  let servers: RedisTestCluster;
  let app: INestApplicationContext;
  beforeAll(async () => {
    servers = await RedisTestCluster.start({ masters: 3, replicasPerMaster: 1 });
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
    await Promise.all(cluster.nodes('master').map((node) => waitForReplica(node.options.port!)));

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
    await waitFor(
      async () => (await Promise.all(pairs.map((pair) => cluster.get(pair[0]).catch(() => null)))).every((value) => value === '1'),
      'every key to be readable',
      90_000,
    );

    // The promoted replica has the data but not the script: the first EVALSHA there gets NOSCRIPT.
    expect(await command(promotedPort!, `SCRIPT EXISTS ${addToBoth.sha1}`)).toBe('*1\r\n:0\r\n');
    for (const pair of pairs) expect(await addToBoth.run(cluster, pair, [1])).toEqual([2, 2]);
    expect(await command(promotedPort!, `SCRIPT EXISTS ${addToBoth.sha1}`)).toBe('*1\r\n:1\r\n');
  }, 240_000);

  it('never sends a command again when its master died with it in flight (it may have run there)', async () => {
    const cluster = app.get(RedisConnections).get() as Cluster;
    // A key on a master that still has a replica (the first test's promoted replica has none).
    const ownerOf = (key: string) =>
      cluster.nodes('master').find((node) => node.options.port === Number(cluster.slots[calculateSlot(key)]![0].split(':')[1]))!;
    let key = '';
    for (let i = 0; !key; i++) {
      const candidate = app.get(RedisKeys).key('in-flight', i);
      if ((await command(ownerOf(candidate).options.port!, 'INFO replication')).includes('connected_slaves:1')) key = candidate;
    }
    await cluster.set(key, '0');
    const owner = ownerOf(key);
    // WAIT on a connection of its own: it may block longer than the module's commandTimeout.
    expect(await waitForReplica(owner.options.port!)).toBe(1);
    const victim = servers.servers.find((server) => server.port === owner.options.port)!;
    const replica = await replicaOf(victim.port);
    // Writes wait on the paused master: the INCR is written to it, but not run, when it dies.
    await command(victim.port, 'CLIENT PAUSE 10000 WRITE');
    const incr = cluster.incr(key).then(
      () => 'ran',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    await victim.kill();
    expect(await incr).toBeInstanceOf(CommandInFlightLostError);
    await waitFor(async () => (await roleOf(replica)) === 'master', 'the replica to take over', 90_000);
    await waitFor(async () => (await cluster.get(key).catch(() => null)) !== null, 'the key to be readable again', 90_000);
    // Not re-sent to the new master: ioredis on its own would have run the INCR there.
    expect(await cluster.get(key)).toBe('0');
  }, 240_000);
});
