import type { Command } from 'ioredis';
import { CountedMetric, DURATION_BUCKETS, type MetricsHistogram, type RedisMetrics } from './metrics.js';
import type { RedisClient } from './redis-client.js';
import { outageOf } from './store-failure.js';

/**
 * The connections' metrics: `redis_connection_up{connection}` (1 while ready),
 * `redis_connection_outages_total{connection}` (a ready connection lost, or a first connection
 * that failed), and, while an exporter listens, `redis_command_duration_seconds{connection}` and
 * `redis_command_errors_total{connection, kind}` (kind: the outage, such as `disconnected` or
 * `timeout`, or `error` for a reply error such as WRONGTYPE).
 */
export class ConnectionMetrics {
  private readonly up = new Map<string, boolean>();
  private readonly outages: CountedMetric;
  private readonly errors: CountedMetric;
  private readonly durations: MetricsHistogram;

  constructor(metrics: RedisMetrics) {
    metrics.collect({
      name: 'redis_connection_up',
      help: 'Whether the connection is ready (1) or not (0)',
      type: 'gauge',
      labelNames: ['connection'],
      collect: () => [...this.up].map(([connection, ready]) => [{ connection }, ready ? 1 : 0] as const),
    });
    this.outages = new CountedMetric(metrics, {
      name: 'redis_connection_outages_total',
      help: 'Times the connection was lost, or could not connect',
      labelNames: ['connection'],
    });
    this.errors = new CountedMetric(metrics, {
      name: 'redis_command_errors_total',
      help: 'Commands that failed while an exporter listened, by connection and kind (an outage kind, or error)',
      labelNames: ['connection', 'kind'],
    });
    this.durations = metrics.histogram({
      name: 'redis_command_duration_seconds',
      help: 'Time from sending a command to its reply, by connection',
      labelNames: ['connection'],
      buckets: [0.0005, ...DURATION_BUCKETS],
      perCommand: true,
    });
  }

  /** Notes whether the connection is ready; a ready connection lost counts as an outage. */
  state(connection: string, ready: boolean, outage: boolean): void {
    this.up.set(connection, ready);
    if (outage) this.outages.add({ connection });
  }

  /** Times each command of `client` and counts its errors, while an exporter listens. */
  watchCommands(connection: string, client: RedisClient): void {
    const send = client.sendCommand as (this: RedisClient, command: Command, ...rest: unknown[]) => unknown;
    const durations = this.durations;
    const failed = (error: unknown) => {
      // A script the server did not know is sent again at once (see RedisScript): not a failure.
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT')))
        this.errors.add({ connection, kind: outageOf(error) ?? 'error' });
    };
    const labels = { connection };
    client.sendCommand = function sendTimed(this: RedisClient, command: Command, ...rest: unknown[]) {
      if (durations.active) {
        const started = performance.now();
        command.promise.then(
          () => durations.observe(labels, (performance.now() - started) / 1000),
          (error: unknown) => failed(error),
        );
      }
      return send.call(this, command, ...rest);
    } as RedisClient['sendCommand'];
  }
}
