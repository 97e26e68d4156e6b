import type { Logger } from '@nestjs/common';
import { BehaviorSubject, type Observable } from 'rxjs';
import type { LockService } from '../lock/lock.service.js';

/** A lease the election holds: a lock of `LockService`, renewed while it lives. */
type Lease = Awaited<ReturnType<LockService['acquire']>>;

/** The leadership of this instance, as `changes$` tells it. */
export interface Leadership {
  isLeader: boolean;
  /** The term: the fencing token of the leadership (strictly increasing across the fleet); 0 before this instance first led. */
  term: number;
}

/**
 * One instance's part in electing a leader for `name` (see `LeaderService.elect`): it tries for
 * the leader's lease (a lock on `leader:<name>`, granted with a fencing token that is the term),
 * renews it while it leads, and tries again every third of the lease while another leads.
 *
 * @example
 * const election = await this.leaders.elect('poller', { lease: '10s' });
 * election.changes$.subscribe(({ isLeader, term }) => this.logger.log(`leader: ${isLeader} (term ${term})`));
 */
export class LeaderElection {
  private lease: Lease | undefined;
  private current = new AbortController();
  private lastTerm = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly leadership = new BehaviorSubject<Leadership>({ isLeader: false, term: 0 });
  /**
   * Each change of this instance's leadership, starting with the current one.
   * @example election.changes$.subscribe(({ isLeader, term }) => this.logger.log(`leader: ${isLeader}, term ${term}`));
   */
  readonly changes$: Observable<Leadership> = this.leadership.asObservable();

  constructor(
    readonly name: string,
    private readonly locks: LockService,
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {
    this.current.abort(new Error('not the leader'));
  }

  /**
   * Whether this instance leads now (its lease is held and not known lost).
   * @example if (election.isLeader) await this.poll();
   */
  get isLeader(): boolean {
    return this.lease !== undefined && !this.lease.lost;
  }

  /**
   * The term this instance leads (or last led): the fencing token to hand downstream; 0 if it never led.
   * @example await this.feed.ack(batch, { term: election.term }); // the feed refuses an older term
   */
  get term(): number {
    return this.lastTerm;
  }

  /**
   * Aborted when the current leadership ends (lease lost, stop, shutdown); already aborted while not leading.
   * @example await fetch(feedUrl, { signal: election.signal });
   */
  get signal(): AbortSignal {
    return this.current.signal;
  }

  /** @internal Tries once now, then keeps trying in the background. */
  async start(): Promise<this> {
    await this.attempt();
    return this;
  }

  /**
   * Stops taking part: gives the lease back if this instance leads (its `signal` aborts first), so
   * another instance may lead at once.
   * @example await election.stop();
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const lease = this.lease;
    this.follow(new Error('the election was stopped'));
    this.leadership.complete();
    await lease?.release();
  }

  private async attempt(): Promise<void> {
    if (this.stopped || this.lease) return;
    try {
      const lease = await this.locks.tryAcquire(`leader:${this.name}`, { ttl: this.leaseMs, autoExtend: true });
      if (lease && this.stopped) await lease.release();
      else if (lease) this.lead(lease);
    } catch (error) {
      // Redis unreachable is logged once by LockService (reason 'store-unavailable'); anything else is a bug to show.
      if ((error as { reason?: string })?.reason !== 'store-unavailable')
        this.logger.warn(`Leader election "${this.name}" could not try for the lease: ${(error as Error)?.message ?? error}`);
    }
    if (!this.lease) this.retryLater();
  }

  private lead(lease: Lease): void {
    this.lease = lease;
    this.lastTerm = lease.fencingToken;
    this.current = new AbortController();
    lease.signal.addEventListener('abort', () => this.lease === lease && (this.follow(lease.signal.reason), this.retryLater()), {
      once: true,
    });
    this.leadership.next({ isLeader: true, term: this.lastTerm });
  }

  private follow(reason: unknown): void {
    if (!this.lease) return;
    this.lease = undefined;
    this.current.abort(reason);
    this.leadership.next({ isLeader: false, term: this.lastTerm });
  }

  private retryLater(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.attempt(), Math.max(1, Math.floor(this.leaseMs / 3)));
    this.retryTimer.unref();
  }
}
