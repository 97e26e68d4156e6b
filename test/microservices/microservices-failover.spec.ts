import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, StreamService } from '../../lib/index.js';
import { RedisTestCluster, waitForReplica } from '../support/redis-server.js';
import { uniquePrefix } from '../support/testing-app.js';
import { startServiceApp, type ServiceApp } from './microservices-app.js';

const EVENTS = 300;

describe('RedisStreamsServer and RedisStreamsClient across a Cluster failover (3 masters with a replica each, of their own)', () => {
  let cluster: RedisTestCluster;
  let service: ServiceApp;
  beforeAll(async () => {
    cluster = await RedisTestCluster.start({ masters: 3, replicasPerMaster: 1 });
    service = await startServiceApp(
      { cluster: { nodes: cluster.nodes } },
      {
        keyPrefix: uniquePrefix(),
        moduleOptions: { commandTimeout: '500ms', reconnect: { minDelay: '20ms', maxDelay: '200ms' } },
        server: { claimIdle: '1s' },
      },
    );
  }, 120_000);
  afterAll(async () => {
    await service?.close();
    await cluster?.destroy();
  });

  it('the master of the stream killed with SIGKILL mid-handling: every replicated event handled after the replica takes over', async () => {
    const { client, seen, app } = service;
    for (let n = 0; n < EVENTS; n++) await lastValueFrom(client.emit('observed', n));
    const streamKey = app.get(RedisKeys).tagged(['stream', 'ms:observed']);
    const victim = await masterOf(cluster, calculateSlot(streamKey));
    // What the stream holds is on the replica too, as a failover expects.
    expect(await waitForReplica(victim.port)).toBe(1);
    await expect.poll(() => seen.events.length, { timeout: 10_000, interval: 10 }).toBeGreaterThanOrEqual(20);
    await victim.kill();
    const handledAtKill = seen.events.length;
    const handled = () => new Set(seen.events.map((event) => event.data)).size;
    await expect.poll(handled, { timeout: 40_000, interval: 100 }).toBe(EVENTS);
    const streams = app.get(StreamService);
    await expect.poll(async () => (await streams.groupBacklog('ms:observed', 'math')).pending, { timeout: 10_000 }).toBe(0);
    expect(handledAtKill).toBeLessThan(EVENTS);
    await expect.poll(() => firstValueFrom(client.send({ cmd: 'sum' }, [1, 2, 3])).catch(() => 'failed'), { timeout: 10_000 }).toBe(6);
    console.log(
      `[microservices failover] ${EVENTS} events, ${handledAtKill} handled when the master died, ${seen.events.length - EVENTS} handled twice, 0 lost`,
    );
  }, 90_000);
});

async function masterOf(cluster: RedisTestCluster, slot: number) {
  const probe = new Redis({ ...cluster.servers[0].address, lazyConnect: true });
  try {
    const ranges = (await probe.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const port = ranges.find(([from, to]) => slot >= from && slot <= to)![2][1];
    return cluster.servers.find((server) => server.port === port)!;
  } finally {
    probe.disconnect();
  }
}
