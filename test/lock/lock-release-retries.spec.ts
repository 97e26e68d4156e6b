import { Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockService, RedisConnections, RedisKeys, RedisUnavailableError, type Lock } from '../../lib/index.js';
import { MAX_PENDING_RELEASES, RELEASE_RETRY_CONCURRENCY } from '../../lib/lock/lock.release-retries.js';
import { command, waitFor, type RedisTestServer } from '../support/redis-server.js';
import { startContext } from '../support/testing-app.js';
import { Observers, ownRedisSetups, type OwnRedis } from '../support/own-redis.js';

/** What the tests read of a LockService's retried releases (private: there is no public view of them). */
interface Retries {
  pending: Map<string, unknown>;
  timer: NodeJS.Timeout | undefined;
  release: (keys: unknown, token: string) => Promise<boolean>;
}

/** Runs for `ARGV[1]` ms, answering BUSY to every other client meanwhile, then turns the lock key into a hash. */
const BUSY_THEN_WRONG_TYPE = `
local function now() local t = redis.call('TIME'); return t[1] * 1000 + math.floor(t[2] / 1000) end
local ends = now() + tonumber(ARGV[1])
while now() < ends do end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'field', 'value')
return 1`;

let counter = 0;
const fresh = (name: string) => `${name}-${++counter}`;

// BUSY replies after 50 ms of script; a command timeout long enough to kill a connection with a command on its way.
describe.each(ownRedisSetups(['--lua-time-limit', '50']))('retried lock releases on $topology', ({ start }) => {
  let redis: OwnRedis;
  let app: INestApplicationContext;
  let locks: LockService;
  let retries: Retries;
  /** Every retried release the store sends, with when it was sent and how many were on their way then. */
  let sent: { at: number; inFlight: number }[];
  const observers = new Observers();
  const lockKey = (key: string) => `${app.get(RedisKeys).prefix}lock:{${key}}`;
  const serverOf = (key: string) => redis.serverOf(lockKey(key));
  /** The server refuses writes (NOREPLICAS), and so every acquisition and release, while answering everything else. */
  const refuseWrites = (server: RedisTestServer, refuse: boolean) =>
    command(server.port, `CONFIG SET min-replicas-to-write ${refuse ? 1 : 0}`);

  beforeAll(async () => {
    redis = await start();
    app = await startContext({ connection: redis.connection, commandTimeout: '2s', reconnect: { minDelay: '20ms', maxDelay: '100ms' } });
    locks = app.get(LockService);
    retries = (locks as unknown as { store: { retries: Retries } }).store.retries;
    // Counts what the retries send; each still goes to Redis as it is.
    const release = retries.release;
    let inFlight = 0;
    retries.release = async (keys, token) => {
      sent.push({ at: Date.now(), inFlight: ++inFlight });
      try {
        return await release(keys, token);
      } finally {
        inFlight--;
      }
    };
  });
  afterAll(async () => {
    await app?.close();
    observers.close();
    await redis?.destroy();
  });
  beforeEach(() => {
    sent = [];
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => vi.restoreAllMocks());

  it('gives nothing back for an acquisition Redis refused without running it, though the connection stays ready', async () => {
    const key = fresh('refused');
    const server = await serverOf(key);
    await refuseWrites(server, true);
    try {
      for (let i = 0; i < 5; i++) {
        const error = await locks.acquire(key).catch((caught: unknown) => caught);
        expect(error).toMatchObject({ reason: 'store-unavailable', cause: { outage: 'refusing-writes' } });
      }
      expect(app.get(RedisConnections).get().status).toBe('ready');
      expect(retries.pending.size).toBe(0);
    } finally {
      await refuseWrites(server, false);
    }
  });

  it('gives back an acquisition that got no reply in time (it may have run): the lock is free once Redis answers', async () => {
    const key = fresh('timed-out');
    const server = await serverOf(key);
    // Once first, so that the server knows the script: an EVALSHA it did not know would not run.
    await (await locks.acquire(key)).release();
    await command(server.port, 'CLIENT PAUSE 30000 WRITE');
    try {
      const error = await locks.acquire(key, { ttl: '5m' }).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ reason: 'store-unavailable', cause: { outage: 'timeout' } });
      expect(retries.pending.size).toBe(1);
    } finally {
      await command(server.port, 'CLIENT UNPAUSE');
    }
    // The acquisition ran once the pause ended (its fence counted it), and was given back.
    await waitFor(async () => retries.pending.size === 0, 'the give-back');
    const observer = observers.of(server);
    expect(await observer.get(`${app.get(RedisKeys).prefix}fence:{${key}}`)).toBe('2');
    expect(await observer.exists(lockKey(key))).toBe(0);
  });

  it('gives back an acquisition whose connection closed with it on its way', async () => {
    const key = fresh('in-flight');
    const server = await serverOf(key);
    await command(server.port, 'CLIENT PAUSE 30000 WRITE');
    try {
      const attempt = locks.acquire(key).catch((caught: unknown) => caught);
      let id: string | undefined;
      await waitFor(
        async () => (id = /^id=(\d+) .* flags=b /m.exec(await command(server.port, 'CLIENT LIST'))?.[1]) !== undefined,
        'the acquisition to wait on the server',
      );
      await command(server.port, `CLIENT KILL ID ${id}`);
      const error = await attempt;
      expect(error).toMatchObject({ reason: 'store-unavailable' });
      expect(((error as Error).cause as RedisUnavailableError).outage).toBe('disconnected');
      expect(retries.pending.size).toBe(1);
    } finally {
      await command(server.port, 'CLIENT UNPAUSE');
    }
    await waitFor(async () => retries.pending.size === 0, 'the give-back');
  });

  it('tries a refused release again after a backoff while the connection stays up, and frees the lock before its lease ends', async () => {
    const key = fresh('backoff');
    const lock = await locks.acquire(key, { ttl: '10m' });
    const server = await serverOf(key);
    const client = app.get(RedisConnections).get();
    const events: string[] = [];
    const listeners = ['close', 'reconnecting', 'ready', 'end'].map((event) => [event, () => events.push(event)] as const);
    for (const [event, listener] of listeners) client.on(event, listener);
    await refuseWrites(server, true);
    try {
      expect(await lock.release()).toBe(false);
      await waitFor(async () => sent.length >= 2, 'the release to be refused again');
      expect(await observers.of(server).exists(lockKey(key))).toBe(1);
    } finally {
      await refuseWrites(server, false);
    }
    await waitFor(async () => (await observers.of(server).exists(lockKey(key))) === 0, 'the retried release');
    expect(Date.now()).toBeLessThan(lock.expiresAt);
    expect(retries.pending.size).toBe(0);
    // Never reconnected: the backoff alone brought the release back.
    expect(events).toEqual([]);
    for (const [event, listener] of listeners) client.off(event, listener);
  });

  it('gives a release that keeps failing up at the end of the lease, and leaves nothing pending', async () => {
    const key = fresh('given-up');
    const lock = await locks.acquire(key, { ttl: '2s' });
    const server = await serverOf(key);
    await refuseWrites(server, true);
    try {
      expect(await lock.release()).toBe(false);
      expect(retries.pending.size).toBe(1);
      await waitFor(async () => retries.pending.size === 0, 'the release to be given up');
    } finally {
      await refuseWrites(server, false);
    }
    // Tried again while the lease ran, never after it, and nothing is left to try.
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every(({ at }) => at <= lock.expiresAt)).toBe(true);
    expect(Date.now()).toBeGreaterThanOrEqual(lock.expiresAt);
    expect(retries.timer).toBeUndefined();
  });

  it('logs a retried release that failed for a bug once, with the Redis error, and does not try it again', async () => {
    const warn = vi.mocked(Logger.prototype.warn);
    const key = fresh('wrong-type');
    const lock = await locks.acquire(key, { ttl: '10m' });
    const server = await serverOf(key);
    const busy = observers.of(server).eval(BUSY_THEN_WRONG_TYPE, 1, lockKey(key), 1_500);
    await waitFor(async () => (await command(server.port, 'PING')).startsWith('-BUSY'), 'the server to be busy');
    expect(await lock.release()).toBe(false);
    await busy;
    await waitFor(async () => retries.pending.size === 0, 'the release to be tried again');
    const logged = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.startsWith('Could not release'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(
      new RegExp(
        `^Could not release lock "${key}" on Redis connection "default" when trying again after an outage \\(its lease will run out by itself\\): WRONGTYPE Operation against a key holding the wrong kind of value`,
      ),
    );
    expect(warn.mock.contexts.at(-1)).toMatchObject({ context: 'RedisPatterns:Lock' });
    expect(retries.timer).toBeUndefined();
    await observers.of(server).del(lockKey(key));
  });

  it(`keeps at most ${MAX_PENDING_RELEASES} releases (the oldest given up, logged once) and sends them ${RELEASE_RETRY_CONCURRENCY} at a time`, async () => {
    const tag = fresh('many');
    const names = Array.from({ length: MAX_PENDING_RELEASES + 1 }, (_, i) => `{${tag}}:${i}`);
    const held: Lock[] = [];
    for (let i = 0; i < names.length; i += 100)
      held.push(...(await Promise.all(names.slice(i, i + 100).map((name) => locks.acquire(name, { ttl: '10m' })))));
    const redisKeys = names.map((name) => `${app.get(RedisKeys).prefix}lock:t:${name}`);
    const server = await redis.serverOf(redisKeys[0]);
    await refuseWrites(server, true);
    try {
      for (const lock of held) expect(await lock.release()).toBe(false);
      expect(retries.pending.size).toBe(MAX_PENDING_RELEASES);
    } finally {
      await refuseWrites(server, false);
    }
    await waitFor(async () => retries.pending.size === 0, 'the retried releases');
    const observer = observers.of(server);
    // The oldest was given up: its lock stays until its lease ends. Every other one was released.
    expect(await observer.exists(redisKeys[0])).toBe(1);
    expect(await observer.exists(...redisKeys.slice(1))).toBe(0);
    expect(Math.max(...sent.map(({ inFlight }) => inFlight))).toBe(RELEASE_RETRY_CONCURRENCY);
    const capped = vi
      .mocked(Logger.prototype.warn)
      .mock.calls.map(([message]) => String(message))
      .filter((message) => message.includes('lock releases are waiting'));
    expect(capped).toEqual([
      `Over ${MAX_PENDING_RELEASES} lock releases are waiting for Redis connection "default": the oldest are given up, and their locks stay taken until their leases run out`,
    ]);
    await observer.del(redisKeys[0]);
  });
});
