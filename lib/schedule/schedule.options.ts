import type { Duration } from '../core/duration.js';

/** Injection token of the resolved `schedule` options. */
export const SCHEDULE_OPTIONS = Symbol('RedisPatterns:ScheduleOptions');

/**
 * Where scheduled jobs read the time to tell which fire a timer belongs to: `Date` by default.
 * Replace it to run instances on a clock of their own (tests offset instances' clocks with it).
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, schedule: { clock: { now: () => Date.now() + 1_500 } } });
 */
export interface ScheduleClock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/**
 * The `schedule` section of the module options: defaults of `@OncePerFire` jobs and of leaders.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, schedule: { lease: '1m', history: 50 } });
 */
export interface ScheduleOptions {
  /**
   * The lease of a run while it runs (renewed every third of it) and of a leader. A crashed
   * winner's run is recorded as abandoned once it lapses. Default `'30s'`.
   * @example { lease: '1m' }
   */
  lease?: Duration;
  /** How many runs each job keeps in its history (at most 1000). Default 20. @example { history: 100 } */
  history?: number;
  /**
   * How long a job's claims, history and counts stay in Redis after its last fire: longer than the
   * longest gap between two fires (catch-up needs the last one). Default `'30d'`.
   * @example { retain: '90d' }
   */
  retain?: Duration;
  /** This instance's clock (see {@link ScheduleClock}). Default: `Date`. @example { clock: { now: () => Date.now() } } */
  clock?: ScheduleClock;
  /**
   * Whether fires are named by the Redis server's clock: this instance's clock corrected by its
   * offset from the server's, measured at startup and at every claim (default `true`), so instances
   * whose clocks disagree still name a fire the same way. `false`: by this instance's clock as is.
   * @example { serverClock: false }
   */
  serverClock?: boolean;
  /** How this instance names itself in the run history. Default `<hostname>:<pid>`. @example { instance: process.env.POD_NAME } */
  instance?: string;
}

/**
 * How a `@OncePerFire` job (or one wrapped with `ScheduledJobsService.oncePerFire`) runs.
 *
 * @example
 * @Cron('0 3 * * *', { name: 'nightly-report', timeZone: 'Europe/Paris' })
 * @OncePerFire({ overlap: 'skip', catchUp: 'last' })
 * async nightlyReport() { ... }
 */
export interface OncePerFireOptions {
  /**
   * A fire that comes while the previous run of the job is still running on any instance is
   * `'skip'`ped (default) or `'queue'`d: it runs when that run ends (at most one fire waits; later
   * ones are skipped). Both are counted.
   * @example { overlap: 'queue' }
   */
  overlap?: 'skip' | 'queue';
  /**
   * `'last'`: at startup, when the job's last fire was missed (every instance was down over it),
   * it runs once, on one instance. Default `'none'`.
   * @example { catchUp: 'last' }
   */
  catchUp?: 'none' | 'last';
  /**
   * What a fire does when Redis cannot be reached: `'skip'` (default: counted, the outage logged
   * once) or `'run-locally'` (every instance runs it: duplicates rather than gaps).
   * @example { whenRedisDown: 'run-locally' }
   */
  whenRedisDown?: 'skip' | 'run-locally';
  /** The run's lease, renewed every third of it while it runs. Default: the module's `schedule.lease`. @example { lease: '2m' } */
  lease?: Duration;
}

/**
 * A job added at runtime through `SchedulerRegistry`, wrapped with `ScheduledJobsService.oncePerFire`:
 * a cron job is found in the registry by its name; an interval job says its period.
 *
 * @example
 * const tick = this.jobs.oncePerFire('sync', () => this.sync(), { interval: '10s' });
 * this.registry.addInterval('sync', setInterval(tick, 10_000));
 */
export interface RuntimeJobOptions extends OncePerFireOptions {
  /** The period of a job run by `setInterval` (not needed for a `CronJob` added to the registry under the same name). @example { interval: '10s' } */
  interval?: Duration;
}

/** How a run ended: `'abandoned'` when its lease lapsed before it finished (its instance died or stalled). */
export type JobRunOutcome = 'succeeded' | 'failed' | 'abandoned';

/** One run of a job, as kept in its history in Redis. */
export interface JobRun {
  /** The fire it ran for: its scheduled instant (ms since the epoch), not when a timer went off. */
  fire: number;
  instance: string;
  /** When it started, by the Redis server's clock (ms since the epoch). */
  startedAt: number;
  /** Absent for an abandoned run. */
  durationMs?: number;
  outcome: JobRunOutcome;
  /** The failed run's error message. */
  error?: string;
  /** Run at startup for a fire every instance missed (`catchUp: 'last'`). */
  catchUp?: true;
  /** It finished after its lease had lapsed (another instance may have run the next fire meanwhile). */
  leaseLost?: true;
}

/** What happened to a job's fires, fleet-wide (from Redis) and on this instance (while Redis was down). */
export interface JobCounts {
  succeeded: number;
  failed: number;
  abandoned: number;
  /** Fires that came while a run was under way (`overlap: 'skip'`, or a second waiting fire with `'queue'`). */
  skipped: number;
  /** Fires that waited for the run under way (`overlap: 'queue'`). */
  queued: number;
  /** Fires this instance skipped because Redis could not be reached. */
  skippedRedisDown: number;
  /** Fires this instance ran without a claim because Redis could not be reached (`whenRedisDown: 'run-locally'`). */
  ranLocally: number;
}

/**
 * A leader election's settings.
 * @example this.leaders.elect('poller', { lease: '10s' })
 */
export interface LeaderOptions {
  /** The leader's lease, renewed every third of it; a dead leader is replaced within it (plus a third). Default: `schedule.lease`. */
  lease?: Duration;
}
