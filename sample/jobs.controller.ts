import { Controller, Get, HttpCode, Post } from '@nestjs/common';
import { LeaderService, ScheduledJobsService, type JobCounts, type JobRun } from '../lib/index.js';
import { NIGHTLY_REPORT_CRON, NightlyReportJob, type NightlyReport } from './nightly-report.job.js';
import { ORDER_STATS_LEADER, OrderStatsPoller } from './order-stats.poller.js';

/** The app's scheduled jobs: the nightly report (once per fire, fleet-wide) and a leader-only poller. */
@Controller('jobs')
export class JobsController {
  constructor(
    private readonly nightlyReport: NightlyReportJob,
    private readonly jobs: ScheduledJobsService,
    private readonly leaders: LeaderService,
    private readonly poller: OrderStatsPoller,
  ) {}

  /**
   * Runs the nightly report by hand, unless a run is under way on any instance. Call it twice at once: one runs, one is skipped.
   * `curl -X POST http://127.0.0.1:3000/jobs/nightly-report/run & curl -X POST http://127.0.0.1:3000/jobs/nightly-report/run; wait`
   */
  @Post('nightly-report/run')
  @HttpCode(200)
  async runNightlyReport(): Promise<{ ran: true; report: NightlyReport } | { ran: false; reason: string }> {
    const report = await this.nightlyReport.run();
    return report ? { ran: true, report } : { ran: false, reason: 'skipped: another run holds the nightly-report lock' };
  }

  /**
   * The scheduled report's runs, from Redis: which instance ran each fire, when, for how long, how it ended.
   * `curl http://127.0.0.1:3000/jobs/nightly-report/runs`
   */
  @Get('nightly-report/runs')
  async nightlyReportRuns(): Promise<{ schedule: string; runs: JobRun[]; counts: JobCounts }> {
    const [runs, counts] = await Promise.all([this.jobs.runs('nightly-report'), this.jobs.counts('nightly-report')]);
    return { schedule: NIGHTLY_REPORT_CRON, runs, counts };
  }

  /**
   * Whether this instance leads the order-stats poller, and what it polled.
   * `curl http://127.0.0.1:3000/jobs/order-stats`
   */
  @Get('order-stats')
  async orderStats(): Promise<{ leader: boolean; polls: number; openOrders: number | null }> {
    return {
      leader: await this.leaders.leads(ORDER_STATS_LEADER.name, { lease: ORDER_STATS_LEADER.lease }),
      polls: this.poller.polls,
      openOrders: this.poller.openOrders ?? null,
    };
  }
}
