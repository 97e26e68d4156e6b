import type { RedisKeys } from '../core/keys.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import type { ResolvedScheduleOptions } from './schedule.options-validator.js';
import type { JobCounts, JobRun } from './schedule.options.js';

const claimScript = RedisScript.fromFile(new URL('./schedule-claim.lua', import.meta.url));
const finishScript = RedisScript.fromFile(new URL('./schedule-finish.lua', import.meta.url));
const renewScript = RedisScript.fromFile(new URL('./schedule-renew.lua', import.meta.url));

/** What a claim of a fire got: `'won'` means this instance runs it. */
export type ClaimOutcome = 'won' | 'done' | 'skipped' | 'queued' | 'none';

/** A run this instance holds: the fire it runs, its lease's token, when it started (server clock). */
export interface HeldRun {
  fire: number;
  token: string;
  startedAt: number;
  catchUp: boolean;
}

/**
 * The Redis side of `@OncePerFire`: one script per claim (the only round trip before a run
 * starts), one per renewal of a long run's lease, one at its end. Outages reject with a
 * RedisUnavailableError (logged once by `outage`).
 */
export class FireClaims {
  constructor(
    private readonly client: RedisClient,
    private readonly keys: RedisKeys,
    private readonly settings: ResolvedScheduleOptions,
    private readonly outage: OutageLog,
  ) {}

  /** Claims `run.fire`; resolves with the outcome and the server's time when it ran. */
  async claim(
    job: string,
    run: HeldRun,
    leaseMs: number,
    overlap: 'skip' | 'queue',
  ): Promise<{ outcome: ClaimOutcome; serverNow: number }> {
    const { history, retainMs, instance } = this.settings;
    const [outcome, serverNow] = await this.outage.guard(
      claimScript.run<[ClaimOutcome, number]>(this.client, this.keysOf(job), [
        run.fire,
        run.token,
        leaseMs,
        instance,
        overlap,
        history,
        retainMs,
        run.catchUp ? '1' : '0',
      ]),
    );
    return { outcome, serverNow };
  }

  /** Whether the run's lease was renewed (false: it is no longer this instance's). */
  async renew(job: string, run: HeldRun, leaseMs: number): Promise<boolean> {
    const [state, lease] = this.keysOf(job);
    return (await this.outage.guard(renewScript.run<number>(this.client, [state, lease], [run.token, leaseMs]))) === 1;
  }

  /** Records the run's end; resolves with the waiting fire this instance takes next, if any. */
  async finish(
    job: string,
    run: HeldRun,
    ended: { error?: unknown; durationMs: number },
    next: { token: string; leaseMs: number },
  ): Promise<HeldRun | undefined> {
    const { history, retainMs, instance } = this.settings;
    const failed = ended.error !== undefined;
    const [outcome, fire, startedAt] = await this.outage.guard(
      finishScript.run<[string, string?, number?]>(this.client, this.keysOf(job), [
        run.token,
        failed ? 'failed' : 'succeeded',
        failed ? messageOf(ended.error) : '',
        Math.round(ended.durationMs),
        run.fire,
        instance,
        run.startedAt,
        run.catchUp ? '1' : '0',
        history,
        retainMs,
        next.token,
        next.leaseMs,
      ]),
    );
    return outcome === 'queued' ? { fire: Number(fire), token: next.token, startedAt: Number(startedAt), catchUp: false } : undefined;
  }

  /** The server's time (ms since the epoch): instances name fires by it. */
  async serverTime(): Promise<number> {
    const [seconds, micros] = await this.outage.guard(this.client.time());
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /** The job's last `count` runs, newest first. */
  async runs(job: string, count: number): Promise<JobRun[]> {
    const entries = await this.outage.guard(this.client.lrange(this.keysOf(job)[2], 0, count - 1));
    return entries.map((entry) => JSON.parse(entry) as JobRun);
  }

  /** The job's fleet-wide counts. */
  async counts(job: string): Promise<Omit<JobCounts, 'skippedRedisDown' | 'ranLocally'>> {
    const counts = await this.outage.guard(this.client.hgetall(this.keysOf(job)[3]));
    const of = (field: string) => Number(counts[field] ?? 0);
    return { succeeded: of('succeeded'), failed: of('failed'), abandoned: of('abandoned'), skipped: of('skipped'), queued: of('queued') };
  }

  /** The job's state, run lease, history and counts, under its hash tag `{sj:<name>}` (one slot on a Cluster). */
  private keysOf(job: string): [state: string, lease: string, history: string, counts: string] {
    const of = (part: string) => this.keys.tagged(['sj', job], part);
    return [of('state'), of('lease'), of('runs'), of('counts')];
  }
}

/** A failed run's error message, as kept in the history (cut to 500 characters). */
function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 500 ? `${message.slice(0, 497)}...` : message || (error as Error)?.name || 'Error';
}
