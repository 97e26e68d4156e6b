import { randomUUID } from 'node:crypto';
import type { Logger } from '@nestjs/common';
import type { OutageLog } from '../core/outage-log.js';
import { ScopedContext } from '../core/scoped-context.js';
import { isStoreFailure } from '../core/store-failure.js';
import type { FireClaims, HeldRun } from './schedule.claims.js';
import { fireAt, type JobTimer } from './schedule.fire-time.js';
import type { ResolvedJobOptions } from './schedule.options-validator.js';
import type { ScheduleClock } from './schedule.options.js';
import { RunLease } from './schedule.run-lease.js';
import { ServerClockOffset } from './schedule.server-clock.js';

/** How many times the server's clock is read at startup. */
const STARTUP_CLOCK_READINGS = 3;

/**
 * What a fire came to on this instance: `'ran'` (it won the fire and ran it), `'done'` (another
 * instance claimed it), `'skipped'` / `'queued'` (a run was under way), `'none'` (a catch-up with
 * nothing missed), `'skipped-redis-down'` / `'ran-locally'` (Redis could not be reached).
 */
export type FireOutcome = 'ran' | 'done' | 'skipped' | 'queued' | 'none' | 'skipped-redis-down' | 'ran-locally';

/** The fire a job's run is running for, inside it (`ScheduledJobsService.current()`). */
export interface CurrentFire {
  job: string;
  /** The fire's scheduled instant (ms since the epoch). */
  fire: number;
  /** Aborted when the run's lease is lost: another instance may take the job's next fire. */
  signal: AbortSignal;
}

/** A job as the runner knows it: its name, its options, and what this instance counted while Redis was away. */
export interface RunnableJob {
  name: string;
  options: ResolvedJobOptions;
  local: { skippedRedisDown: number; ranLocally: number };
}

/** Claims fires and runs the ones this instance wins, holding their lease and recording each run. */
export class FireRunner {
  readonly current$ = new ScopedContext<CurrentFire>();
  /** Runs under way, awaited at shutdown so that their end is recorded. */
  readonly inFlight = new Set<Promise<unknown>>();

  /** How far the Redis server's clock is ahead of this instance's (`schedule.clock`). */
  private readonly serverClock = new ServerClockOffset();

  constructor(
    private readonly claims: FireClaims,
    private readonly outage: OutageLog,
    private readonly logger: Logger,
    private readonly clock: ScheduleClock,
    /** Whether fires are named by the server's clock (else by `clock` as is). */
    private readonly byServerClock: boolean,
  ) {}

  /** The first measure of the server's clock, taken once it succeeds (every claim refreshes it). */
  private clockSynced: Promise<void> | undefined;

  /**
   * Sets this instance's idea of the server's clock, the first time it is called (when the first
   * job is known: an app without one never asks Redis), from a few readings (the quickest counts).
   * Redis away: left as it was, and tried again at the next call.
   */
  syncClock(): Promise<void> {
    this.clockSynced ??= (async () => {
      for (let reading = 0; reading < STARTUP_CLOCK_READINGS; reading++) {
        await this.measured(async () => ({ serverNow: await this.claims.serverTime() }));
      }
    })().catch(() => {
      this.clockSynced = undefined;
    });
    return this.clockSynced;
  }

  /**
   * Claims the fire of `job` that a timer going off now belongs to, by the server's clock (this
   * instance's, corrected by the offset measured), and when this instance wins it runs `call`
   * (then a fire that waited for it, if any). A timer that goes off before the first measure is
   * named once it is taken: named by an unset clock, it could take a fire of the past that no
   * other instance runs again, or one ahead before its time.
   */
  run(job: RunnableJob, timer: JobTimer, call: () => unknown, catchUp = false): Promise<FireOutcome> {
    const firedAt = this.clock.now();
    const running = (async () => {
      if (this.byServerClock) await this.syncClock();
      const fire = fireAt(timer, firedAt + (this.byServerClock ? this.serverClock.offsetMs : 0));
      return this.claimAndRun(job, fire, call, catchUp);
    })();
    this.inFlight.add(running);
    return running.finally(() => this.inFlight.delete(running));
  }

  private async claimAndRun(job: RunnableJob, fire: number, call: () => unknown, catchUp: boolean): Promise<FireOutcome> {
    const run: HeldRun = { fire, token: randomUUID(), startedAt: 0, catchUp };
    let claimed;
    try {
      claimed = await this.measured(() => this.claims.claim(job.name, run, job.options.leaseMs, job.options.overlap));
    } catch (error) {
      return this.whileRedisDown(job, error, fire, call);
    }
    if (claimed.outcome !== 'won') return claimed.outcome;
    for (let held: HeldRun | undefined = { ...run, startedAt: claimed.serverNow }; held;) held = await this.runHolding(job, held, call);
    return 'ran';
  }

  /** Runs a call that answers the server's time, and records it as a reading of the server's clock. */
  private async measured<T extends { serverNow: number }>(call: () => Promise<T>): Promise<T> {
    const sent = this.clock.now();
    const answer = await call();
    this.serverClock.record(sent, this.clock.now(), answer.serverNow);
    return answer;
  }

  /** Runs a won fire under its lease, then records it; resolves with a fire that waited for it (now this instance's), if any. */
  private async runHolding(job: RunnableJob, held: HeldRun, call: () => unknown): Promise<HeldRun | undefined> {
    const { leaseMs } = job.options;
    const lease = new RunLease(
      leaseMs,
      () => this.claims.renew(job.name, held, leaseMs),
      (error) => this.outage.report(error, `renew the lease of the run of "${job.name}"`),
    );
    const started = performance.now();
    const ended = await this.settle(job, held.fire, () =>
      this.current$.run({ job: job.name, fire: held.fire, signal: lease.signal }, call),
    );
    lease.end();
    try {
      return await this.claims.finish(
        job.name,
        held,
        { ...ended, durationMs: performance.now() - started },
        { token: randomUUID(), leaseMs },
      );
    } catch (error) {
      this.outage.report(error, `record the run of "${job.name}"`);
      return undefined;
    }
  }

  /** Redis could not answer the claim: the fire is skipped (counted), or run here where the job says so. A bug is thrown. */
  private async whileRedisDown(job: RunnableJob, error: unknown, fire: number, call: () => unknown): Promise<FireOutcome> {
    if (!isStoreFailure(error)) throw error;
    if (job.options.whenRedisDown === 'skip') {
      job.local.skippedRedisDown++;
      return 'skipped-redis-down';
    }
    job.local.ranLocally++;
    await this.settle(job, fire, call);
    return 'ran-locally';
  }

  /** Runs `call`; a failure is logged once, with the job's name, and returned (never thrown to the scheduler). */
  private async settle(job: RunnableJob, fire: number, call: () => unknown): Promise<{ error?: unknown }> {
    try {
      await call();
      return {};
    } catch (error) {
      this.logger.error(`Scheduled job "${job.name}" failed (fire of ${iso(fire)}): ${(error as Error)?.message ?? String(error)}`);
      return { error: error ?? new Error('undefined was thrown') };
    }
  }
}

function iso(instant: number): string {
  return new Date(instant).toISOString();
}
