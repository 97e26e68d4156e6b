import { Inject, Injectable, Logger, type BeforeApplicationShutdown, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { toPositiveInteger, toTextArgument } from '../core/validation.js';
import { FireClaims } from './schedule.claims.js';
import type { CronTimeLike, JobTimer } from './schedule.fire-time.js';
import { resolveInterval, resolveJobOptions, type ResolvedScheduleOptions } from './schedule.options-validator.js';
import { SCHEDULE_OPTIONS, type JobCounts, type JobRun, type RuntimeJobOptions } from './schedule.options.js';
import { FireRunner, type CurrentFire, type FireOutcome, type RunnableJob } from './schedule.runner.js';
import { ONCE_PER_FIRE, scheduledMethodOf, type OncePerFireTarget } from './schedule.target.js';

/** A job this instance claims fires of: how its fires come (found lazily for cron jobs, in the SchedulerRegistry). */
interface Job extends RunnableJob {
  timer: JobTimer | undefined;
}

/** The callback of a runtime job (for a `CronJob` or `setInterval`); `fire()` resolves with what the fire came to on this instance. */
export interface OncePerFireTick {
  (): Promise<void>;
  fire(): Promise<FireOutcome>;
}

/** What the service needs of @nestjs/schedule's SchedulerRegistry. */
interface CronRegistry {
  getCronJob(name: string): { cronTime: CronTimeLike };
}

/**
 * Scheduled jobs that run once per fire across every instance (`@OncePerFire` beside
 * @nestjs/schedule's `@Cron` / `@Interval`, or `oncePerFire` for jobs added at runtime), and their
 * run history in Redis. Each fire is claimed in one round trip, by the job's name and the fire's
 * scheduled instant: one instance runs it, under a lease renewed while it runs; the others skip it.
 *
 * @example
 * @Cron('0 3 * * *', { name: 'nightly-report' })
 * @OncePerFire()
 * async nightlyReport() { ... }
 *
 * const last = await this.jobs.lastRun('nightly-report'); // { fire, instance, startedAt, durationMs, outcome }
 */
@Injectable()
export class ScheduledJobsService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:Schedule');
  private readonly claims: FireClaims;
  private readonly runner: FireRunner;
  private readonly jobs = new Map<string, Job>();
  private readonly decorated = new Map<OncePerFireTarget, { job: Job; catchUp: () => unknown }>();
  private registry: Promise<CronRegistry> | undefined;

  constructor(
    connections: RedisConnections,
    keys: RedisKeys,
    @Inject(SCHEDULE_OPTIONS) private readonly settings: ResolvedScheduleOptions,
    private readonly explorer: DecoratedMethodsExplorer,
    private readonly moduleRef: ModuleRef,
  ) {
    const outage = new OutageLog(this.logger, 'scheduled jobs', 'fires are skipped (or run locally where a job says so)');
    this.claims = new FireClaims(connections.get(), keys, settings, outage);
    this.runner = new FireRunner(this.claims, outage, this.logger, settings.clock, settings.serverClock);
  }

  /** Finds the `@OncePerFire` methods; a job without a name, or without `@Cron` / `@Interval`, fails startup. */
  onModuleInit(): void {
    for (const found of this.explorer.find(ONCE_PER_FIRE, 'OncePerFire')) {
      const target = found.metadata;
      const scheduled = scheduledMethodOf(target.wrapped);
      if (!scheduled.cron && scheduled.intervalMs === undefined)
        throw new RedisPatternsError(`${target.where} needs @Cron(...) or @Interval(...) of @nestjs/schedule on the same method.`);
      if (!scheduled.name)
        throw new RedisPatternsError(
          `${target.where}: the job has no name, and fires are claimed by name. Give it one: @Cron('0 3 * * *', { name: 'nightly-report' }) or @Interval('sync', 10_000).`,
        );
      const job = this.register(scheduled.name, resolveJobOptions(target.options, target.where, this.settings), target.where);
      if (scheduled.intervalMs !== undefined) job.timer = { everyMs: scheduled.intervalMs };
      this.decorated.set(target, { job, catchUp: () => target.original.call(found.instance) });
    }
  }

  /**
   * When this instance has `@OncePerFire` jobs: sets its clock by the Redis server's (fires are
   * named by it), then runs the missed fire of each `@OncePerFire({ catchUp: 'last' })` job (in the
   * background: one instance wins it). An app without such jobs does not touch Redis here.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (this.decorated.size === 0) return;
    await this.runner.syncClock();
    for (const { job, catchUp } of this.decorated.values()) if (job.options.catchUp === 'last') this.catchUp(job, catchUp);
  }

  /** Waits for the runs under way, so that their end is recorded before the connection closes. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.runner.inFlight]);
  }

  /**
   * Wraps the callback of a job added at runtime through `SchedulerRegistry` so that one instance
   * runs each fire, as `@OncePerFire` does. A `CronJob` must be registered under `name` (its
   * expression tells the fires apart); a `setInterval` job gives its `interval`. The returned
   * function is the job's callback; its `fire()` does the same and resolves with what the fire came to.
   * @throws InvalidOptionError naming the option at fault; RedisPatternsError when `name` is already a job of this instance.
   * @example
   * const job = new CronJob('0 * * * * *', this.jobs.oncePerFire('sync', () => this.sync()));
   * this.registry.addCronJob('sync', job);
   * job.start();
   */
  oncePerFire(name: string, callback: () => unknown, options: RuntimeJobOptions = {}): OncePerFireTick {
    const where = `oncePerFire("${toTextArgument('name', name)}") options`;
    const job = this.register(name, resolveJobOptions(options, where, this.settings, true), where);
    void this.runner.syncClock();
    const intervalMs = resolveInterval(options, where);
    if (intervalMs !== undefined) job.timer = { everyMs: intervalMs };
    if (job.options.catchUp === 'last') setImmediate(() => this.catchUp(job, callback));
    const fire = () => this.fire(job, callback);
    return Object.assign(async () => void (await fire()), { fire });
  }

  /**
   * The job's last runs (at most `count`, default: all the history keeps), newest first.
   * @example
   * const runs = await this.jobs.runs('nightly-report', 5);
   */
  async runs(name: string, count: number = this.settings.history): Promise<JobRun[]> {
    return this.claims.runs(toTextArgument('name', name), toPositiveInteger('count', count));
  }

  /**
   * The job's last run, or undefined when it has none.
   * @example
   * const last = await this.jobs.lastRun('nightly-report');
   * if (last?.outcome === 'failed') alert(last.error);
   */
  async lastRun(name: string): Promise<JobRun | undefined> {
    const [last] = await this.runs(name, 1);
    return last;
  }

  /**
   * What came of the job's fires: runs and skips fleet-wide, and this instance's fires lost to an outage.
   * @example
   * const { succeeded, failed, skipped } = await this.jobs.counts('nightly-report');
   */
  async counts(name: string): Promise<JobCounts> {
    const local = this.jobs.get(toTextArgument('name', name))?.local ?? { skippedRedisDown: 0, ranLocally: 0 };
    return { ...(await this.claims.counts(name)), ...local };
  }

  /**
   * The fire the code runs for, inside a job's run: its `signal` aborts when the run's lease is lost.
   * @example
   * await this.export(rows, { signal: this.jobs.current()?.signal });
   */
  current(): CurrentFire | undefined {
    return this.runner.current$.get();
  }

  /** @internal Called by a `@OncePerFire` method when its timer goes off. */
  async fireDecorated(target: OncePerFireTarget, call: () => unknown): Promise<FireOutcome> {
    const found = this.decorated.get(target);
    if (!found)
      throw new RedisPatternsError(`${target.where}: its class was not found by Nest at startup (it must be a singleton provider).`);
    return this.fire(found.job, call);
  }

  private async fire(job: Job, call: () => unknown): Promise<FireOutcome> {
    return this.runner.run(job, await this.timerOf(job), call);
  }

  private catchUp(job: Job, call: () => unknown): void {
    this.timerOf(job)
      .then((timer) => this.runner.run(job, timer, call, true))
      .catch((error: unknown) =>
        this.logger.error(`Scheduled job "${job.name}" could not catch up: ${(error as Error)?.message ?? error}`),
      );
  }

  private register(name: string, options: RunnableJob['options'], where: string): Job {
    if (this.jobs.has(name))
      throw new RedisPatternsError(`${where}: "${name}" is already a job of this app; each job needs a name of its own.`);
    const job: Job = { name, options, local: { skippedRedisDown: 0, ranLocally: 0 }, timer: undefined };
    this.jobs.set(name, job);
    return job;
  }

  /** How the job's fires come: its period, or its cron expression from the SchedulerRegistry. */
  private async timerOf(job: Job): Promise<JobTimer> {
    if (job.timer) return job.timer;
    const registry = await this.schedulerRegistry();
    let cronJob;
    try {
      cronJob = registry.getCronJob(job.name);
    } catch (error) {
      throw new RedisPatternsError(
        `Scheduled job "${job.name}" is not a cron job of the SchedulerRegistry: register its CronJob under that name, or give oncePerFire an interval.`,
        { cause: error },
      );
    }
    return (job.timer = { cron: cronJob.cronTime });
  }

  /** @nestjs/schedule's SchedulerRegistry, loaded only when a cron job needs it (an optional peer). */
  private schedulerRegistry(): Promise<CronRegistry> {
    this.registry ??= import('@nestjs/schedule').then(
      (schedule) => this.moduleRef.get(schedule.SchedulerRegistry, { strict: false }),
      (error: unknown) => {
        this.registry = undefined;
        throw new RedisPatternsError('Cron jobs once per fire need @nestjs/schedule: npm install @nestjs/schedule', { cause: error });
      },
    );
    return this.registry;
  }
}
