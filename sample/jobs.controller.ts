import { Controller, HttpCode, Post } from '@nestjs/common';
import { NightlyReportJob, type NightlyReport } from './nightly-report.job.js';

/** Triggers for the jobs a scheduler would run (the sample has none). */
@Controller('jobs')
export class JobsController {
  constructor(private readonly nightlyReport: NightlyReportJob) {}

  /**
   * Runs the nightly report, unless a run is under way on any instance. Call it twice at once: one runs, one is skipped.
   * `curl -X POST http://127.0.0.1:3000/jobs/nightly-report/run & curl -X POST http://127.0.0.1:3000/jobs/nightly-report/run; wait`
   */
  @Post('nightly-report/run')
  @HttpCode(200)
  async runNightlyReport(): Promise<{ ran: true; report: NightlyReport } | { ran: false; reason: string }> {
    const report = await this.nightlyReport.run();
    return report ? { ran: true, report } : { ran: false, reason: 'skipped: another run holds the nightly-report lock' };
  }
}
