import { CountedMetric, DURATION_BUCKETS, type MetricsHistogram, type RedisMetrics } from '../core/metrics.js';
import type { SpanOptions } from '../core/tracing.js';
import { LockNotAcquiredError, type LockBusyReason } from './lock.exception.js';
import type { Lock } from './lock.js';

/** An acquisition's outcome: `acquired`, or why it was not (`held`, `timeout`, `store-unavailable`). */
type AcquireOutcome = 'acquired' | LockBusyReason;

/**
 * Lock metrics: `lock_acquisitions_total{outcome}`, `lock_wait_seconds{outcome}` (from the call to
 * its outcome), `lock_hold_seconds{outcome}` (from the grant to the release, or to the loss:
 * `released` or `lost`), both observed while an exporter listens, `locks_lost_total` (leases
 * lost while held) and `locks_held` (held by this instance).
 */
export class LockMetrics {
  private readonly outcomes: CountedMetric;
  private readonly waits: MetricsHistogram;
  private readonly holds: MetricsHistogram;
  private readonly lost: CountedMetric;
  /** When each held lock was granted (performance.now()). */
  private readonly grantedAt = new WeakMap<Lock, number>();

  constructor(metrics: RedisMetrics, heldCount: () => number) {
    this.outcomes = new CountedMetric(metrics, {
      name: 'lock_acquisitions_total',
      help: 'Lock acquisitions by outcome (acquired, held, timeout, store-unavailable)',
      labelNames: ['outcome'],
    });
    metrics.collect({
      name: 'locks_held',
      help: 'Locks this instance holds',
      type: 'gauge',
      labelNames: [],
      collect: () => [[{}, heldCount()]],
    });
    this.lost = new CountedMetric(metrics, {
      name: 'locks_lost_total',
      help: 'Leases lost while held (expired, or taken by another)',
      labelNames: [],
    });
    this.holds = metrics.histogram({
      name: 'lock_hold_seconds',
      help: 'Time from the grant of a lock to its release or loss, by outcome (released, lost)',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
    });
    this.waits = metrics.histogram({
      name: 'lock_wait_seconds',
      help: 'Time from asking for a lock to its outcome, by outcome',
      labelNames: ['outcome'],
      buckets: DURATION_BUCKETS,
    });
  }

  /**
   * Counts a granted lock, asked for at `startedMs` (performance.now()). Its grant time is kept for
   * its hold only while an exporter listens: an entry in a WeakMap for every lock costs every
   * garbage collection some work.
   */
  granted(lock: Lock, startedMs: number): void {
    if (this.holds.active) this.grantedAt.set(lock, performance.now());
    this.ended('acquired', startedMs);
  }

  /** Counts the end of a held lock: released, or lost. */
  released(lock: Lock): void {
    const outcome = lock.lost ? 'lost' : 'released';
    if (outcome === 'lost') this.lost.add({});
    const grantedAt = this.grantedAt.get(lock);
    if (this.holds.active && grantedAt !== undefined) this.holds.observe({ outcome }, (performance.now() - grantedAt) / 1000);
  }

  /** Counts an acquisition that began at `startedMs` (performance.now()). */
  ended(outcome: AcquireOutcome, startedMs: number): void {
    this.outcomes.add({ outcome });
    if (this.waits.active) this.waits.observe({ outcome }, (performance.now() - startedMs) / 1000);
  }
}

/** A span records why a lock was not acquired, not the error's message, which names the keys. */
export const ACQUIRE_SPAN: SpanOptions = {
  describeError: (error) =>
    error instanceof LockNotAcquiredError ? `not acquired (${error.reason})` : ((error as Error)?.name ?? 'Error'),
};
