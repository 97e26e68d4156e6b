import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  LockLostError,
  LockNotAcquiredError,
  LockService,
  MalformedTextError,
  RedisConnections,
  RedisKeys,
  WithLock,
  type ReadWriteSide,
} from '../../lib/index.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';
import { assertExclusive, heldTogether, type HoldEvent } from './read-write-events.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let counter = 0;
const fresh = (name: string) => `${name}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;

/** Records, in `events` (shared by the app instances of a test), when its methods enter and leave. */
@Injectable()
class Settings {
  static events: HoldEvent[] = [];
  constructor(private readonly locks: LockService) {}

  @WithLock<[string]>({ key: (name) => `settings:${name}`, mode: 'read', wait: '5s' })
  async read(_name: string): Promise<void> {
    await this.inside('read', 100);
  }

  @WithLock<[string]>({ key: (name) => `settings:${name}`, mode: 'write', wait: '5s' })
  async write(_name: string): Promise<void> {
    await this.inside('write', 50);
  }

  private async inside(kind: HoldEvent['kind'], ms: number): Promise<void> {
    const token = this.locks.current()!.fencingToken;
    Settings.events.push({ kind, token, at: 'enter' });
    await sleep(ms);
    Settings.events.push({ kind, token, at: 'leave' });
  }
}

describe.each(topologies)('LockService.readWrite on $topology', ({ connection }) => {
  let apps: INestApplicationContext[];
  let locks: LockService;
  let other: LockService;
  beforeAll(async () => {
    const keyPrefix = uniquePrefix();
    apps = await Promise.all([1, 2].map(() => startContext({ connection: connection(), keyPrefix }, { providers: [Settings] })));
    [locks, other] = apps.map((app) => app.get(LockService));
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  /** Runs `fn` holding `side`, recording when it enters and leaves (and its fencing token) in `events`. */
  const hold = (events: HoldEvent[], side: ReadWriteSide, kind: 'read' | 'write', ms: number) =>
    side.using(
      async (lock) => {
        events.push({ kind, token: lock.fencingToken, at: 'enter' });
        await sleep(ms);
        events.push({ kind, token: lock.fencingToken, at: 'leave' });
      },
      { wait: '20s', ttl: '5s' },
    );

  it('lets readers of two app instances hold it at once, with distinct, increasing fencing tokens', async () => {
    const key = fresh('config');
    const events: HoldEvent[] = [];
    await Promise.all(Array.from({ length: 12 }, (_, i) => hold(events, (i % 2 ? locks : other).readWrite(key).read, 'read', 100)));
    expect(events).toHaveLength(24);
    // Measured by the readers themselves: more than one inside at once.
    expect(heldTogether(events).most).toBeGreaterThan(1);
    const tokens = events.filter((event) => event.at === 'enter').map((event) => event.token);
    expect(new Set(tokens).size).toBe(12);
  });

  it('never lets a reader in while a writer holds it, and orders fencing tokens across both sides', async () => {
    const key = fresh('mixed');
    const events: HoldEvent[] = [];
    const tasks = Array.from({ length: 40 }, (_, i) => {
      const service = i % 2 ? locks : other;
      const writes = i % 8 === 3;
      return sleep(i * 3).then(() => hold(events, service.readWrite(key)[writes ? 'write' : 'read'], writes ? 'write' : 'read', 15));
    });
    await Promise.all(tasks);
    expect(events).toHaveLength(80);
    assertExclusive(events);
    expect(heldTogether(events).most).toBeGreaterThan(1);
  });

  it('gets a waiting writer in under a continuous read load: reads that get in after it was called are bounded, none once its intent is recorded', async () => {
    const key = fresh('load');
    const READERS = 6;
    const granted: number[] = [];
    let stop = false;
    // Each reader loop takes the read side again as soon as it left it, on both instances:
    // readers overlap all the time, so without writer preference the lock would never be free.
    const loops = Array.from({ length: READERS }, async (_, i) => {
      const side = (i % 2 ? locks : other).readWrite(key).read;
      while (!stop) {
        await side.using(
          async (lock) => {
            granted.push(lock.fencingToken);
            await sleep(10 + (i % 3) * 5);
          },
          { wait: '30s', ttl: '5s' },
        );
      }
    });
    while (granted.length < 50) await sleep(10);
    const beforeWriter = Math.max(...granted);
    const writing = locks.readWrite(key).write.acquire({ wait: '30s', ttl: '5s' });
    // The fence once the writer's intent is in Redis (a command sent right after its first attempt
    // may run before it: a node that did not know the script yet has it sent again with EVAL).
    let writerIn = false;
    void writing.then(() => (writerIn = true)).catch(() => undefined);
    const { prefix } = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    await expect.poll(async () => writerIn || (await redis.zcard(`${prefix}rwlock:i:{${key}}`)) > 0, { interval: 1 }).toBe(true);
    const atFirstAttempt = Number(await redis.get(`${prefix}rwlock:f:{${key}}`));
    const writer = await writing;
    await sleep(50);
    const duringWriter = granted.filter((token) => token > writer.fencingToken).length;
    await writer.release();
    // The readers carry on once the writer has left.
    const afterWriter = granted.length;
    while (granted.length < afterWriter + 20) await sleep(10);
    stop = true;
    await Promise.all(loops);
    const overtook = granted.filter((token) => token > beforeWriter && token < writer.fencingToken).length;
    // Reads already on their way to Redis when the writer was called (one per loop at most)...
    expect(overtook).toBeLessThanOrEqual(READERS);
    // ...and none once its intent was recorded, nor while it held the lock.
    expect(granted.filter((token) => token > atFirstAttempt && token < writer.fencingToken)).toEqual([]);
    expect(duringWriter).toBe(0);
    console.log(`[read-write] ${overtook} reads got in after the writer was called (bound ${READERS}), none after its intent`);
  });

  it('without a wait (tryAcquire) a writer records no intent: readers keep coming, and it is refused', async () => {
    const key = fresh('try');
    const rw = locks.readWrite(key);
    const reader = await rw.read.acquire({ ttl: '5s' });
    expect(await rw.write.tryAcquire()).toBeNull();
    const second = await other.readWrite(key).read.tryAcquire();
    expect(second).not.toBeNull();
    await Promise.all([reader.release(), second!.release()]);
    const writer = await rw.write.tryAcquire();
    expect(writer!.fencingToken).toBeGreaterThan(second!.fencingToken);
    expect(await rw.read.tryAcquire()).toBeNull();
    expect(await other.readWrite(key).write.tryAcquire()).toBeNull();
    expect(await writer!.release()).toBe(true);
    expect(await writer!.release()).toBe(false);
  });

  it('fails a waiting writer with "timeout" and withdraws its intent, so readers are let in at once', async () => {
    const key = fresh('gives-up');
    const rw = locks.readWrite(key);
    const reader = await rw.read.acquire({ ttl: '5s' });
    const error = await rw.write.acquire({ wait: '200ms' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ keys: [key], reason: 'timeout' });
    // Withdrawn: another reader is granted now, not once the intent would have ended.
    const next = await other.readWrite(key).read.tryAcquire();
    expect(next).not.toBeNull();
    const { prefix } = apps[0].get(RedisKeys);
    expect(await apps[0].get(RedisConnections).get().exists(`${prefix}rwlock:i:{${key}}`)).toBe(0);
    await Promise.all([reader.release(), next!.release()]);
  });

  it('holds readers back while a writer waits, and lets them in after it', async () => {
    const key = fresh('waiting');
    const reader = await locks.readWrite(key).read.acquire({ ttl: '5s' });
    const writing = other.readWrite(key).write.acquire({ wait: '10s', ttl: '5s' });
    const { prefix } = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    await expect.poll(() => redis.zcard(`${prefix}rwlock:i:{${key}}`), { interval: 5 }).toBe(1);
    const refused = await locks
      .readWrite(key)
      .read.acquire()
      .catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ reason: 'held' });
    const queued = locks.readWrite(key).read.acquire({ wait: '10s' });
    await reader.release();
    const writer = await writing;
    expect(await redis.exists(`${prefix}rwlock:i:{${key}}`)).toBe(0);
    await writer.release();
    const after = await queued;
    expect(after.fencingToken).toBeGreaterThan(writer.fencingToken);
    expect(writer.fencingToken).toBeGreaterThan(reader.fencingToken);
    await after.release();
  });

  it('keeps the intent of a writer that waits longer than an intent lasts, renewing it only now and then', async () => {
    // Retry pauses of at most 50ms: an intent lasts the shortest, 1s.
    const app = await startContext({ connection: connection(), lock: { retry: { minDelay: '10ms', maxDelay: '50ms' } } });
    try {
      const service = app.get(LockService);
      const key = fresh('long-wait');
      const intents = `${app.get(RedisKeys).prefix}rwlock:i:{${key}}`;
      const redis = app.get(RedisConnections).get();
      const reader = await service.readWrite(key).read.acquire({ ttl: '10s' });
      const writing = service.readWrite(key).write.acquire({ wait: '10s', ttl: '5s' });
      await expect.poll(() => redis.zcard(intents), { interval: 5 }).toBe(1);
      const ends = new Set<number>();
      const watchedSince = Date.now();
      // For two and a half intents, about fifty attempts of the writer: readers stay out, and its
      // intent (and the key holding it) always has time left.
      while (Date.now() - watchedSince < 2_500) {
        expect(await service.readWrite(key).read.tryAcquire()).toBeNull();
        const [[, members], [, [seconds, micros]], [, pttl]] = (await redis
          .multi()
          .zrange(intents, 0, -1, 'WITHSCORES')
          .time()
          .pttl(intents)
          .exec()) as [[null, string[]], [null, [string, string]], [null, number]];
        const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
        expect(members).toHaveLength(2);
        expect(Number(members[1])).toBeGreaterThan(now);
        expect(pttl).toBeGreaterThan(0);
        expect(pttl).toBeLessThanOrEqual(1_000);
        ends.add(Number(members[1]));
        await sleep(50);
      }
      // Renewed once two thirds of it are left (every third of a second or so), not at each attempt.
      expect(ends.size).toBeGreaterThan(2);
      expect(ends.size).toBeLessThanOrEqual(12);
      await reader.release();
      const writer = await writing;
      expect(await redis.exists(intents)).toBe(0);
      expect(await writer.release()).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('renews a reader past its ttl while using() runs, and lets its lease run out after acquire() without autoExtend', async () => {
    const key = fresh('leases');
    const running = locks.readWrite(key).read.using(
      async (lock) => {
        await sleep(1_200);
        return lock.lost;
      },
      { ttl: '400ms' },
    );
    await sleep(800);
    // Past two leases of 400ms: still held by the reader.
    expect(await other.readWrite(key).write.tryAcquire()).toBeNull();
    expect(await running).toBe(false);
    const short = await locks.readWrite(key).read.acquire({ ttl: '300ms' });
    expect(await other.readWrite(key).write.tryAcquire()).toBeNull();
    await sleep(400);
    expect(short.lost).toBe(true);
    const writer = await other.readWrite(key).write.acquire({ ttl: '400ms', autoExtend: true });
    await sleep(1_000);
    expect(writer.lost).toBe(false);
    expect(await locks.readWrite(key).read.tryAcquire()).toBeNull();
    expect(await short.release()).toBe(false);
    expect(await writer.release()).toBe(true);
  });

  it("aborts a reader's and a writer's signal when their lease is taken away behind their back", async () => {
    const { prefix } = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    for (const [side, role] of [
      ['read', 'r'],
      ['write', 'w'],
    ] as const) {
      const key = fresh(`stolen-${side}`);
      const lock = await locks.readWrite(key)[side].acquire({ ttl: '600ms', autoExtend: true });
      const aborted = new Promise<unknown>((resolve) => lock.signal.addEventListener('abort', () => resolve(lock.signal.reason)));
      await redis.del(`${prefix}rwlock:${role}:{${key}}`);
      const reason = await aborted;
      expect(reason).toBeInstanceOf(LockLostError);
      expect(lock.lost).toBe(true);
      expect(await lock.release()).toBe(false);
    }
  });

  it('@WithLock with mode "read" runs methods together, with mode "write" alone', async () => {
    const [first, second] = apps.map((app) => app.get(Settings));
    const name = fresh('settings');
    Settings.events = [];
    const reads = [first.read(name), second.read(name)];
    // The writers come once both readers hold: a writer waiting first would hold off a reader whose
    // attempt, sent on the other instance's connection, reached Redis after the writer's.
    await expect
      .poll(() => Settings.events.filter((event) => event.kind === 'read' && event.at === 'enter').length, { interval: 5 })
      .toBe(2);
    await Promise.all([...reads, first.write(name), second.write(name)]);
    expect(Settings.events).toHaveLength(8);
    assertExclusive(Settings.events);
    expect(heldTogether(Settings.events).most).toBe(2);
  });

  it('keeps its keys apart from a plain lock of the same name, in one hash tag', async () => {
    const key = '{order:9}:config';
    const plain = await locks.acquire(key);
    const writer = await locks.readWrite(key).write.acquire();
    const { prefix } = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    expect(await redis.exists(`${prefix}rwlock:w:t:${key}`)).toBe(1);
    await Promise.all([plain.release(), writer.release()]);
    const spaced = await locks.readWrite('a b{').read.acquire();
    expect(await redis.exists(`${prefix}rwlock:r:{a%20b%7B}`)).toBe(1);
    await spaced.release();
  });

  it('rejects bad keys and options, naming them', async () => {
    expect(() => locks.readWrite('')).toThrow(InvalidOptionError);
    expect(() => locks.readWrite(['a', 'b'] as never)).toThrow(/Invalid option "key": expected a non-empty string/);
    expect(() => locks.readWrite('x\uD800')).toThrow(MalformedTextError);
    const rw = locks.readWrite(fresh('options'));
    await expect(rw.read.acquire({ ttl: 0 })).rejects.toThrow(/"options.ttl": expected a duration greater than 0/);
    await expect(rw.write.acquire({ wait: 'soon' as never })).rejects.toThrow(/"options.wait"/);
    await expect(rw.write.using(() => 1, { autoExtend: 'yes' as never })).rejects.toThrow(/"options.autoExtend": expected true or false/);
    await expect(rw.read.tryAcquire({ key: 'k' } as never)).rejects.toThrow(/"options.key": expected one of the known options/);
    const decorate = (options: object) => () =>
      WithLock({ key: 'x', ...options })({ constructor: { name: 'Jobs' } } as never, 'run', { value: () => undefined });
    expect(decorate({ mode: 'shared' })).toThrow(/"@WithLock on Jobs.run.mode": expected 'read' or 'write'/);
    expect(decorate({ key: ['a', 'b'], mode: 'read' })).toThrow(/"@WithLock on Jobs.run.key": expected one key with a mode/);
  });

  it('throws an error of Redis that is not an outage as it is (a writer key of the wrong type)', async () => {
    const key = fresh('wrongtype');
    const { prefix } = apps[0].get(RedisKeys);
    await apps[0].get(RedisConnections).get().hset(`${prefix}rwlock:w:{${key}}`, 'field', 'value');
    for (const side of ['read', 'write'] as const) {
      const error = await locks
        .readWrite(key)
        [side].acquire({ wait: '1s' })
        .catch((caught: unknown) => caught);
      expect(error).not.toBeInstanceOf(LockNotAcquiredError);
      expect((error as Error).message).toMatch(/^WRONGTYPE/);
    }
  });
});
