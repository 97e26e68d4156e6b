import { Inject, Injectable, Logger, type BeforeApplicationShutdown } from '@nestjs/common';
import { toTextArgument } from '../core/validation.js';
import { LockService } from '../lock/lock.service.js';
import { LeaderElection } from './schedule.leader.js';
import { resolveLeaderOptions, type ResolvedScheduleOptions } from './schedule.options-validator.js';
import { SCHEDULE_OPTIONS, type LeaderOptions } from './schedule.options.js';

/**
 * A leader among the app's instances, for singleton background work (a poller, a consumer of an
 * external feed). One instance leads at a time, renewing its lease every third of it; when it
 * dies, another leads within the lease plus a third of it. Each leadership has a term, strictly
 * increasing, to hand to downstream systems so that they refuse work of an older term. A leader
 * that loses its lease (a pause, a partition) learns it through its `signal`, aborted when a
 * renewal fails or the lease runs out before one could land. Does not need @nestjs/schedule.
 *
 * @example
 * const election = await this.leaders.elect('feed-poller', { lease: '10s' });
 * setInterval(() => election.isLeader && this.poll({ term: election.term, signal: election.signal }), 1_000);
 */
@Injectable()
export class LeaderService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('RedisPatterns:Leader');
  private readonly elections = new Set<LeaderElection>();
  /** The elections of `@OnlyOnLeader`, one per name, started at their first call. */
  private readonly shared = new Map<string, Promise<LeaderElection>>();

  constructor(
    private readonly locks: LockService,
    @Inject(SCHEDULE_OPTIONS) private readonly settings: ResolvedScheduleOptions,
  ) {}

  /**
   * Takes part in electing the leader of `name`: resolves once the first try is answered (so
   * `isLeader` already says whether this instance won), and keeps trying in the background.
   * @throws InvalidOptionError naming `name` or `options.lease`.
   * @example
   * const election = await this.leaders.elect('feed-poller', { lease: '10s' });
   * election.changes$.subscribe(({ isLeader, term }) => isLeader && this.logger.log(`leading, term ${term}`));
   * await election.stop();
   */
  async elect(name: string, options: LeaderOptions = {}): Promise<LeaderElection> {
    const election = new LeaderElection(
      toTextArgument('name', name),
      this.locks,
      resolveLeaderOptions(options, this.settings),
      this.logger,
    );
    this.elections.add(election);
    return election.start();
  }

  /**
   * Whether this instance leads `name`, taking part in its election from the first call on (as
   * `@OnlyOnLeader` does).
   * @example
   * if (await this.leaders.leads('feed-poller')) await this.poll();
   */
  async leads(name: string, options: LeaderOptions = {}): Promise<boolean> {
    let election = this.shared.get(name);
    if (!election) {
      election = this.elect(name, options);
      this.shared.set(name, election);
      election.catch(() => this.shared.delete(name));
    }
    return (await election).isLeader;
  }

  /** At shutdown, every election stops: a leader gives its lease back, so another leads at once. */
  async beforeApplicationShutdown(): Promise<void> {
    await Promise.all([...this.elections].map((election) => election.stop()));
  }
}
