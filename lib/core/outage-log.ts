import type { Logger } from '@nestjs/common';

/** How long no call may fail before an outage counts as over. */
const QUIET_MS = 1_000;

/**
 * Logs a feature's Redis outage once when it begins and once when it ends. On a Cluster where one
 * master fails, calls to the other masters keep succeeding in between: the outage only counts as
 * over once no call has failed for a second, so a partial outage is not logged on every request.
 *
 * @example
 * const outage = new OutageLog(logger, (reason) => `Redis is unavailable to X (${reason})`, 'Redis is available to X again');
 * try { await work(); outage.succeeded(); } catch (error) { outage.failed(error); }
 */
export class OutageLog {
  private down = false;
  private lastFailureAt = 0;

  constructor(
    private readonly logger: Logger,
    private readonly downMessage: (reason: string) => string,
    private readonly backMessage: string,
  ) {}

  failed(error: unknown): void {
    this.lastFailureAt = Date.now();
    if (this.down) return;
    this.down = true;
    this.logger.warn(this.downMessage((error as Error)?.message ?? String(error)));
  }

  succeeded(): void {
    if (!this.down || Date.now() - this.lastFailureAt < QUIET_MS) return;
    this.down = false;
    this.logger.log(this.backMessage);
  }
}
