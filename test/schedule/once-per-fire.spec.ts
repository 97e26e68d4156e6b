import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { Cron, Interval, ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { InvalidOptionError, OncePerFire, RedisConnections, RedisKeys, ScheduledJobsService, type ScheduleClock } from '../../lib/index.js';
import { freePort, HOST } from '../support/redis-server.js';
import { startContext, topologies, uniquePrefix } from '../support/testing-app.js';

/** A clock the test moves by hand: fires are told apart by it, not by when the test calls. */
class HandClock implements ScheduleClock {
  constructor(public at = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.at;
  }
}

const SECOND = 1_000;
const HOUR = 3_600_000;
const ran: { app: string; fire: number }[] = [];

@Injectable()
class EverySecond {
  app = '';
  constructor(private readonly jobs: ScheduledJobsService) {}

  @Cron('* * * * * *', { name: 'every-second' })
  @OncePerFire()
  async tick() {
    ran.push({ app: this.app, fire: this.jobs.current()!.fire });
  }
}

describe.each(topologies)('@OncePerFire and oncePerFire, on $topology', ({ connection }) => {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    vi.restoreAllMocks();
  });
  const start = async (keyPrefix: string, clock = new HandClock(), history = 20) => {
    const app = await startContext({
      connection: connection(),
      keyPrefix,
      schedule: { clock, serverClock: false, history, lease: '300ms' },
    });
    apps.push(app);
    return app.get(ScheduledJobsService);
  };

  it('two instances of a @Cron job every second: each fire runs once, on one instance, in the history', async () => {
    ran.length = 0;
    const keyPrefix = uniquePrefix();
    const instances = await Promise.all(
      ['a', 'b'].map(async (name) => {
        const app = await startContext(
          { connection: connection(), keyPrefix },
          { imports: [ScheduleModule.forRoot()], providers: [EverySecond] },
        );
        apps.push(app);
        app.get(EverySecond).app = name;
        return app;
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 3_300));
    // Stopped on both, then looked at once a fire already under way (its claim sent, its run not yet
    // counted) has finished and been recorded: cron's stop() does not wait for it.
    for (const app of instances) void app.get(SchedulerRegistry).getCronJob('every-second').stop();
    await new Promise((resolve) => setTimeout(resolve, SECOND));
    const jobs = instances[0].get(ScheduledJobsService);
    await expect.poll(async () => (await jobs.counts('every-second')).succeeded).toBe(ran.length);
    const fires = ran.map((run) => run.fire).sort();
    expect(ran.length).toBeGreaterThanOrEqual(3);
    expect(new Set(fires).size).toBe(fires.length); // none twice
    expect(fires.every((fire, at) => at === 0 || fire - fires[at - 1] === SECOND)).toBe(true); // none missing
    const history = await jobs.runs('every-second');
    expect(history.map((run) => run.fire)).toEqual([...fires].reverse());
    expect(history.every((run) => run.outcome === 'succeeded' && run.durationMs! >= 0)).toBe(true);
    expect(await jobs.lastRun('every-second')).toEqual(history[0]);
  });

  it('a runtime job: a fire runs once whoever calls it, the history keeps the last N, a failure is recorded and logged once', async () => {
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const keyPrefix = uniquePrefix();
    const clock = new HandClock();
    const [one, two] = await Promise.all([start(keyPrefix, clock, 3), start(keyPrefix, clock, 3)]);
    let calls = 0;
    const work = () => {
      if (++calls === 4) throw new Error('the report server said no');
    };
    const tickOne = one.oncePerFire('report', work, { interval: '1s' });
    const tickTwo = two.oncePerFire('report', work, { interval: '1s' });
    const outcomes = [];
    for (let fire = 0; fire < 5; fire++) {
      clock.at += SECOND;
      outcomes.push(await tickOne.fire(), await tickTwo.fire(), await tickOne.fire());
    }
    expect(outcomes).toEqual(Array.from({ length: 5 }, () => ['ran', 'done', 'done']).flat());
    expect(calls).toBe(5);
    const history = await two.runs('report');
    expect(history.map((run) => [run.fire, run.outcome])).toEqual([
      [clock.at, 'succeeded'],
      [clock.at - SECOND, 'failed'],
      [clock.at - 2 * SECOND, 'succeeded'],
    ]);
    expect(history[1].error).toBe('the report server said no');
    expect(await one.counts('report')).toEqual({
      succeeded: 4,
      failed: 1,
      abandoned: 0,
      skipped: 0,
      queued: 0,
      skippedRedisDown: 0,
      ranLocally: 0,
    });
    expect(error.mock.calls.map(([message]) => String(message))).toEqual([
      `Scheduled job "report" failed (fire of ${new Date(clock.at - SECOND).toISOString()}): the report server said no`,
    ]);
    // Bounded: one list of N runs, one state, one counts hash, all in one slot; the lease is gone.
    const keys = apps[0].get(RedisKeys);
    const redis = apps[0].get(RedisConnections).get();
    expect(await redis.llen(keys.tagged(['sj', 'report'], 'runs'))).toBe(3);
    expect(await redis.exists(keys.tagged(['sj', 'report'], 'lease'))).toBe(0);
  });

  it.each(['skip', 'queue'] as const)(
    'overlap %s: a fire during a run on any instance is skipped or queued, and counted',
    async (overlap) => {
      const keyPrefix = uniquePrefix();
      const clock = new HandClock();
      const [one, two] = await Promise.all([start(keyPrefix, clock), start(keyPrefix, clock)]);
      let release!: () => void;
      const running: number[] = [];
      let concurrent = 0;
      const work = (jobs: ScheduledJobsService) => async () => {
        running.push(jobs.current()!.fire);
        if (++concurrent > 1) throw new Error('two runs at once');
        if (running.length === 1) await new Promise<void>((resolve) => (release = resolve));
        concurrent--;
      };
      const tickOne = one.oncePerFire('slow', work(one), { interval: '1s', overlap });
      const tickTwo = two.oncePerFire('slow', work(two), { interval: '1s', overlap });
      const first = tickOne.fire();
      await expect.poll(() => running.length).toBe(1);
      clock.at += SECOND;
      const second = await tickTwo.fire();
      clock.at += SECOND;
      const third = await tickTwo.fire();
      release();
      expect(await first).toBe('ran');
      expect([second, third]).toEqual(overlap === 'skip' ? ['skipped', 'skipped'] : ['queued', 'skipped']);
      // A queued fire runs when the run under way ends, on the instance that ran it.
      expect(running).toEqual(overlap === 'skip' ? [clock.at - 2 * SECOND] : [clock.at - 2 * SECOND, clock.at - SECOND]);
      expect(await one.counts('slow')).toMatchObject(
        overlap === 'skip' ? { succeeded: 1, skipped: 2 } : { succeeded: 2, queued: 1, skipped: 1 },
      );
    },
  );

  it('catch-up: the last fire missed while every instance was down runs once at startup, on one of two instances', async () => {
    const keyPrefix = uniquePrefix();
    const clock = new HandClock();
    const before = await start(keyPrefix, clock);
    expect(await before.oncePerFire('nightly', () => undefined, { interval: '1h', catchUp: 'last' }).fire()).toBe('ran');
    await Promise.all(apps.splice(0).map((app) => app.close()));

    clock.at += 5 * 3_600_000; // all down for five fires
    const runs: string[] = [];
    const after = await Promise.all([start(keyPrefix, clock), start(keyPrefix, clock)]);
    after.forEach((jobs, at) => jobs.oncePerFire('nightly', () => runs.push(`instance ${at}`), { interval: '1h', catchUp: 'last' }));
    await expect.poll(async () => (await after[0].lastRun('nightly'))?.fire).toBe(clock.at);
    expect(runs).toHaveLength(1);
    expect(await after[1].lastRun('nightly')).toMatchObject({ fire: clock.at, outcome: 'succeeded', catchUp: true });
    expect((await after[0].counts('nightly')).succeeded).toBe(2);
  });

  it("named by the server's clock: a fire that comes before this instance has read that clock is named once it has, not by its own clock", async () => {
    const app = await startContext({
      connection: connection(),
      keyPrefix: uniquePrefix(),
      schedule: { clock: { now: () => Date.now() + HOUR }, lease: '300ms' },
    });
    apps.push(app);
    const redis = app.get(RedisConnections).get();
    const serverHour = async () => Math.floor(Number((await redis.time())[0]) / 3_600) * HOUR;
    const before = await serverHour();
    // Added and fired at once: its fire comes while the first reading of the server's clock is under way.
    const tick = app.get(ScheduledJobsService).oncePerFire('hourly', () => undefined, { interval: '1h' });
    expect(await tick.fire()).toBe('ran');
    const after = await serverHour();
    // By this instance's clock (an hour ahead) it would be the next hour's fire, run an hour early.
    expect([before, after]).toContain((await app.get(ScheduledJobsService).lastRun('hourly'))?.fire);
  });

  it('jobs added at runtime through the SchedulerRegistry: each fire of a CronJob runs once across two instances', async () => {
    const keyPrefix = uniquePrefix();
    const fires: number[] = [];
    const registries = await Promise.all(
      [0, 1].map(async () => {
        const app = await startContext({ connection: connection(), keyPrefix }, { imports: [ScheduleModule.forRoot()] });
        apps.push(app);
        const jobs = app.get(ScheduledJobsService);
        const registry = app.get(SchedulerRegistry);
        const job = CronJob.from({
          cronTime: '* * * * * *',
          onTick: jobs.oncePerFire('added', () => void fires.push(jobs.current()!.fire)),
        });
        registry.addCronJob('added', job);
        return job;
      }),
    );
    registries.forEach((job) => job.start());
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    registries.forEach((job) => void job.stop());
    expect(fires.length).toBeGreaterThanOrEqual(2);
    expect(new Set(fires).size).toBe(fires.length);
  });

  it('options are checked: the error names the option', async () => {
    const jobs = await start(uniquePrefix());
    expect(() => jobs.oncePerFire('bad', () => undefined, { overlap: 'wait' as 'skip' })).toThrow(
      new InvalidOptionError('oncePerFire("bad") options.overlap', "'skip' or 'queue'", 'wait'),
    );
    expect(() => jobs.oncePerFire('bad', () => undefined, { interval: '0s' })).toThrow(/oncePerFire\("bad"\) options.interval/);
    expect(() => jobs.oncePerFire('bad', () => undefined, { lease: '1ms' })).toThrow(/options.lease/);
    jobs.oncePerFire('twice', () => undefined, { interval: '1s' });
    expect(() => jobs.oncePerFire('twice', () => undefined, { interval: '1s' })).toThrow(/"twice" is already a job of this app/);
    expect(() => OncePerFire({ catchUp: 'all' as 'last' })).not.toThrow(); // checked when applied to a method
    expect(() => {
      class Bad {
        @OncePerFire({ catchUp: 'all' as 'last' })
        run() {}
      }
      return Bad;
    }).toThrow(/@OncePerFire on Bad.run.catchUp/);
    await expect(startContext({ connection: connection(), schedule: { history: 0 } })).rejects.toThrow(/schedule.history/);
    await expect(startContext({ connection: connection(), schedule: { clock: {} as ScheduleClock } })).rejects.toThrow(/schedule.clock/);
  });

  it('a @OncePerFire job without a name, or without @Cron / @Interval, fails startup with what to do', async () => {
    @Injectable()
    class Unnamed {
      @Cron('* * * * * *')
      @OncePerFire()
      tick() {}
    }
    @Injectable()
    class Unscheduled {
      @OncePerFire()
      tick() {}
    }
    @Injectable()
    class Named {
      @OncePerFire()
      @Interval('named', 60_000)
      tick() {}
    }
    const imports = [ScheduleModule.forRoot()];
    await expect(startContext({ connection: connection() }, { imports, providers: [Unnamed] })).rejects.toThrow(
      "@OncePerFire on Unnamed.tick: the job has no name, and fires are claimed by name. Give it one: @Cron('0 3 * * *', { name: 'nightly-report' }) or @Interval('sync', 10_000).",
    );
    await expect(startContext({ connection: connection() }, { imports, providers: [Unscheduled] })).rejects.toThrow(
      '@OncePerFire on Unscheduled.tick needs @Cron(...) or @Interval(...) of @nestjs/schedule on the same method.',
    );
    const app = await startContext({ connection: connection() }, { imports, providers: [Named] });
    apps.push(app);
    expect(await (app.get(Named).tick() as unknown as Promise<string>)).toBe('ran');
  });
});

describe.each([
  { topology: 'standalone', connection: (port: number) => ({ host: HOST, port }) },
  { topology: 'cluster', connection: (port: number) => ({ cluster: { nodes: [{ host: HOST, port }] } }) },
])('scheduled jobs with no Redis to reach, on $topology', ({ connection }) => {
  afterEach(() => vi.restoreAllMocks());

  it("fires are skipped and counted (logged once), or run on every instance with whenRedisDown: 'run-locally'", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const clock = new HandClock();
    const app = await startContext({
      connection: connection(await freePort()),
      connectTimeout: '200ms',
      reconnect: { minDelay: '20ms', maxDelay: '100ms' },
      schedule: { clock, serverClock: false },
    });
    const jobs = app.get(ScheduledJobsService);
    let ranLocally = 0;
    const skip = jobs.oncePerFire('gap', () => expect.unreachable(), { interval: '1s' });
    const local = jobs.oncePerFire('dup', () => void ranLocally++, { interval: '1s', whenRedisDown: 'run-locally' });
    for (let fire = 0; fire < 3; fire++) {
      clock.at += SECOND;
      expect([await skip.fire(), await local.fire()]).toEqual(['skipped-redis-down', 'ran-locally']);
    }
    expect(ranLocally).toBe(3);
    await expect(jobs.counts('gap')).rejects.toMatchObject({ statusCode: 503, feature: 'scheduled jobs' });
    await app.close();
    const messages = warn.mock.calls.map(([message]) => String(message)).filter((message) => message.includes('scheduled jobs'));
    expect(messages).toEqual([
      'Redis connection "default" is unavailable to scheduled jobs (no connection to the server); fires are skipped (or run locally where a job says so) until it is back',
    ]);
    expect(error.mock.calls).toEqual([]);
  });
});
