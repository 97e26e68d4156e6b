import type { Duration } from '../core/duration.js';

/** Injection token of the resolved `insights` section. */
export const INSIGHTS_OPTIONS = Symbol('redis-patterns:insights-options');

/**
 * The `insights` section: how often `RedisInsightsService` takes a snapshot of the servers for the
 * `redis_*` gauges, and whether health reports carry a summary. Without it nothing runs on a timer.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, metrics: { prometheus: true }, insights: { interval: '15s' } });
 * RedisPatternsModule.forRoot({ connection, connections: { audit }, insights: { interval: '1m', connections: ['default'], health: false } });
 */
export interface InsightsOptions {
  /**
   * Take a snapshot (INFO on each node) of each connection this often, at least every second,
   * for the gauges. `false`: the gauges show the last snapshot something asked for (a call, a
   * health check). @default false
   */
  interval?: Duration | false;
  /** The connections the interval takes snapshots of. @default every connection of the module */
  connections?: readonly string[];
  /** Add `server`, a summary of a snapshot, to the details of `RedisHealthIndicator`'s up reports. @default true */
  health?: boolean;
}
