import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CodecError,
  CommandTimeoutError,
  CrossSlotError,
  InvalidOptionError,
  outageOf,
  RedisScript,
  RedisUnavailableError,
} from '../../lib/index.js';
import { RedisTestServer } from '../support/redis-server.js';

/** The error a promise rejects with. */
const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );

describe('outageOf tells Redis being away from bugs, on errors real servers and ioredis raise', () => {
  let redis: Redis;
  const cleanup: (() => Promise<unknown> | void)[] = [];
  beforeAll(() => {
    redis = new Redis({ ...inject('redis').standalone, lazyConnect: true });
  });
  afterAll(async () => {
    for (const step of cleanup.reverse()) await step();
    redis.disconnect();
  });

  it('a wrong type, a script error, an unknown command and a cross-slot call are bugs, not outages', async () => {
    await redis.lpush('store-failure:list', 'x');
    expect(outageOf(await failure(redis.get('store-failure:list')))).toBeUndefined();
    expect(outageOf(await failure(redis.eval("return redis.call('NOPE')", 0)))).toBeUndefined();
    expect(outageOf(await failure(redis.call('NOT-A-COMMAND')))).toBeUndefined();
    const [node] = inject('redis').cluster;
    const clusterNode = new Redis({ ...node, lazyConnect: true });
    cleanup.push(() => clusterNode.disconnect());
    const crossSlot = await failure(clusterNode.eval("return redis.call('MGET', KEYS[1], KEYS[2])", 2, 'a', 'b'));
    expect(String(crossSlot)).toMatch(/CROSSSLOT/);
    expect(outageOf(crossSlot)).toBeUndefined();
    expect(outageOf(new CrossSlotError('s', ['a', 'b']))).toBeUndefined();
    expect(outageOf(new CodecError('k', 'decode'))).toBeUndefined();
    expect(outageOf(new InvalidOptionError('key', 'a key', ''))).toBeUndefined();
    expect(outageOf('CLUSTERDOWN as a string, not an error')).toBeUndefined();
  });

  it('a stopped server, a refused connection and a command timeout are outages', async () => {
    const server = await RedisTestServer.start();
    cleanup.push(() => server.destroy());
    const client = new Redis({
      port: server.port,
      host: server.host,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => 50,
      commandTimeout: 200,
    });
    client.on('error', () => undefined);
    cleanup.push(() => client.disconnect());
    await new Promise((resolve) => client.once('ready', resolve));
    await client.call('CLIENT', 'PAUSE', '400', 'ALL');
    expect(outageOf(await failure(client.get('paused')))).toBe('timeout');
    expect(outageOf(new CommandTimeoutError('get', 200))).toBe('timeout');
    await server.stop();
    expect(outageOf(await failure(client.get('gone')))).toBe('disconnected');
    const refused = new Redis({ port: server.port, host: server.host, lazyConnect: true, retryStrategy: () => null });
    refused.on('error', () => undefined);
    expect(outageOf(await failure(refused.connect()))).toBe('disconnected');
  });

  it('a full server, a read-only replica and a loading server are outages of their kind', async () => {
    const full = await RedisTestServer.start({ args: ['--maxmemory', '1', '--maxmemory-policy', 'noeviction'] });
    const replica = await RedisTestServer.start({ args: ['--replicaof', full.host, String(full.port)] });
    cleanup.push(
      () => full.destroy(),
      () => replica.destroy(),
    );
    const toFull = new Redis({ port: full.port, host: full.host });
    const toReplica = new Redis({ port: replica.port, host: replica.host });
    cleanup.push(
      () => toFull.disconnect(),
      () => toReplica.disconnect(),
    );
    expect(outageOf(await failure(toFull.set('k', 'v')))).toBe('out-of-memory');
    // From inside a script too: Redis 7 passes the error on as it is.
    const script = new RedisScript('set-one', "return redis.call('SET', KEYS[1], ARGV[1])");
    expect(outageOf(await failure(script.run(toFull, ['k'], ['v'])))).toBe('out-of-memory');
    expect(outageOf(await failure(toReplica.set('k', 'v')))).toBe('failover');
    expect(outageOf(new Error('LOADING Redis is loading the dataset in memory'))).toBe('loading');
  });

  it('a server stuck in a script, and one short of replicas to write to, are outages of their kind', async () => {
    const server = await RedisTestServer.start({ args: ['--busy-reply-threshold', '50', '--min-replicas-to-write', '1'] });
    cleanup.push(() => server.destroy());
    const [looping, other] = [new Redis(server.address), new Redis(server.address)];
    cleanup.push(
      () => looping.disconnect(),
      () => other.disconnect(),
    );
    expect(outageOf(await failure(other.set('k', 'v')))).toBe('refusing-writes');
    const stuck = looping.eval('while true do end', 0).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(outageOf(await failure(other.get('k')))).toBe('busy');
    await other.call('SCRIPT', 'KILL');
    await stuck;
  });

  it.each([
    ['CLUSTERDOWN The cluster is down', 'failover'],
    ['TRYAGAIN Multiple keys request during rehashing of slot', 'failover'],
    ['MOVED 3999 127.0.0.1:6381', 'failover'],
    ['ASK 3999 127.0.0.1:6381', 'failover'],
    ['MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no', 'failover'],
    ['Too many Cluster redirections. Last error: Error: Connection is closed.', 'failover'],
    ["Cluster isn't ready and enableOfflineQueue options is false", 'disconnected'],
    ["Stream isn't writeable and enableOfflineQueue options is false", 'disconnected'],
    ['Connection is closed.', 'disconnected'],
    ['None of startup nodes is available', 'disconnected'],
    ['Failed to refresh slots cache.', 'disconnected'],
    ['Command timed out', 'timeout'],
    ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.', 'busy'],
    ["MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", 'refusing-writes'],
    ['NOREPLICAS Not enough good replicas to write.', 'refusing-writes'],
  ] as const)('ioredis\'s "%s" is an outage (%s)', (message, kind) => {
    expect(outageOf(new Error(message))).toBe(kind);
  });

  it("a feature's RedisUnavailableError keeps its kind, and answers 503", () => {
    const error = new RedisUnavailableError('leaderboards', 'failover', { cause: new Error('CLUSTERDOWN The cluster is down') });
    expect(outageOf(error)).toBe('failover');
    expect(error.getStatus()).toBe(503);
    expect(error.statusCode).toBe(503);
    expect(error.message).toBe('Redis is unavailable to leaderboards (a failover is under way: a master is down or being replaced)');
  });
});
