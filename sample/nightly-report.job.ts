import { Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService, WithLock } from '../lib/index.js';
import { Database } from './database.js';

export interface NightlyReport {
  invoicedOrders: number;
  paidOrders: number;
  collectedCents: number;
  startedAt: string;
  finishedAt: string;
  /** The fencing token of the run's lock. */
  fencingToken: number;
}

/** How long building the (pretend) report takes. */
const REPORT_WORK_MS = 300;

/**
 * A job that every instance of the app schedules, but only one runs at a time. The sample has no
 * scheduler, so `POST /jobs/nightly-report/run` triggers it; in an app with @nestjs/schedule it is
 * `@Cron('0 3 * * *')` above `@WithLock`. The instance that takes the lock runs the job; the others
 * find it busy and skip the call (`onBusy: 'skip'`: it returns undefined). The lock's lease is 1
 * minute, renewed every 20s while the job runs, so a crashed instance holds it up at most a minute.
 *
 * The lock prevents overlapping runs, not a second run after the first has finished: if one
 * instance's clock is late by more than the job takes, it runs the job again. For "once a night",
 * also record the night as done (a row keyed by the date), or take a key per night that is never
 * released: `locks.tryAcquire('nightly-report:' + date, { ttl: '23h' })`.
 */
@Injectable()
export class NightlyReportJob {
  private readonly logger = new Logger('NightlyReport');

  constructor(
    private readonly db: Database,
    private readonly locks: LockService,
  ) {}

  /** Resolves with the report, or with undefined when another run (on any instance) holds the lock. */
  @WithLock({ key: 'nightly-report', ttl: '1m', onBusy: 'skip' })
  async run(): Promise<NightlyReport | undefined> {
    const lock = this.locks.current()!;
    const startedAt = new Date().toISOString();
    this.logger.log(`Building the nightly report (fencing token ${lock.fencingToken})`);
    const [totals] = await this.db.query<{ invoiced: number | string; paid: number | string; collected: number | string | null }>(
      `select count(*) as invoiced, count(*) filter (where status = 'paid') as paid, sum(total_cents - balance_cents) as collected from order_balances`,
    );
    // A long job stops as soon as its lease is known to be lost (another instance may be running it by then).
    await sleep(REPORT_WORK_MS, undefined, { signal: lock.signal });
    return {
      invoicedOrders: Number(totals.invoiced),
      paidOrders: Number(totals.paid),
      collectedCents: Number(totals.collected ?? 0),
      startedAt,
      finishedAt: new Date().toISOString(),
      fencingToken: lock.fencingToken,
    };
  }
}
