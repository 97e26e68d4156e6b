import { Injectable, Logger } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService, OncePerFire, ScheduledJobsService, WithLock } from '../lib/index.js';
import { Database } from './database.js';

export interface NightlyReport {
  invoicedOrders: number;
  paidOrders: number;
  collectedCents: number;
  startedAt: string;
  finishedAt: string;
  /** The fencing token of the run's lock (a run triggered by hand), or the fire's scheduled instant (a scheduled run). */
  fencingToken: number;
}

/** How long building the (pretend) report takes. */
const REPORT_WORK_MS = 300;

/** When the report runs: every night at 03:00 UTC, or as `NIGHTLY_REPORT_CRON` says (the e2e test runs it every 2 seconds). */
export const NIGHTLY_REPORT_CRON = process.env.NIGHTLY_REPORT_CRON ?? '0 0 3 * * *';

/**
 * The nightly report, a real `@Cron` job that every instance of the app schedules: `@OncePerFire`
 * lets exactly one instance run each night's fire, even when instances' clocks disagree or one
 * starts late, and records each run in Redis (`GET /jobs/nightly-report/runs`). With
 * `catchUp: 'last'`, a night missed while every instance was down runs once at the next startup.
 *
 * `POST /jobs/nightly-report/run` builds it by hand under a lock (`@WithLock`): the instance that
 * takes the lock runs it, the others find it busy and skip the call. A lock prevents overlapping
 * runs, not a second run after the first has finished; `@OncePerFire` prevents both.
 */
@Injectable()
export class NightlyReportJob {
  private readonly logger = new Logger('NightlyReport');

  constructor(
    private readonly db: Database,
    private readonly locks: LockService,
    private readonly jobs: ScheduledJobsService,
  ) {}

  /** The scheduled run: one instance per fire, fleet-wide. */
  @Cron(NIGHTLY_REPORT_CRON, { name: 'nightly-report', timeZone: 'UTC' })
  @OncePerFire({ catchUp: 'last' })
  async scheduled(): Promise<void> {
    const { fire, signal } = this.jobs.current()!;
    const report = await this.build(fire, signal);
    this.logger.log(`Nightly report of ${new Date(fire).toISOString()}: ${report.paidOrders}/${report.invoicedOrders} orders paid`);
  }

  /** Resolves with the report, or with undefined when another run (on any instance) holds the lock. */
  @WithLock({ key: 'nightly-report', ttl: '1m', onBusy: 'skip' })
  async run(): Promise<NightlyReport | undefined> {
    const lock = this.locks.current()!;
    this.logger.log(`Building the nightly report by hand (fencing token ${lock.fencingToken})`);
    return this.build(lock.fencingToken, lock.signal);
  }

  private async build(fencingToken: number, signal: AbortSignal): Promise<NightlyReport> {
    const startedAt = new Date().toISOString();
    const [totals] = await this.db.query<{ invoiced: number | string; paid: number | string; collected: number | string | null }>(
      `select count(*) as invoiced, count(*) filter (where status = 'paid') as paid, sum(total_cents - balance_cents) as collected from order_balances`,
    );
    // A long job stops as soon as its lease is known to be lost (another instance may be running it by then).
    await sleep(REPORT_WORK_MS, undefined, { signal });
    return {
      invoicedOrders: Number(totals.invoiced),
      paidOrders: Number(totals.paid),
      collectedCents: Number(totals.collected ?? 0),
      startedAt,
      finishedAt: new Date().toISOString(),
      fencingToken,
    };
  }
}
