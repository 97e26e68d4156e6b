import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  LockLostError,
  LockNotAcquiredError,
  LockService,
  MalformedTextError,
  RedisConnections,
  RedisKeys,
  WithSemaphore,
  type Lock,
} from '../../lib/index.js';
import { scanKeys } from '../support/scan.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { standaloneConnection, startContext, topologies } from '../support/testing-app.js';

/** A semaphore name no other test uses. */
const fresh = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

@Injectable()
class Exports {
  inside = 0;
  most = 0;
  permits: (Lock | undefined)[] = [];
  constructor(private readonly locks: LockService) {}

  @WithSemaphore<[string, number]>('exports', { key: (tenant) => tenant, permits: 2, wait: '10s', ttl: '2s' })
  async run(_tenant: string, ms: number): Promise<number> {
    this.inside++;
    this.most = Math.max(this.most, this.inside);
    this.permits.push(this.locks.current());
    await sleep(ms);
    this.inside--;
    return this.locks.current()!.fencingToken;
  }

  @WithSemaphore<[string, number]>('imports', { key: (tenant) => tenant, permits: (_tenant, plan) => plan, onBusy: 'skip', ttl: '2s' })
  async skipWhenBusy(_tenant: string, _plan: number): Promise<string> {
    await sleep(200);
    return 'ran';
  }
}

describe.each(topologies)('Semaphores on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let locks: LockService;
  let exports: Exports;
  let prefix: string;
  const redis = () => app.get(RedisConnections).get();
  const holdersKey = (name: string) => `${prefix}sem:{${name}}`;
  /** Redis's clock, in ms. */
  const redisNow = async () => {
    const [seconds, micros] = await redis().time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };
  /** The end of the lease of a semaphore's only holder (ms, Redis's clock). */
  const onlyLeaseEnd = async (name: string) => {
    const holders = await redis().zrange(holdersKey(name), '0', '-1', 'WITHSCORES');
    expect(holders).toHaveLength(2);
    return Number(holders[1]);
  };
  beforeAll(async () => {
    app = await startContext({ connection: connection() }, { providers: [Exports] });
    locks = app.get(LockService);
    exports = app.get(Exports);
    prefix = app.get(RedisKeys).prefix;
  });
  afterAll(() => app.close());

  it('lets at most `permits` callers in at once, each with its own fencing token, strictly increasing as granted', async () => {
    const semaphore = locks.semaphore(fresh('three'), 3);
    let inside = 0;
    let most = 0;
    const tokens: number[] = [];
    await Promise.all(
      Array.from({ length: 30 }, () =>
        semaphore.using(
          async (permit) => {
            inside++;
            most = Math.max(most, inside);
            tokens.push(permit.fencingToken);
            await sleep(5);
            inside--;
          },
          { wait: '20s' },
        ),
      ),
    );
    expect(most).toBe(3);
    expect(tokens).toHaveLength(30);
    expect(tokens.every((token, i) => i === 0 || token > tokens[i - 1])).toBe(true);
    expect(await semaphore.available()).toBe(3);
  });

  it('counts available permits, takes several at once (all or none), and says "held" or answers null when too few are free', async () => {
    const semaphore = locks.semaphore(fresh('count'), 3);
    expect(await semaphore.available()).toBe(3);
    const two = await semaphore.acquire({ permits: 2, ttl: '5s' });
    expect(await semaphore.available()).toBe(1);
    expect(await semaphore.tryAcquire({ permits: 2 })).toBeNull();
    const error = await semaphore.acquire({ permits: 2 }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockNotAcquiredError);
    expect(error).toMatchObject({ keys: [semaphore.name], reason: 'held' });
    expect((error as LockNotAcquiredError).getStatus()).toBe(409);
    const one = await semaphore.acquire();
    expect(one.fencingToken).toBe(two.fencingToken + 1);
    expect(await semaphore.available()).toBe(0);
    const waited = await semaphore.acquire({ wait: '200ms' }).catch((caught: unknown) => caught);
    expect(waited).toMatchObject({ reason: 'timeout' });
    expect((waited as LockNotAcquiredError).waitedMs).toBeGreaterThanOrEqual(200);

    expect(await two.release()).toBe(true);
    expect(await two.release()).toBe(false);
    expect(await semaphore.available()).toBe(2);
    expect(await one.release()).toBe(true);
    // Nothing is left behind but the fence (the last fencing token).
    const keys = await scanKeys(redis(), `${holdersKey(semaphore.name)}*`);
    expect(keys).toEqual([`${holdersKey(semaphore.name)}:fence`]);
    expect(await redis().get(`${holdersKey(semaphore.name)}:fence`)).toBe(String(one.fencingToken));
  });

  it("gives an unreleased holder's permit back when its lease ends on Redis's clock, not before", async () => {
    const semaphore = locks.semaphore(fresh('lease'), 1);
    const crashed = await semaphore.acquire({ ttl: '400ms' });
    const leaseEnd = await onlyLeaseEnd(semaphore.name);
    expect(await redisNow()).toBeLessThan(leaseEnd);
    expect(await semaphore.tryAcquire()).toBeNull();
    const next = await semaphore.acquire({ wait: '5s', ttl: '10s' });
    // The new holder's lease ends 10 s after its grant, on Redis's clock: granted once the first lease had ended.
    const grantedAt = (await onlyLeaseEnd(semaphore.name)) - 10_000;
    expect(grantedAt).toBeGreaterThanOrEqual(leaseEnd);
    expect(next.fencingToken).toBeGreaterThan(crashed.fencingToken);
    expect(crashed.lost).toBe(true);
    expect(await crashed.release()).toBe(false);
    await expect(crashed.extend()).rejects.toBeInstanceOf(LockLostError);
    await next.release();
  });

  it("holds permits, as the holder knows it, never past the lease Redis keeps: the attempt's start plus the ttl", async () => {
    const semaphore = locks.semaphore(fresh('validity'), 1);
    for (let round = 0; round < 20; round++) {
      const held = await semaphore.acquire({ ttl: '300ms' });
      // Redis's clock is this host's here, and its lease started after the attempt did.
      expect(held.expiresAt).toBeLessThanOrEqual(await onlyLeaseEnd(semaphore.name));
      await held.extend('400ms');
      expect(held.expiresAt).toBeLessThanOrEqual(await onlyLeaseEnd(semaphore.name));
      expect(await held.release()).toBe(true);
    }
  });

  it('gives back all the permits of an unreleased holder of several when its lease ends, and only those', async () => {
    const semaphore = locks.semaphore(fresh('several'), 3);
    const two = await semaphore.acquire({ permits: 2, ttl: '300ms' });
    const one = await semaphore.acquire({ ttl: '10s' });
    expect(await semaphore.available()).toBe(0);
    const next = await semaphore.acquire({ permits: 2, wait: '5s', ttl: '10s' });
    expect(two.lost).toBe(true);
    expect(await semaphore.available()).toBe(0);
    expect(await redis().get(`${holdersKey(semaphore.name)}:held`)).toBe('3');
    // Only the new holder of two is in the hash (a holder of one is not).
    expect(Object.values(await redis().hgetall(`${holdersKey(semaphore.name)}:permits`))).toEqual(['2']);
    expect(await next.release()).toBe(true);
    expect(await semaphore.available()).toBe(2);
    expect(await redis().exists(`${holdersKey(semaphore.name)}:permits`)).toBe(0);
    expect(await one.release()).toBe(true);
    expect(await redis().exists(`${holdersKey(semaphore.name)}:held`)).toBe(0);
  });

  it('renews the lease while `using` runs past it, and releases at the end', async () => {
    const semaphore = locks.semaphore(fresh('renewed'), 1);
    const running = semaphore.using(
      async (permit) => {
        await sleep(1_000); // more than three leases
        return permit.lost;
      },
      { ttl: '300ms' },
    );
    await sleep(700);
    expect(await semaphore.tryAcquire()).toBeNull();
    expect(await running).toBe(false);
    expect(await semaphore.available()).toBe(1);
  });

  it("aborts a holder's signal when its permit is taken away behind its back", async () => {
    const semaphore = locks.semaphore(fresh('stolen'), 2);
    const permit = await semaphore.acquire({ ttl: '3s', autoExtend: true });
    const aborted = new Promise<unknown>((resolve) => permit.signal.addEventListener('abort', () => resolve(permit.signal.reason)));
    await redis().zremrangebyrank(holdersKey(semaphore.name), 0, -1);
    const reason = await aborted;
    expect(reason).toBeInstanceOf(LockLostError);
    expect((reason as Error).message).toMatch(/another holder has it, or its key is gone/);
    expect(permit.lost).toBe(true);
  });

  it('with fewer permits at runtime, holders above the new number keep theirs, and none is handed out until under it', async () => {
    const name = fresh('resized');
    const before = locks.semaphore(name, 3);
    const held = await Promise.all([1, 2, 3].map(() => before.acquire({ ttl: '10s' })));
    const after = locks.semaphore(name, 1);
    expect(await after.available()).toBe(0);
    expect(await after.tryAcquire()).toBeNull();
    // The holders still hold: they renew, and are not lost.
    for (const permit of held) await permit.extend('10s');
    expect(held.map((permit) => permit.lost)).toEqual([false, false, false]);
    await held[0].release();
    expect(await after.tryAcquire()).toBeNull(); // 2 held, 1 allowed
    await held[1].release();
    expect(await after.tryAcquire()).toBeNull(); // 1 held, 1 allowed
    await held[2].release();
    const granted = await after.tryAcquire();
    expect(granted?.fencingToken).toBe(held[2].fencingToken + 1);
    // With more permits again, more are handed out beside it.
    const more = locks.semaphore(name, 2);
    expect(await more.available()).toBe(1);
    const second = await more.tryAcquire();
    expect(second).not.toBeNull();
    await Promise.all([granted!.release(), second!.release()]);
  });

  it('@WithSemaphore: one semaphore per key, at most `permits` calls at once, the permit as LockService.current()', async () => {
    const tenant = fresh('tenant');
    exports.most = 0;
    const tokens = await Promise.all(Array.from({ length: 8 }, () => exports.run(tenant, 30)));
    expect(exports.most).toBe(2);
    expect(new Set(tokens).size).toBe(8);
    expect(exports.permits.at(-1)?.keys).toEqual([`exports:${tenant}`]);
    // Another tenant's semaphore is another: its first permit's token is 1.
    expect(await exports.run(fresh('other'), 1)).toBe(1);
  });

  it("@WithSemaphore with onBusy 'skip' returns undefined when no permit is free; permits may come from the arguments", async () => {
    const tenant = fresh('importer');
    expect(await Promise.all([1, 2, 3].map(() => exports.skipWhenBusy(tenant, 2)))).toEqual(['ran', 'ran', undefined]);
    expect(await Promise.all([1, 2, 3].map(() => exports.skipWhenBusy(`${tenant}-pro`, 3)))).toEqual(['ran', 'ran', 'ran']);
  });

  it("keeps a semaphore's keys in one slot, under the lock feature's 'sem' segment, until the last lease ends", async () => {
    const base = fresh('slot');
    const semaphore = locks.semaphore(`${base} {x}`, 2);
    const permit = await semaphore.acquire({ permits: 2, ttl: '5s' });
    // The space and braces are encoded: the name cannot leave its hash tag.
    const holders = `${prefix}sem:{${base}%20%7Bx%7D}`;
    const keys = (await scanKeys(redis(), `${prefix}sem:*`)).filter((key) => key.includes(base)).sort();
    expect(keys).toEqual([holders, `${holders}:fence`, `${holders}:held`, `${holders}:permits`]);
    expect(new Set(keys.map((key) => calculateSlot(key))).size).toBe(1);
    expect(keys.map((key) => app.get(RedisKeys).segmentOf(key))).toEqual(['sem', 'sem', 'sem', 'sem']);
    for (const key of keys.filter((key) => !key.endsWith(':fence'))) expect(await redis().pttl(key)).toBeGreaterThan(4_000);
    expect(await redis().pttl(`${holders}:fence`)).toBe(-1);
    await permit.release();
  });

  it('refuses bad input with an error naming the argument', () => {
    for (const permits of [0, -1, 1.5, Number.NaN, Infinity, '3']) {
      expect(() => locks.semaphore('bad', permits as number)).toThrow(InvalidOptionError);
      expect(() => locks.semaphore('bad', permits as number)).toThrow(/^Invalid option "permits": expected a positive integer/);
    }
    for (const name of ['', 7, undefined]) expect(() => locks.semaphore(name as string, 1)).toThrow(/^Invalid option "name"/);
    expect(() => locks.semaphore('\uD800', 1)).toThrow(MalformedTextError);
    expect(() => locks.semaphore('\uD800', 1)).toThrow(/^Invalid option "name": expected well-formed Unicode text/);
  });

  it('refuses bad acquisition options with an InvalidOptionError naming the option', async () => {
    const semaphore = locks.semaphore(fresh('options'), 3);
    for (const permits of [0, -2, 1.5, 4, '1'])
      await expect(semaphore.acquire({ permits: permits as number })).rejects.toThrow(
        /^Invalid option "options.permits": expected a whole number from 1 to 3 \(the semaphore's permits\)/,
      );
    await expect(semaphore.tryAcquire({ ttl: 'soon' as never })).rejects.toThrow(/^Invalid option "options.ttl"/);
    await expect(semaphore.using(() => 1, { lease: '1s' } as never)).rejects.toThrow(/^Invalid option "options.lease"/);
    expect(await semaphore.available()).toBe(3);
  });

  it('refuses a bad @WithSemaphore when the class is defined, naming the option', () => {
    const decorate = (name: unknown, options: unknown) => {
      class Target {
        async method(): Promise<void> {}
      }
      const descriptor = Object.getOwnPropertyDescriptor(Target.prototype, 'method')!;
      WithSemaphore(name as string, options as never)(Target.prototype, 'method', descriptor);
    };
    expect(() => decorate('x', { permits: 0 })).toThrow(
      /^Invalid option "@WithSemaphore on Target.method.permits": expected a positive integer/,
    );
    expect(() => decorate('x', {})).toThrow(/^Invalid option "@WithSemaphore on Target.method.permits"/);
    expect(() => decorate('', { permits: 1 })).toThrow(/^Invalid option "@WithSemaphore on Target.method: name"/);
    expect(() => decorate('x', { permits: 1, key: '' })).toThrow(/^Invalid option "@WithSemaphore on Target.method.key"/);
    expect(() => decorate('x', { permits: 1, onBusy: 'wait' })).toThrow(/^Invalid option "@WithSemaphore on Target.method.onBusy"/);
    expect(() => decorate('x', { permits: 1, ttl: -1 })).toThrow(/^Invalid option "@WithSemaphore on Target.method.ttl"/);
    expect(() => decorate('x', { permits: 1, size: 2 })).toThrow(/^Invalid option "@WithSemaphore on Target.method.size"/);
  });
});

describe('Semaphores with lock.redlock configured', () => {
  const elsewhere = ownRedisServer();
  let app: INestApplicationContext;
  beforeAll(async () => {
    const { address } = elsewhere.server;
    app = await startContext({
      connection: standaloneConnection(),
      connections: { lockA: address, lockB: address, lockC: address },
      lock: { redlock: { connections: ['lockA', 'lockB', 'lockC'] } },
    });
  });
  afterAll(() => app?.close());

  it('run on the main connection only (no quorum)', async () => {
    const prefix = app.get(RedisKeys).prefix;
    const semaphore = app.get(LockService).semaphore('on-main', 2);
    const permit = await semaphore.acquire({ ttl: '5s' });
    expect(await app.get(RedisConnections).get().exists(`${prefix}sem:{on-main}`)).toBe(1);
    expect(await app.get(RedisConnections).get('lockA').exists(`${prefix}sem:{on-main}`)).toBe(0);
    expect(await semaphore.available()).toBe(1);
    expect(await permit.release()).toBe(true);
  });
});
