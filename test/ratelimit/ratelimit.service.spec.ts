import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError, RateLimit, RateLimitService, RedisConnections, type RateLimitPolicy } from '../../lib/index.js';
import { scanKeys } from '../support/scan.js';
import { startContext, topologies } from '../support/testing-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let caller = 0;
/** A caller no other test uses. */
const fresh = () => `caller-${++caller}-${Math.random().toString(36).slice(2)}`;

/** Waits for the start of the next clock-aligned window of `windowMs`, so a test's calls do not straddle its end. */
async function startOfWindow(windowMs: number): Promise<void> {
  await sleep(windowMs - (Date.now() % windowMs) + 20);
}

/** Consumes `count` times in a row and returns how many were allowed. */
async function admitted(service: RateLimitService, key: string, policy: RateLimitPolicy, count: number, cost = 1): Promise<number> {
  let allowed = 0;
  for (let i = 0; i < count; i++) if ((await service.consume(key, policy, cost)).allowed) allowed++;
  return allowed;
}

describe.each(topologies)('RateLimitService on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let limits: RateLimitService;
  beforeAll(async () => {
    app = await startContext({ connection: connection() });
    limits = app.get(RateLimitService);
  });
  afterAll(() => app.close());

  describe('fixed window', () => {
    const policy: RateLimitPolicy = { limit: 5, window: '2s', algorithm: 'fixed-window' };

    it('admits `limit` per window, then reports what is left and when the window ends', async () => {
      const key = fresh();
      await startOfWindow(2000);
      const first = await limits.consume(key, policy);
      expect(first).toMatchObject({ policy: 'default', allowed: true, limit: 5, remaining: 4, retryAfterMs: 0, windowMs: 2000 });
      expect(first.resetMs).toBeGreaterThan(0);
      expect(first.resetMs).toBeLessThanOrEqual(2000);
      expect(await admitted(limits, key, policy, 10)).toBe(4);
      const rejected = await limits.consume(key, policy);
      expect(rejected).toMatchObject({ allowed: false, remaining: 0 });
      expect(rejected.retryAfterMs).toBe(rejected.resetMs);
      await sleep(rejected.retryAfterMs! + 5);
      expect(await admitted(limits, key, policy, 10)).toBe(5);
    });

    it('a rejected call spends nothing, and a cost counts as that many calls', async () => {
      const key = fresh();
      await startOfWindow(2000);
      expect((await limits.consume(key, policy, 3)).remaining).toBe(2);
      expect((await limits.consume(key, policy, 3)).allowed).toBe(false);
      expect(await limits.consume(key, policy, 2)).toMatchObject({ allowed: true, remaining: 0 });
    });

    it('keys the counter by caller, in one string that expires with the window', async () => {
      const key = fresh();
      await limits.consume(key, { ...policy, name: 'ttl' });
      const redis = app.get(RedisConnections).get();
      const [redisKey] = await scanFor(app, `*{rl:${key}}*`);
      expect(redisKey).toMatch(new RegExp(`^t\\w+:\\{rl:${key}\\}:ttl$`));
      const pttl = await redis.pttl(redisKey);
      expect(pttl).toBeGreaterThan(0);
      expect(pttl).toBeLessThanOrEqual(2000);
      // "<window index> <count> <previous count> <blocked until>"
      expect(await redis.get(redisKey)).toMatch(/^\d+ 1 0 0$/);
    });

    it('expires a counter at the end of its window, however often the window is written', async () => {
      const key = fresh();
      await startOfWindow(2000);
      for (let call = 0; call < 3; call++) await limits.consume(key, { ...policy, name: 'deadline' });
      const redis = app.get(RedisConnections).get();
      const [redisKey] = await scanFor(app, `*{rl:${key}}*`);
      const [index, count] = (await redis.get(redisKey))!.split(' ').map(Number);
      expect(count).toBe(3);
      // The script's clock and the one Redis expires by may differ by a millisecond.
      expect(Math.abs((await redis.pexpiretime(redisKey)) - (index + 1) * 2000)).toBeLessThanOrEqual(1);
    });
  });

  describe('sliding window', () => {
    const policy: RateLimitPolicy = { limit: 4, window: '1s' };

    it("admits `limit` at first, and then only as the previous window's weight fades", async () => {
      const key = fresh();
      expect(await admitted(limits, key, policy, 10)).toBe(4);
      const rejected = await limits.consume(key, policy);
      expect(rejected.allowed).toBe(false);
      expect(rejected.retryAfterMs).toBeGreaterThan(0);
      await sleep(rejected.retryAfterMs! + 5);
      // The retry-after is exact: one call fits now.
      expect((await limits.consume(key, policy)).allowed).toBe(true);
      // Two windows later nothing of this burst counts any more.
      await sleep(2_050);
      expect(await admitted(limits, key, policy, 10)).toBe(4);
    });

    it('keeps the counters until the end of the window after theirs, moving on with each window', async () => {
      const key = fresh();
      const redis = app.get(RedisConnections).get();
      for (let windows = 0; windows < 2; windows++) {
        await startOfWindow(1000);
        for (let call = 0; call < 2; call++) await limits.consume(key, { ...policy, name: 'deadline' });
        const [redisKey] = await scanFor(app, `*{rl:${key}}*`);
        const [index, count, previous] = (await redis.get(redisKey))!.split(' ').map(Number);
        expect([count, previous]).toEqual([2, windows === 0 ? 0 : 2]);
        expect(Math.abs((await redis.pexpiretime(redisKey)) - (index + 2) * 1000)).toBeLessThanOrEqual(1);
      }
    });

    it('never admits more than `limit` within any one window length', async () => {
      const key = fresh();
      const admittedAt: number[] = [];
      const end = Date.now() + 2_500;
      while (Date.now() < end) {
        if ((await limits.consume(key, policy)).allowed) admittedAt.push(Date.now());
        await sleep(20);
      }
      // Sliding-window counters approximate a log: a window may hold up to `limit` plus what the
      // estimate drops at the edge, never twice the limit as fixed windows can.
      for (const at of admittedAt)
        expect(admittedAt.filter((other) => other >= at && other < at + 1000).length).toBeLessThanOrEqual(policy.limit + 1);
      expect(admittedAt.length).toBeGreaterThanOrEqual(8);
    });
  });

  describe('token bucket (GCRA)', () => {
    const policy: RateLimitPolicy = { limit: 10, window: '1s', algorithm: 'token-bucket', burst: 3 };

    it('admits a burst, then one call per emission interval, with exact remaining and retry-after', async () => {
      const key = fresh();
      const burst = await Promise.all([1, 2, 3, 4].map(() => limits.consume(key, policy)));
      expect(burst.filter((decision) => decision.allowed)).toHaveLength(3);
      const rejected = burst.find((decision) => !decision.allowed)!;
      expect(rejected.retryAfterMs).toBeGreaterThan(0);
      expect(rejected.retryAfterMs).toBeLessThanOrEqual(100);
      await sleep(rejected.retryAfterMs! + 2);
      expect(await limits.consume(key, policy)).toMatchObject({ allowed: true, remaining: 0 });
      await sleep(300); // three intervals: the bucket is full again
      expect(await admitted(limits, key, policy, 5)).toBe(3);
    });
  });

  it('blockFor rejects the caller for the whole penalty once the limit is exceeded', async () => {
    const key = fresh();
    const policy: RateLimitPolicy = { name: 'login', limit: 2, window: '200ms', algorithm: 'fixed-window', blockFor: '1500ms' };
    await startOfWindow(200);
    expect(await admitted(limits, key, policy, 2)).toBe(2);
    const blocked = await limits.consume(key, policy);
    expect(blocked).toMatchObject({ allowed: false, retryAfterMs: 1500 });
    await sleep(400); // the window is over, the block is not
    const stillBlocked = await limits.consume(key, policy);
    expect(stillBlocked.allowed).toBe(false);
    expect(stillBlocked.retryAfterMs).toBeGreaterThan(900);
    expect(stillBlocked.retryAfterMs).toBeLessThanOrEqual(1100);
    await sleep(stillBlocked.retryAfterMs! + 10);
    // Three at once, at the start of a window: none of them falls in the next one.
    await startOfWindow(200);
    const after = await Promise.all([1, 2, 3].map(() => limits.consume(key, policy)));
    expect(after.filter((result) => result.allowed)).toHaveLength(2);
  });

  it('a blocked caller whose window is still full gets the longer of the two waits', async () => {
    const key = fresh();
    const policy: RateLimitPolicy = { name: 'long-window', limit: 2, window: '10m', algorithm: 'fixed-window', blockFor: '300ms' };
    // Fixed windows are aligned to the clock: not in a window's last seconds, where it would be the shorter wait.
    const untilWindowEnd = 600_000 - (Date.now() % 600_000);
    if (untilWindowEnd < 5_000) await sleep(untilWindowEnd + 50);
    expect(await admitted(limits, key, policy, 2)).toBe(2);
    const blocked = await limits.consume(key, policy);
    expect(blocked.retryAfterMs).toBeGreaterThan(1000);
    await sleep(100);
    // Still blocked (200 ms of the block left), but the full window is what decides when it may pass.
    const again = await limits.consume(key, policy);
    expect(again.allowed).toBe(false);
    expect(again.retryAfterMs).toBeGreaterThan(1000);
  });

  describe('afterBlock', () => {
    /** Windows far longer than the test: whatever is counted stays counted, but for a block's end. */
    const policies: [string, RateLimitPolicy][] = [
      ['fixed-window', { limit: 2, window: '1h', algorithm: 'fixed-window', blockFor: '400ms' }],
      ['sliding-window', { limit: 2, window: '1h', algorithm: 'sliding-window', blockFor: '400ms' }],
      ['token-bucket', { limit: 2, window: '1h', algorithm: 'token-bucket', blockFor: '400ms' }],
    ];

    it.each(policies)("'reset' (%s) starts the count afresh when the block ends, and says so in retryAfterMs", async (_, base) => {
      const policy: RateLimitPolicy = { ...base, afterBlock: 'reset' };
      const key = fresh();
      expect(await admitted(limits, key, policy, 2)).toBe(2);
      const blocked = await limits.consume(key, policy);
      expect(blocked).toMatchObject({ allowed: false, retryAfterMs: 400, resetMs: 400 });
      // 110 ms, so that at least 100 have passed on Redis's clock: Node's timers may fire a
      // millisecond before the time asked (a CI run read 301 ms left after a sleep of 100).
      await sleep(110);
      const stillBlocked = await limits.consume(key, policy);
      expect(stillBlocked.allowed).toBe(false);
      expect(stillBlocked.retryAfterMs).toBeGreaterThan(0);
      expect(stillBlocked.retryAfterMs).toBeLessThanOrEqual(300);
      await sleep(stillBlocked.retryAfterMs! + 10);
      // The whole limit again, then a new block.
      expect(await limits.consume(key, policy)).toMatchObject({ allowed: true, remaining: 1 });
      expect(await admitted(limits, key, policy, 3)).toBe(1);
    });

    it.each(policies)(
      "'continue' (%s, the default) counts on after the block: a full window rejects and blocks again",
      async (_, policy) => {
        const key = fresh();
        // Windows are aligned to the clock: not in an hour's last seconds, where the window would end first.
        const untilWindowEnd = 3_600_000 - (Date.now() % 3_600_000);
        if (untilWindowEnd < 5_000) await sleep(untilWindowEnd + 50);
        expect(await admitted(limits, key, policy, 2)).toBe(2);
        const blocked = await limits.consume(key, policy);
        expect(blocked.allowed).toBe(false);
        // The window's own wait is the longer one (what is left of the hour, at least the 5 s the
        // guard above leaves a fixed window), not the block's 400 ms.
        expect(blocked.retryAfterMs).toBeGreaterThan(1_000);
        await sleep(450);
        expect(await admitted(limits, key, policy, 3)).toBe(0);
      },
    );

    it('refuses an unknown afterBlock, and one without a blockFor, naming it', async () => {
      await expect(limits.consume(fresh(), { limit: 2, window: '1m', blockFor: '1m', afterBlock: 'forget' as never })).rejects.toThrow(
        new InvalidOptionError('policy.afterBlock', "'continue' or 'reset'", 'forget'),
      );
      await expect(limits.consume(fresh(), { limit: 2, window: '1m', afterBlock: 'reset' })).rejects.toThrow(
        new InvalidOptionError('policy.afterBlock', 'no afterBlock without a blockFor', 'reset'),
      );
      // On a class, when it is loaded: at startup.
      expect(() => RateLimit({ limit: 2, window: '1m', afterBlock: 'reset' })(class Login {})).toThrow(/"@RateLimit on Login.afterBlock"/);
    });
  });

  it('rejects a cost above the limit without a Redis call, and bad input with errors naming it', async () => {
    const key = fresh();
    const policy: RateLimitPolicy = { limit: 3, window: '1s', algorithm: 'fixed-window' };
    expect(await limits.consume(key, policy, 4)).toMatchObject({ allowed: false, retryAfterMs: undefined });
    expect(await scanFor(app, `*{rl:${key}}*`)).toEqual([]);
    await expect(limits.consume(key, policy, 0)).rejects.toThrow(new InvalidOptionError('cost', 'an integer of at least 1', 0));
    await expect(limits.consume(key, policy, 1.5)).rejects.toThrow(/Invalid option "cost"/);
    await expect(limits.consume('', policy)).rejects.toThrow(/Invalid option "key"/);
    await expect(limits.consume('caller\ud800', policy)).rejects.toThrow(
      'Invalid option "key": expected well-formed Unicode text, got a string with a lone surrogate (not valid UTF-16).',
    );
    await expect(limits.consume(key, { limit: 0, window: '1s' })).rejects.toThrow(
      /Invalid option "policy.limit": expected a positive integer, got 0/,
    );
    await expect(limits.consume(key, { limit: 1, window: 0 })).rejects.toThrow(
      /Invalid option "policy.window": expected a duration greater than 0/,
    );
    await expect(limits.consume(key, { limit: 1, window: '1s', algorithm: 'leaky' as never })).rejects.toThrow(/policy.algorithm/);
    await expect(limits.consume(key, { limit: 5, window: '1s', burst: 2 })).rejects.toThrow(
      /"policy.burst": expected no burst unless algorithm is 'token-bucket', got 2/,
    );
  });

  it('throws an error that is not an outage (here WRONGTYPE) instead of admitting the call', async () => {
    const key = fresh();
    const policy: RateLimitPolicy = { name: 'typed', limit: 5, window: '1s' };
    await app
      .get(RedisConnections)
      .get()
      .lpush(limits.keyOf(key, 'x', limits.resolve(policy)).replace(':x:', ':'), 'not a counter');
    await expect(limits.consume(key, policy)).rejects.toThrow(/WRONGTYPE/);
  });

  it("encodes the caller, so a crafted key cannot reach another caller's counter or slot", async () => {
    const victim = fresh();
    const policy: RateLimitPolicy = { limit: 1, window: '5s', algorithm: 'fixed-window' };
    expect((await limits.consume(victim, policy)).allowed).toBe(true);
    // Looks like the victim's key from the inside of the tag out.
    expect((await limits.consume(`${victim}}:default:x{`, policy)).allowed).toBe(true);
    expect((await limits.consume(`rl:${victim}`, policy)).allowed).toBe(true);
    expect((await limits.consume(victim, policy)).allowed).toBe(false);
  });
});

const scanFor = (app: INestApplicationContext, pattern: string) => scanKeys(app.get(RedisConnections).get(), pattern);
