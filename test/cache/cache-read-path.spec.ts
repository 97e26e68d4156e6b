import type { INestApplicationContext } from '@nestjs/common';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CacheService, RedisConnections, RedisKeys, type RedisCodec } from '../../lib/index.js';
import { encodeCacheKey } from '../../lib/cache/cache-key.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The arguments of one MONITOR line (`+<time> [<db> <source>] "arg" ...`), and its source ('lua' inside scripts). */
function monitorLine(line: string): { source: string; args: string[] } | undefined {
  const head = /^\+[\d.]+ \[\d+ ([^\]]+)\] /.exec(line);
  if (!head) return undefined;
  const args = [...line.slice(head[0].length).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((match) => match[1].replace(/\\(["\\])/g, '$1'));
  return { source: head[1], args };
}

/**
 * The commands that clients send to the Redis nodes (each master of the Cluster) on keys that
 * start with `prefix`, by MONITOR on a plain socket (commands that scripts run, from the source
 * 'lua', are left out).
 */
class CommandLog {
  private readonly sockets: Socket[] = [];
  readonly commands: string[][] = [];

  static async start(topology: 'standalone' | 'cluster', prefix: string): Promise<CommandLog> {
    const { standalone, cluster } = inject('redis');
    const log = new CommandLog();
    for (const node of topology === 'standalone' ? [standalone] : cluster) {
      const socket = connect(node.port, node.host);
      log.sockets.push(socket);
      let pending = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\r\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const command = monitorLine(line);
          if (command && command.source !== 'lua' && command.args.some((arg) => arg.startsWith(prefix))) log.commands.push(command.args);
        }
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.once('data', (first: string) => (first.startsWith('+OK') ? resolve() : reject(new Error(first))));
        socket.write('MONITOR\r\n');
      });
    }
    return log;
  }

  /**
   * The commands sent with `redisKey` among their arguments, in order: their names, 'script' for
   * EVAL and EVALSHA. An EVALSHA the server did not know yet, sent again as EVAL, counts once.
   */
  on(redisKey: string): string[] {
    const sent = this.commands.filter((args) => args.includes(redisKey));
    const retried = (args: string[], next: string[] | undefined) =>
      args[0].toLowerCase() === 'evalsha' && next?.[0].toLowerCase() === 'eval' && next.slice(2).join('\n') === args.slice(2).join('\n');
    return sent
      .filter((args, i) => !retried(args, sent[i + 1]))
      .map((args) => (/^eval(sha)?$/i.test(args[0]) ? 'script' : args[0].toLowerCase()));
  }

  close(): void {
    for (const socket of this.sockets) socket.destroy();
  }
}

describe.each(topologies)('the read path of getOrSet on $topology', ({ topology, connection }) => {
  const keyPrefix = uniquePrefix();
  let app: INestApplicationContext;
  let cache: CacheService;
  let log: CommandLog;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix, cache: { ttl: '1m' } });
    cache = app.get(CacheService);
    log = await CommandLog.start(topology, keyPrefix);
  });
  afterAll(async () => {
    log?.close();
    await app?.close();
  });

  const redisKey = (key: string) => `${app.get(RedisKeys).prefix}{c:${encodeCacheKey(key)}}`;
  const hot = Array.from({ length: 20 }, (_, i) => `hot:${i}`);

  it('reads with one GET while reads hit, with the miss script once misses are common, and with a GET again', async () => {
    const notCalled = async () => {
      throw new Error('a hit must not load');
    };
    for (const key of hot) await cache.set(key, { key });
    for (const key of hot) expect(await cache.getOrSet(key, notCalled)).toEqual({ key });
    await expect.poll(() => hot.map((key) => log.on(redisKey(key)).slice(1))).toEqual(hot.map(() => ['get']));

    // Fifty misses: the first ones read with a GET, then the lock script, then the store (3 round
    // trips); once misses are common, the lock script reads (2 round trips).
    const cold = Array.from({ length: 50 }, (_, i) => `cold:${i}`);
    let loads = 0;
    for (const key of cold) expect(await cache.getOrSet(key, async () => (loads++, { key }))).toEqual({ key });
    expect(loads).toBe(50);
    const missCommands = () => cold.map((key) => log.on(redisKey(key)).join(' '));
    await expect.poll(() => missCommands().slice(-30)).toEqual(Array.from({ length: 30 }, () => 'script script'));
    expect(missCommands()[0]).toBe('get script script');
    for (const key of cold) expect(await cache.get(key)).toEqual({ key });

    // Hits again: one round trip each, by the script at first, by a GET once misses are rare.
    const hitsBefore = cache.stats().redis.hits;
    const reads: string[] = [];
    for (let round = 0; round < 5; round++) reads.push(...hot);
    for (const key of reads) expect(await cache.getOrSet(key, notCalled)).toEqual({ key });
    expect(cache.stats().redis.hits - hitsBefore).toBe(100);
    await expect.poll(() => hot.reduce((sum, key) => sum + log.on(redisKey(key)).length, 0)).toBe(20 * 2 + 100);
    const hitCommands = hot.flatMap((key) => log.on(redisKey(key)).slice(2));
    expect(hitCommands).toHaveLength(100);
    expect(hitCommands).toContain('script');
    // The last round read with GETs only.
    expect(hot.map((key) => log.on(redisKey(key)).at(-1))).toEqual(hot.map(() => 'get'));
  });
});

describe.each(topologies)('getOrSet while most reads miss (the miss script reads first) on $topology', ({ topology, connection }) => {
  const keyPrefix = uniquePrefix();
  let instances: INestApplicationContext[];
  let a: CacheService;
  let b: CacheService;
  let log: CommandLog;
  beforeAll(async () => {
    instances = await Promise.all(
      [1, 2].map(() => startContext({ connection: connection(), keyPrefix, cache: { ttl: '1m', stampede: { wait: '10s' } } })),
    );
    [a, b] = instances.map((app) => app.get(CacheService));
    // Misses on both instances (each on keys of its own), so their reads go through the miss script.
    for (let i = 0; i < 20; i++) for (const [n, cache] of [a, b].entries()) await cache.getOrSet(`warm:${n}:${i}`, () => i);
    log = await CommandLog.start(topology, keyPrefix);
  });
  afterAll(async () => {
    log?.close();
    await Promise.all(instances.map((app) => app.close()));
  });

  const redisKey = (key: string) => `${instances[0].get(RedisKeys).prefix}{c:${encodeCacheKey(key)}}`;

  it('calls the loader once for 100 concurrent misses over two instances, and releases the lock', async () => {
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(100);
      return { loadedBy: calls };
    };
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).getOrSet('stampede', loader)));
    expect(calls).toBe(1);
    expect(results.every((result) => result.loadedBy === 1)).toBe(true);
    // Every caller of both instances read with the script (with GETs first, there would be one script per instance).
    await expect.poll(() => log.on(redisKey('stampede')).filter((command) => command === 'script').length).toBeGreaterThanOrEqual(100);
    const redis = instances[0].get(RedisConnections).get();
    expect(await redis.exists(`${redisKey('stampede')}:l`)).toBe(0);
  });

  it('never writes back a value loaded before a delete, and leaves a value it did not write alone', async () => {
    const loading = a.getOrSet('write-back', async () => (await sleep(150), 'old'));
    await sleep(30);
    await b.delete('write-back');
    expect(await loading).toBe('old');
    expect(await a.get('write-back')).toBeUndefined();

    const redis = instances[0].get(RedisConnections).get();
    const foreignKey = `${instances[0].get(RedisKeys).prefix}{c:${encodeCacheKey('foreign')}}`;
    await redis.set(foreignKey, 'not a cache entry');
    expect(await a.getOrSet('foreign', async () => 'loaded')).toBe('loaded');
    expect(await redis.get(foreignKey)).toBe('not a cache entry');
  });

  it('throws the WRONGTYPE of a key that holds another type, and leaves that key as it was', async () => {
    const redis = instances[0].get(RedisConnections).get();
    // More misses first, so that this read too goes through the miss script.
    for (let i = 0; i < 20; i++) await a.getOrSet(`wrong-type-warm:${i}`, () => i);
    await redis.hset(redisKey('hash-value'), 'field', 'kept');
    await redis.hset(`${redisKey('hash-generation')}:g`, 'field', 'kept');
    let calls = 0;
    const loader = async () => (calls++, 'loaded');
    await expect(a.getOrSet('hash-value', loader)).rejects.toThrow(/WRONGTYPE/);
    await expect(a.getOrSet('hash-generation', loader)).rejects.toThrow(/WRONGTYPE/);
    expect(calls).toBe(0);
    expect(await redis.hgetall(redisKey('hash-value'))).toEqual({ field: 'kept' });
    expect(await redis.hgetall(`${redisKey('hash-generation')}:g`)).toEqual({ field: 'kept' });
    expect(await redis.exists(redisKey('hash-generation'))).toBe(0);
  });

  it('without the lock, each instance loads once and the value is stored', async () => {
    let calls = 0;
    const loader = async () => (calls++, await sleep(50), 'unlocked');
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).getOrSet('no-lock', loader, { lock: false })));
    expect(results.every((value) => value === 'unlocked')).toBe(true);
    expect(calls).toBe(2);
    expect(await a.get('no-lock')).toBe('unlocked');
  });

  it('serves a stale value while one background refresh runs', async () => {
    for (let i = 0; i < 12; i++) await a.getOrSet(`rewarm:${i}`, () => i);
    let version = 0;
    const loader = async () => {
      version++;
      await sleep(100);
      return `v${version}`;
    };
    const options = { ttl: 100, staleWhileRevalidate: '10s' } as const;
    expect(await a.getOrSet('swr', loader, options)).toBe('v1');
    await sleep(150);
    const staleBefore = a.stats().staleServed;
    const during = await Promise.all(Array.from({ length: 20 }, () => a.getOrSet('swr', loader, options)));
    expect(new Set(during)).toEqual(new Set(['v1']));
    expect(a.stats().staleServed - staleBefore).toBe(20);
    await expect.poll(() => a.get('swr')).toBe('v2');
    expect(version).toBe(2);
  });
});

describe.each(topologies)('the miss script as the first read, with a binary codec, on $topology', ({ topology, connection }) => {
  /** JSON behind a 0xff byte, which no UTF-8 text holds: it only survives as a Buffer. */
  const codec: RedisCodec = {
    binary: true,
    encode: (value) => Buffer.concat([Buffer.from([0xff]), Buffer.from(JSON.stringify(value))]),
    decode: <T>(raw: string | Buffer) => {
      const bytes = Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      if (bytes[0] !== 0xff) throw new Error('not written by this codec');
      return JSON.parse(bytes.subarray(1).toString()) as T;
    },
  };
  const keyPrefix = uniquePrefix();
  let app: INestApplicationContext;
  let log: CommandLog;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), keyPrefix, codec, cache: { ttl: '1m' } });
    log = await CommandLog.start(topology, keyPrefix);
  });
  afterAll(async () => {
    log?.close();
    await app?.close();
  });

  it('reads values as Buffers, on a miss and on a hit', async () => {
    const cache = app.get(CacheService);
    for (let i = 0; i < 12; i++) await cache.getOrSet(`warm:${i}`, () => ({ i }));
    let loads = 0;
    expect(await cache.getOrSet('bin', async () => (loads++, { name: 'é', n: 1 }))).toEqual({ name: 'é', n: 1 });
    expect(await cache.getOrSet('bin', async () => (loads++, { name: 'other' }))).toEqual({ name: 'é', n: 1 });
    expect(loads).toBe(1);
    const redisKey = `${app.get(RedisKeys).prefix}{c:${encodeCacheKey('bin')}}`;
    // The miss by the script, its store, then the hit by the script.
    await expect.poll(() => log.on(redisKey)).toEqual(['script', 'script', 'script']);
    const stored = await app.get(RedisConnections).get().getBuffer(redisKey);
    expect(stored?.includes(Buffer.from([0xff]))).toBe(true);
  });
});
