import { Controller, HttpCode, Post } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { LockService, WithSemaphore } from '../lib/index.js';
import { Database } from './database.js';

/** How many sales exports may run at once, across every instance of the app. */
export const SALES_EXPORT_PERMITS = 2;

/** How long building the (pretend) export takes. */
const EXPORT_WORK_MS = 300;

export interface SalesExport {
  orders: number;
  collectedCents: number;
  /** How many exports (of every instance) held a permit when this one started, itself included: at most SALES_EXPORT_PERMITS. */
  running: number;
  /** The fencing token of the export's permit. */
  fencingToken: number;
}

/**
 * Sales exports, heavy on the database: at most {@link SALES_EXPORT_PERMITS} run at once across
 * every instance, with a semaphore (`@WithSemaphore`). A third waits up to 5 seconds for a
 * permit, then gets 409 (`LockNotAcquiredError`, reason `'timeout'`); while Redis is down, 503.
 * Each permit has a lease of 1 minute, renewed while the export runs, so an instance that crashes
 * mid-export gives its permit back within a minute.
 */
@Controller('reports')
export class ReportsController {
  constructor(
    private readonly db: Database,
    private readonly locks: LockService,
  ) {}

  /**
   * Builds the sales export. Start five at once: two run, three wait their turn.
   * `for i in 1 2 3 4 5; do curl -s -X POST http://127.0.0.1:3000/reports/sales/export & done; wait`
   */
  @Post('sales/export')
  @HttpCode(200)
  @WithSemaphore('sales-export', { permits: SALES_EXPORT_PERMITS, wait: '5s', ttl: '1m' })
  async exportSales(): Promise<SalesExport> {
    const permit = this.locks.current()!;
    const free = await this.locks.semaphore('sales-export', SALES_EXPORT_PERMITS).available();
    const [totals] = await this.db.query<{ orders: number | string; collected: number | string | null }>(
      'select count(*) as orders, sum(total_cents - balance_cents) as collected from order_balances',
    );
    // A long export stops as soon as its lease is known to be lost (another may have its permit by then).
    await sleep(EXPORT_WORK_MS, undefined, { signal: permit.signal });
    return {
      orders: Number(totals.orders),
      collectedCents: Number(totals.collected ?? 0),
      running: SALES_EXPORT_PERMITS - free,
      fencingToken: permit.fencingToken,
    };
  }
}
