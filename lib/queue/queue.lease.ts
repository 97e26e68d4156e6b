import { setTimeout as sleep } from 'node:timers/promises';
import type { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../core/redis-connection.factory.js';
import { RedisScript } from '../core/redis-script.js';
import type { QueueJobInfo } from './queue.options.js';
import type { QueueWorkerEvents, QueueWorkerSettings } from './queue.worker.js';

const ackScript = RedisScript.fromFile(new URL('./queue-ack.lua', import.meta.url));
const extendScript = RedisScript.fromFile(new URL('./queue-extend.lua', import.meta.url));
const failScript = RedisScript.fromFile(new URL('./queue-fail.lua', import.meta.url));

/** The longest error message kept beside a failed job. */
const MAX_ERROR_LENGTH = 1_000;

/** A job as a take hands it out. */
export interface TakenJob {
  info: QueueJobInfo;
  payload: string | Buffer;
  /** The lease token: acknowledging, extending or failing the job needs it. */
  token: string;
}

/** What a worker shares with the jobs it holds. */
export interface LeaseContext {
  settings: QueueWorkerSettings;
  logger: Logger;
  /** Where `completed`, `failed` and `lease-lost` go: the worker. */
  events: EventEmitter<QueueWorkerEvents>;
  /** Aborted once stop() has given up waiting for handlers. */
  abandoned: AbortSignal;
  /** Every running job's extension timer, cleared at once when stop() gives up. */
  timers: Set<NodeJS.Timeout>;
}

/**
 * A job held under its lease while its handler runs: the lease is extended every third of
 * `visibilityTimeout`, then the job is acknowledged or failed (retried or dead-lettered), through
 * an outage too for as long as the lease may still be held. Once the ack or fail is under way
 * (`settling`), extensions stop and their replies are ignored; an extension that finds the lease
 * gone reports it once (`lease-lost`) and extending stops.
 */
export class LeasedJob {
  private settling = false;
  private lost = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly job: TakenJob,
    private readonly context: LeaseContext,
  ) {
    const { settings, timers } = context;
    this.timer = setInterval(() => this.extendOnce(), Math.max(10, Math.floor(settings.options.visibilityMs / 3)));
    timers.add(this.timer);
  }

  private get queue(): string {
    return this.context.settings.queue;
  }

  /** Stops extending: the handler is done (or the job was settled). */
  release(): void {
    clearInterval(this.timer);
    this.context.timers.delete(this.timer);
  }

  private extendOnce(): void {
    if (this.settling || this.lost) return;
    const { info } = this.job;
    void this.extend().then((held) => {
      if (held || this.settling || this.lost) return;
      this.lost = true;
      this.release();
      this.context.logger.warn(`Worker of queue "${this.queue}" lost the lease of job ${info.id} (it ran past visibilityTimeout)`);
      this.context.events.emit('lease-lost', info);
    });
  }

  private async extend(): Promise<boolean> {
    const { keys, client, options, outage } = this.context.settings;
    const { info, token } = this.job;
    try {
      return (await extendScript.run<number>(client, [keys.active, keys.leases], [info.id, token, options.visibilityMs])) === 1;
    } catch (error) {
      outage.report(error, `extend the lease of job ${info.id} of queue "${this.queue}"`);
      return true; // not known to be lost: the next extension tells
    }
  }

  /** Acknowledges (removes) the job: `completed`, or `lease-lost` when another worker may hold it now. */
  async acknowledge(): Promise<void> {
    const { keys, client } = this.context.settings;
    const { info, token } = this.job;
    this.settling = true;
    const settled = await this.settle(() =>
      ackScript.run<number>(client, [keys.jobs, keys.active, keys.attempts, keys.leases, keys.errors], [info.id, token]),
    );
    if (settled === undefined) return;
    if (settled.reply === 1) return void this.context.events.emit('completed', info);
    // An earlier attempt may have run without its reply coming back: then the job is gone, not lost.
    if (settled.uncertain && (await this.isGone())) return void this.context.events.emit('completed', info);
    if (!this.lost) this.leaseLost('acknowledged');
  }

  /** Fails the job: retried after its backoff, or dead after `maxAttempts` (0: dead at once). */
  async fail(error: unknown, maxAttempts: number): Promise<void> {
    const { keys, client, options } = this.context.settings;
    const { info, token } = this.job;
    const message = String((error as Error)?.message ?? error).slice(0, MAX_ERROR_LENGTH);
    this.settling = true;
    const settled = await this.settle(() =>
      failScript.run<number>(
        client,
        [keys.active, keys.delayed, keys.dead, keys.attempts, keys.leases, keys.errors],
        [info.id, token, maxAttempts, options.backoffMs(info.attempt), message],
      ),
    );
    if (settled === undefined) return;
    let outcome = settled.reply;
    if (outcome === 0) {
      if (!settled.uncertain) return this.lost ? undefined : this.leaseLost('retried');
      // An earlier attempt may have run without its reply coming back: it decided as the script does.
      outcome = info.attempt >= maxAttempts ? 2 : 1;
    }
    const dead = outcome === 2;
    if (dead && maxAttempts > 0)
      this.context.logger.warn(
        `Job ${info.id} of queue "${this.queue}" failed ${info.attempt} attempt(s); moved to the dead list: ${message}`,
      );
    this.context.events.emit('failed', info, error, dead ? 'dead' : 'retry');
  }

  /** Whether the job is no longer in the queue (acknowledged); false when that cannot be told. */
  private async isGone(): Promise<boolean> {
    const { client, keys } = this.context.settings;
    return (await client.hexists(keys.jobs, this.job.info.id).catch(() => 1)) === 0;
  }

  /**
   * Runs a settling script, retrying outages with backoff until it answers or the lease has run
   * out; undefined when it never did. `uncertain`: an earlier attempt failed in a way that leaves
   * open whether it ran (its reply may have been lost), so a "no lease" reply may be its doing.
   * Once stop() has given up waiting for handlers, a settle is tried at most once, only on a ready
   * connection, and its failure is not an outage (the connections are closing): the job comes back
   * after its lease (at least once).
   */
  private async settle(call: () => Promise<number>): Promise<{ reply: number; uncertain: boolean } | undefined> {
    const { client, outage, options } = this.context.settings;
    const abandoned = this.context.abandoned;
    const deadline = Date.now() + options.visibilityMs;
    let uncertain = false;
    for (let attempt = 1; ; attempt++) {
      if (abandoned.aborted && (attempt > 1 || client.status !== 'ready')) return undefined;
      try {
        const reply = await call();
        outage.succeeded();
        return { reply, uncertain };
      } catch (error) {
        if (abandoned.aborted) return undefined;
        if (outage.failed(error) === undefined) throw error;
        uncertain = true;
        if (Date.now() >= deadline) return undefined; // the lease is gone: the job will be handed out again
        const waited = await sleep(backoffDelay(attempt, 50, 1_000), true, { signal: abandoned }).catch(() => false);
        if (!waited) return undefined;
      }
    }
  }

  private leaseLost(doing: string): void {
    const { info } = this.job;
    this.context.logger.warn(
      `Job ${info.id} of queue "${this.queue}" could not be ${doing}: its lease had run out, and it is handed out again`,
    );
    this.context.events.emit('lease-lost', info);
  }
}
