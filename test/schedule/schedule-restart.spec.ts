import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OncePerFire, ScheduledJobsService } from '../../lib/index.js';
import { RedisTestServer } from '../support/redis-server.js';
import { QUICK_OUTAGES, startContext, uniquePrefix } from '../support/testing-app.js';

const fires: number[] = [];

@Injectable()
class Heartbeat {
  constructor(private readonly jobs: ScheduledJobsService) {}

  @Cron('* * * * * *', { name: 'heartbeat' })
  @OncePerFire()
  beat() {
    fires.push(this.jobs.current()!.fire);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('scheduled jobs when Redis restarts in the middle (AOF, appendfsync always)', () => {
  let server: RedisTestServer;
  beforeAll(async () => {
    server = await RedisTestServer.start({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  });
  afterAll(() => server?.destroy());

  it('fires during the outage are skipped and counted (logged once per instance), none runs twice, and the history survives the restart', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const keyPrefix = uniquePrefix();
    const apps: INestApplicationContext[] = await Promise.all(
      [0, 1].map(() =>
        startContext(
          { connection: server.address, keyPrefix, ...QUICK_OUTAGES },
          { imports: [ScheduleModule.forRoot()], providers: [Heartbeat] },
        ),
      ),
    );
    try {
      await sleep(2_200);
      const beforeCrash = fires.length;
      await server.kill();
      await sleep(2_000);
      await server.start();
      // Runs resume once both the connection and the first reading of the server's clock are back:
      // waited for, not assumed within a fixed time (on a loaded machine it took more than 2.5 s).
      await expect.poll(() => fires.length, { timeout: 15_000 }).toBeGreaterThan(beforeCrash);
      await sleep(1_000);
      // Each instance's own count of the fires it skipped while Redis was away, beside the fleet's.
      const counts = await Promise.all(apps.map((app) => app.get(ScheduledJobsService).counts('heartbeat')));
      const local = counts.map((count) => count.skippedRedisDown);
      await Promise.all(apps.map((app) => app.close()));
      const jobs = await startContext({ connection: server.address, keyPrefix });
      const history = await jobs.get(ScheduledJobsService).runs('heartbeat');
      await jobs.close();
      expect(new Set(fires).size).toBe(fires.length);
      expect(beforeCrash).toBeGreaterThanOrEqual(2);
      expect(fires.length).toBeGreaterThan(beforeCrash); // runs resumed after the restart
      expect(local[0] + local[1]).toBeGreaterThanOrEqual(2); // each instance skipped the fires of the outage
      expect(history.map((run) => run.fire).sort()).toEqual([...fires].sort()); // persisted through the restart
      expect(counts[0].succeeded).toBe(fires.length);
      const outages = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('to scheduled jobs'));
      expect(outages.length).toBeGreaterThanOrEqual(2);
      expect(outages.length).toBeLessThanOrEqual(2 * 2);
      console.log(
        `[schedule restart] 2 instances, a fire every second, Redis down 2s: ${fires.length} runs, ${local[0] + local[1]} fires skipped by the instances during the outage, 0 twice, history kept`,
      );
    } finally {
      await Promise.all(apps.map((app) => app.close().catch(() => undefined)));
      vi.restoreAllMocks();
    }
  }, 30_000);
});
