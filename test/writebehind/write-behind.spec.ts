import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CacheService, InvalidOptionError, RedisUnavailableError, WriteBehind, WriteBehindService } from '../../lib/index.js';
import { ownRedisServer } from '../support/own-redis-server.js';
import { sleep } from '../support/redis-server.js';
import { QUICK_OUTAGES, startContext, topologies, uniquePrefix } from '../support/testing-app.js';

interface Profile {
  id: string;
  n: number;
}

/** The "database" the profiles are persisted to, shared by every instance of the test. */
const database = new Map<string, Profile>();
const persisted: Profile[] = [];
let failures = 0;
let gate: Promise<void> | undefined;

@Injectable()
class Profiles {
  @WriteBehind({ key: (profile: Profile) => `profile:${profile.id}`, ttl: '10m' })
  async save(profile: Profile): Promise<void> {
    await gate;
    if (failures > 0) {
      failures--;
      throw new Error('the database is unavailable');
    }
    // A slow database: writes pile up behind it, and coalesce.
    await sleep(5);
    persisted.push(profile);
    database.set(profile.id, profile);
  }

  @WriteBehind({ key: () => '' })
  async keyless(_profile: Profile): Promise<void> {}
}

const queues = { 'write-behind': { concurrency: 4, maxAttempts: 5, backoff: { type: 'fixed' as const, delay: '50ms' as const } } };

describe.each(topologies)('@WriteBehind on $topology', ({ connection }) => {
  const keyPrefix = uniquePrefix();
  let apps: INestApplicationContext[];
  const start = () => startContext({ connection: connection(), keyPrefix, queues }, { providers: [Profiles] });
  beforeAll(async () => {
    database.clear();
    persisted.length = 0;
    apps = await Promise.all([start(), start()]);
  });
  afterAll(() => Promise.all(apps.map((app) => app.close())));

  it('ends 1,000 writes to 50 keys from two instances with the latest value of every key persisted, in fewer calls than writes', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `p${i}`);
    // Each key is written 20 times in order, by one instance; all keys at once, half on each.
    await Promise.all(
      ids.map(async (id, i) => {
        const profiles = apps[i % 2].get(Profiles);
        for (let n = 1; n <= 20; n++) await profiles.save({ id, n });
        // Readers see the newest value at once, on the other instance too.
        expect(await apps[(i + 1) % 2].get(CacheService).get(`profile:${id}`)).toEqual({ id, n: 20 });
      }),
    );
    expect(await apps[0].get(WriteBehindService).flush(30_000)).toBe(true);
    for (const id of ids) expect(database.get(id)).toEqual({ id, n: 20 });
    expect(persisted.length).toBeLessThan(1_000);
    expect(persisted.length).toBeGreaterThanOrEqual(50);
    // In order per key: an older value is never persisted after a newer one.
    for (const id of ids) {
      const ns = persisted.filter((profile) => profile.id === id).map((profile) => profile.n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
    expect(await apps[1].get(WriteBehindService).lag()).toEqual({ pending: 0, oldestMs: 0 });
  }, 60_000);

  it('retries a failed persist with the backoff, and says what is pending meanwhile', async () => {
    const service = apps[0].get(WriteBehindService);
    let open: () => void = () => undefined;
    gate = new Promise((resolve) => (open = resolve));
    try {
      await apps[0].get(Profiles).save({ id: 'held-1', n: 1 });
      await apps[1].get(Profiles).save({ id: 'held-2', n: 1 });
      await expect.poll(async () => (await service.lag()).pending).toBe(2);
      expect(database.has('held-1')).toBe(false);
      failures = 2;
      open();
      expect(await service.flush(30_000)).toBe(true);
      expect(failures).toBe(0);
      expect(database.get('held-1')).toEqual({ id: 'held-1', n: 1 });
      expect(database.get('held-2')).toEqual({ id: 'held-2', n: 1 });
    } finally {
      gate = undefined;
      failures = 0;
    }
  });

  it('flushes at shutdown: an instance closed right after its writes leaves them persisted', async () => {
    const leaving = await start();
    const ids = Array.from({ length: 30 }, (_, i) => `leaving-${i}`);
    for (const id of ids) await leaving.get(Profiles).save({ id, n: 7 });
    await leaving.close();
    for (const id of ids) expect(database.get(id)).toEqual({ id, n: 7 });
  });

  it('refuses a key function that gives no key, by name, before anything is written', async () => {
    const failed = await apps[0]
      .get(Profiles)
      .keyless({ id: 'x', n: 1 })
      .catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(InvalidOptionError);
    expect((failed as Error).message).toMatch(/@WriteBehind on Profiles\.keyless\.key/);
    expect(await apps[0].get(WriteBehindService).lag()).toEqual({ pending: 0, oldestMs: 0 });
  });
});

describe('@WriteBehind when Redis is down', () => {
  const own = ownRedisServer();
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: own.server.address, ...QUICK_OUTAGES, queues }, { providers: [Profiles] });
  });
  afterAll(() => app?.close());

  it('fails the call with RedisUnavailableError (503): nothing cached, nothing persisted', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      await own.server.stop();
      const failed = await app
        .get(Profiles)
        .save({ id: 'down', n: 1 })
        .catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(RedisUnavailableError);
      expect((failed as RedisUnavailableError).getStatus()).toBe(503);
      await own.server.start();
      // lag() fails while the connection is down (a cache read would not: it fails open), so it waits for the reconnection
      await expect
        .poll(
          () =>
            app
              .get(WriteBehindService)
              .lag()
              .catch(() => 'unreachable'),
          { timeout: 5_000 },
        )
        .toEqual({ pending: 0, oldestMs: 0 });
      expect(await app.get(CacheService).get('profile:down')).toBeUndefined();
      expect(database.has('down')).toBe(false);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
