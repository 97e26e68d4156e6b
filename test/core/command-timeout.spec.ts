import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandTimeoutError, REDIS_CLIENT } from '../../lib/index.js';
import { command, RedisTestCluster } from '../support/redis-server.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { startContext } from '../support/testing-app.js';

/** Makes the server hold every reply for `ms` (CLIENT PAUSE ALL): commands reach it but go unanswered. */
async function pause(port: number, ms: number): Promise<void> {
  expect(await command(port, `CLIENT PAUSE ${ms} ALL`)).toBe('+OK\r\n');
}

/** A full garbage collection, as `--expose-gc`'s `gc()` does (the flag is set for this process only). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Settles with the command's error, or with its reply when it got one. */
function outcome(reply: Promise<unknown>): Promise<unknown> {
  return reply.then(
    (value) => ({ reply: value }),
    (error: unknown) => error,
  );
}

/**
 * Sends a SET of a megabyte and, behind it, a command unanswered for a second; once the SET is
 * answered, the next command sent lets it go from the deadline queue: its value is collected.
 */
async function expectAnsweredCommandsLetGo(client: Redis | Cluster): Promise<void> {
  const { written, blocked } = await (async () => {
    const value = Buffer.alloc(1 << 20, 1);
    const stored = client.set('{held}:large', value);
    const waiting = client.blpop('{held}:nothing-comes', 1);
    await stored;
    return { written: new WeakRef(value), blocked: waiting };
  })();
  const after = client.strlen('{held}:large');
  await new Promise((resolve) => setTimeout(resolve, 50));
  collectGarbage();
  expect(written.deref()).toBeUndefined();
  expect(await blocked).toBeNull();
  expect(await after).toBe(1 << 20);
}

describe('commandTimeout on a server that does not answer', () => {
  const own = ownRedisServer();

  it('fails the command with a CommandTimeoutError naming the command and the timeout, then works again', async () => {
    const app = await startContext({ connection: own.server.address, commandTimeout: '200ms' });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await redis.set('answered', 'yes');
    await pause(own.server.port, 1_500);

    const [read, write] = await Promise.all([outcome(redis.get('answered')), outcome(redis.set('during', '1'))]);
    expect(read).toBeInstanceOf(CommandTimeoutError);
    expect(read).toMatchObject({
      command: 'get',
      timeoutMs: 200,
      message: 'Redis command GET got no reply within the commandTimeout of 200ms.',
    });
    expect(write).toMatchObject({ command: 'set', timeoutMs: 200 });

    await expect.poll(() => redis.get('answered').catch(() => 'paused'), { timeout: 5_000, interval: 100 }).toBe('yes');
    // Like ioredis's own timeout, a timed-out command is not withdrawn: the server ran it after the pause.
    expect(await redis.get('during')).toBe('1');
    await app.close();
  });

  it('answers every command that gets its reply in time, however many are in flight', async () => {
    const app = await startContext({ connection: own.server.address, commandTimeout: '1s' });
    const redis = app.get<Redis>(REDIS_CLIENT);
    const replies = await Promise.all(Array.from({ length: 5_000 }, (_, i) => redis.incr(`count:${i % 10}`)));
    expect(replies.filter((reply) => reply === 500)).toHaveLength(10);
    await app.close();
  });

  it('holds no answered command while later ones wait for their replies', async () => {
    const app = await startContext({ connection: own.server.address, commandTimeout: '5s' });
    await expectAnsweredCommandsLetGo(app.get<Redis>(REDIS_CLIENT));
    await app.close();
  });

  it('leaves a commandTimeout set in the ioredis options to ioredis', async () => {
    const { host, port } = own.server.address;
    const app = await startContext({ connection: { host, port, options: { commandTimeout: 150 } } });
    const redis = app.get<Redis>(REDIS_CLIENT);
    await pause(port, 1_000);
    const error = await outcome(redis.get('answered'));
    expect(error).not.toBeInstanceOf(CommandTimeoutError);
    expect(error).toMatchObject({ message: 'Command timed out' });
    await app.close();
  });
});

describe('commandTimeout on a cluster where one master does not answer', () => {
  let servers: RedisTestCluster;
  beforeAll(async () => {
    servers = await RedisTestCluster.start({ masters: 3 });
  });
  afterAll(() => servers?.destroy());

  it('holds no answered command while later ones wait for their replies', async () => {
    const app = await startContext({ connection: { cluster: { nodes: servers.nodes } }, commandTimeout: '5s' });
    await expectAnsweredCommandsLetGo(app.get<Cluster>(REDIS_CLIENT));
    await app.close();
  });

  it('fails only the commands sent to that master', async () => {
    const app = await startContext({ connection: { cluster: { nodes: servers.nodes } }, commandTimeout: '200ms' });
    const cluster = app.get<Cluster>(REDIS_CLIENT);
    // One key per master: find which master owns each.
    const slots = (await cluster.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const keyOf = new Map<number, string>();
    for (let i = 0; keyOf.size < 3; i++) {
      const key = `k${i}`;
      await cluster.set(key, key);
      const slot = Number(await cluster.call('CLUSTER', 'KEYSLOT', key));
      const owner = slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
      if (!keyOf.has(owner)) keyOf.set(owner, key);
    }
    const [pausedPort, pausedKey] = [...keyOf][0];
    await pause(pausedPort, 1_500);

    const outcomes = await Promise.all([...keyOf.values()].map((key) => outcome(cluster.get(key))));
    expect(outcomes[0]).toMatchObject({ command: 'get', timeoutMs: 200 });
    expect(outcomes.slice(1)).toEqual([...keyOf.values()].slice(1).map((key) => ({ reply: key })));
    await expect.poll(() => cluster.get(pausedKey).catch(() => 'paused'), { timeout: 5_000, interval: 100 }).toBe(pausedKey);
    await app.close();
  });

  it('never sends a command that already timed out, though the Cluster retries CLUSTERDOWN after a delay', async () => {
    const app = await startContext({ connection: { cluster: { nodes: servers.nodes } }, commandTimeout: '300ms' });
    const cluster = app.get<Cluster>(REDIS_CLIENT);
    const key = `retried-${Date.now()}`;
    const slot = Number(await cluster.call('CLUSTER', 'KEYSLOT', key));
    const slots = (await cluster.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const owner = slots.find(([from, to]) => slot >= from && slot <= to)![2][1];
    // The owner stops serving the slot: it answers CLUSTERDOWN, which ioredis retries every 100 ms.
    await command(owner, `CLUSTER DELSLOTS ${slot}`);
    expect(await outcome(cluster.incr(key))).toBeInstanceOf(CommandTimeoutError);
    await command(owner, `CLUSTER ADDSLOTS ${slot}`);
    // Retries still due would now run the INCR: long after its caller was told it failed.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await expect
      .poll(
        () =>
          cluster.get(key).then(
            () => 'served',
            () => 'not yet',
          ),
        { timeout: 10_000 },
      )
      .toBe('served');
    expect(await cluster.get(key)).toBeNull();
    await app.close();
  });

  it('bounds commands sent to one node of the Cluster too (a SCAN over every master)', async () => {
    const app = await startContext({ connection: { cluster: { nodes: servers.nodes } }, commandTimeout: '200ms' });
    const cluster = app.get<Cluster>(REDIS_CLIENT);
    await cluster.ping();
    const [paused, live] = cluster.nodes('master');
    await pause(paused.options.port!, 1_500);
    // Without a deadline of its own, the SCAN would wait for the pause to end, then succeed.
    expect(await outcome(paused.scan('0', 'COUNT', 10))).toMatchObject({ command: 'scan', timeoutMs: 200 });
    expect(await outcome(live.scan('0', 'COUNT', 10))).toMatchObject({ reply: [expect.any(String), expect.any(Array)] });
    await app.close();
  });
});
