import { Injectable } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import { OnlyOnLeader } from '../lib/index.js';
import { Database } from './database.js';

/** The poller's election: its name and lease. */
export const ORDER_STATS_LEADER = { name: 'order-stats-poller', lease: '10s' } as const;

/**
 * Singleton background work: every instance has the interval, only the leader of
 * `order-stats-poller` polls (`@OnlyOnLeader`). When the leader dies, another instance leads
 * within the lease (10s) and a third of it, and polls from then on.
 */
@Injectable()
export class OrderStatsPoller {
  /** Polls made by this instance, and what the last one found. */
  polls = 0;
  openOrders: number | undefined;

  constructor(private readonly db: Database) {}

  @Interval('order-stats', 1_000)
  @OnlyOnLeader(ORDER_STATS_LEADER.name, { lease: ORDER_STATS_LEADER.lease })
  async poll(): Promise<void> {
    const [row] = await this.db.query<{ open: number | string }>(`select count(*) as open from order_balances where status <> 'paid'`);
    this.openOrders = Number(row.open);
    this.polls++;
  }
}
