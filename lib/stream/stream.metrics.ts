import type { MetricLabels, RedisMetrics } from '../core/metrics.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';

/** A consumed stream and group, as the backlog gauges watch them. */
interface Watched {
  stream: string;
  group: string;
  streamKey: string;
  deadLetterKey: string;
}

type Series = (readonly [MetricLabels, number])[];

/**
 * The backlogs of the streams this instance consumes, as gauges: `stream_lag{stream, group}`
 * (entries the group has not been given yet: XINFO GROUPS' lag), `stream_pending{stream, group}`
 * (given, not acknowledged) and `stream_dead_letters{stream}` (entries in its dead-letter
 * stream). Each collection answers what the previous one read, and reads again in the background:
 * nothing is asked of Redis unless an exporter collects.
 */
export class StreamBacklog {
  private readonly watched = new Map<string, Watched>();
  private read: { lag: Series; pending: Series; dead: Series } = { lag: [], pending: [], dead: [] };
  private reading = false;

  constructor(
    metrics: RedisMetrics,
    private readonly client: RedisClient,
    private readonly outage: OutageLog,
  ) {
    const gauge = (name: string, help: string, labelNames: string[], series: () => Series) =>
      metrics.collect({ name, help, type: 'gauge', labelNames, collect: () => (this.refresh(), series()) });
    gauge('stream_lag', 'Entries a group has not been given yet (as of the previous collection)', ['stream', 'group'], () => this.read.lag);
    gauge(
      'stream_pending',
      'Entries given to a group and not acknowledged (as of the previous collection)',
      ['stream', 'group'],
      () => this.read.pending,
    );
    gauge(
      'stream_dead_letters',
      "Entries in a stream's dead-letter stream (as of the previous collection)",
      ['stream'],
      () => this.read.dead,
    );
  }

  watch(watched: Watched): void {
    this.watched.set(`${watched.streamKey}\u0000${watched.group}`, watched);
  }

  /** Reads the backlogs again, one pipeline per stream and group, unless a read is under way. */
  private refresh(): void {
    if (this.reading || this.watched.size === 0) return;
    this.reading = true;
    this.readAll()
      .then((read) => (this.read = read))
      .catch((error: unknown) => this.outage.report(error, 'read the backlogs of the streams'))
      .finally(() => (this.reading = false));
  }

  private async readAll(): Promise<{ lag: Series; pending: Series; dead: Series }> {
    const read = { lag: [] as Series, pending: [] as Series, dead: [] as Series };
    const deadCounted = new Set<string>();
    for (const { stream, group, streamKey, deadLetterKey } of this.watched.values()) {
      const [[groupsError, groups], [deadError, dead]] = ((await this.client
        .multi()
        .xinfo('GROUPS', streamKey)
        .xlen(deadLetterKey)
        .exec()) ?? []) as [Error | null, unknown][];
      if (groupsError || deadError) throw groupsError ?? deadError;
      const info = (groups as unknown[][]).map(toRecord).find((fields) => fields.name === group);
      if (info !== undefined) {
        if (typeof info.lag === 'number') read.lag.push([{ stream, group }, info.lag]);
        read.pending.push([{ stream, group }, Number(info.pending)]);
      }
      if (!deadCounted.has(stream)) read.dead.push([{ stream }, Number(dead)]);
      deadCounted.add(stream);
    }
    return read;
  }
}

/** A flat reply of names and values as a record. */
function toRecord(flat: unknown[]): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (let index = 0; index < flat.length; index += 2) record[String(flat[index])] = flat[index + 1];
  return record;
}
