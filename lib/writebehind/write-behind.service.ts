import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { CacheService } from '../cache/cache.service.js';
import { JsonCodec } from '../core/codec.js';
import { CORE_OPTIONS } from '../core/core.constants.js';
import type { ResolvedCoreOptions } from '../core/core.options.js';
import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { RedisScript } from '../core/redis-script.js';
import { QueueService } from '../queue/queue.service.js';
import { toPositiveMilliseconds } from '../core/duration.js';
import type { WriteBehindLag, WriteBehindOptions } from './write-behind.options.js';
import { WRITE_BEHIND } from './write-behind.target.js';

const putScript = RedisScript.fromFile(new URL('./write-behind-put.lua', import.meta.url));
const claimScript = RedisScript.fromFile(new URL('./write-behind-claim.lua', import.meta.url));
const doneScript = RedisScript.fromFile(new URL('./write-behind-done.lua', import.meta.url));
const timeScript = RedisScript.fromFile(new URL('./write-behind-time.lua', import.meta.url));

/**
 * How long a claim on a key lasts without being renewed (renewed every third of it while the
 * method runs): the queue's `visibilityTimeout`, or the queue's own default of 30s.
 */
const DEFAULT_CLAIM_LEASE = '30s';
/** How long a job that found its key claimed by another worker waits before trying again. */
const BUSY_DELAY_MS = 200;
/** Pending keys read (and jobs enqueued again) per step when sweeping. */
const SWEEP_CHUNK = 1_000;
const POLL_MS = 50;

/** A persisting job: which target, which key. */
interface WriteBehindJob {
  target: string;
  key: string;
}

/** The work queue that carries a target's jobs (QueueService's own type, seen through its public service). */
type JobQueue = ReturnType<typeof QueueService.prototype.queue<WriteBehindJob>>;

/** A target's keys, all in the hash tag `{wb:<target>}`. */
interface TargetKeys {
  versions: string;
  values: string;
  counter: string;
  since: string;
  claim(key: string): string;
}

/**
 * Runs `@WriteBehind`: records each write (a version, the arguments, since when the key is
 * pending) in one script, enqueues a job to persist it, and writes the cache; a worker per queue
 * persists the newest value of a key under a claim, so writes of one key are persisted in order,
 * once for several. `flush()` waits for what was written so far; `lag()` says how far behind the
 * persisting side is. At shutdown the instance flushes (up to `shutdownTimeout`).
 */
@Injectable()
export class WriteBehindService implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly redis: RedisClient;
  private readonly codec = new JsonCodec();
  private readonly logger = new Logger('RedisPatterns:WriteBehind');
  private readonly outage = new OutageLog(this.logger, 'write-behind', 'writes fail with RedisUnavailableError (503) and persisting waits');
  /** The targets found on this instance: their queue and the method to run. */
  private readonly targets = new Map<string, { queue: string; persist: (args: unknown[]) => Promise<unknown> }>();
  private readonly madeQueues = new Map<string, JobQueue>();

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly cache: CacheService,
    private readonly queues: QueueService,
    private readonly explorer: DecoratedMethodsExplorer,
    @Inject(CORE_OPTIONS) private readonly core: ResolvedCoreOptions,
  ) {
    this.redis = connections.get();
  }

  /** Whether this app has `@WriteBehind` methods (known after init). */
  get inUse(): boolean {
    return this.targets.size > 0;
  }

  onModuleInit(): void {
    for (const { name, metadata, instance } of this.explorer.find(WRITE_BEHIND, 'WriteBehind')) {
      if (this.targets.has(metadata.name))
        throw new RedisPatternsError(`@WriteBehind on ${name}: the name "${metadata.name}" is taken by another method; give one a name.`);
      this.targets.set(metadata.name, { queue: metadata.queue, persist: async (args) => metadata.original.apply(instance, args) });
    }
  }

  /** Starts one worker per queue, and enqueues again the keys left pending (by a stop between a write and its job). */
  async onApplicationBootstrap(): Promise<void> {
    for (const queue of new Set([...this.targets.values()].map((target) => target.queue)))
      this.queueOf(queue).process((job) => this.persist(job));
    await this.sweep().catch((error: unknown) => this.outage.report(error, 'enqueue the pending write-behind keys'));
  }

  /** At shutdown: waits for what this instance's targets have pending, up to `shutdownTimeout`. */
  async onModuleDestroy(): Promise<void> {
    if (!this.inUse) return;
    const flushed = await this.flush(this.core.shutdownTimeoutMs).catch(() => false);
    if (!flushed)
      this.logger.warn(
        'Write-behind: some writes are not persisted yet; they stay in Redis, and the next instance that starts persists them',
      );
  }

  /** A call of a `@WriteBehind` method: recorded with its job, then written to the cache. */
  async write(
    target: { name: string; queue: string },
    options: WriteBehindOptions<unknown[]>,
    args: unknown[],
    where: string,
  ): Promise<void> {
    const key = options.key(...args);
    if (typeof key !== 'string' || key.length === 0)
      throw new InvalidOptionError(`${where}.key`, 'a function returning a non-empty string', key);
    const value = options.value ? options.value(...args) : args[0];
    const keys = this.keysOf(target.name);
    await this.outage.guard(
      putScript.run(this.redis, [keys.versions, keys.values, keys.counter, keys.since], [key, this.codec.encode(args, key)]),
    );
    await this.queueOf(target.queue).add({ target: target.name, key });
    await this.cache.set(key, value, options.ttl === undefined ? {} : { ttl: options.ttl });
  }

  /**
   * Resolves true once every key written so far (by any instance, to this instance's targets) has
   * been persisted, or false after `timeoutMs`. Keys still pending get a job again first, so a
   * write whose job was lost (the instance stopped between the two) is not waited for in vain.
   * @example
   * await writeBehind.flush(); // in a test, or before a report that reads the database
   */
  async flush(timeoutMs = this.core.shutdownTimeoutMs): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const cutoffs = new Map<string, number>();
    for (const name of this.targets.keys()) cutoffs.set(name, await this.timeOf(name));
    await this.sweep();
    for (const [name, cutoff] of cutoffs) {
      const { since } = this.keysOf(name);
      while ((await this.outage.guard(this.redis.zcount(since, '-inf', cutoff))) > 0) {
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    }
    return true;
  }

  /**
   * How far behind the persisting side is, over this instance's targets: how many keys are
   * written but not persisted, and how long the oldest has waited.
   * @example
   * const { pending, oldestMs } = await writeBehind.lag();
   */
  async lag(): Promise<WriteBehindLag> {
    let pending = 0;
    let oldestMs = 0;
    for (const name of this.targets.keys()) {
      const { since } = this.keysOf(name);
      const now = await this.timeOf(name);
      const [count, first] = await this.outage.guard(
        Promise.all([this.redis.zcard(since), this.redis.zrange(since, '0', '0', 'WITHSCORES')]),
      );
      pending += count;
      if (first.length === 2) oldestMs = Math.max(oldestMs, now - Number(first[1]));
    }
    return { pending, oldestMs };
  }

  /** A job: persists the newest value of its key under a claim, or finds it persisted, or busy (tries again shortly). */
  private async persist({ target: name, key }: WriteBehindJob): Promise<void> {
    const target = this.targets.get(name);
    if (!target) throw new RedisPatternsError(`No @WriteBehind target "${name}" on this instance`);
    const keys = this.keysOf(name);
    const token = randomUUID();
    const queue = this.queueOf(target.queue);
    const leaseMs = toPositiveMilliseconds(
      queue.options.visibilityTimeout ?? DEFAULT_CLAIM_LEASE,
      `queues.${target.queue}.visibilityTimeout`,
    );
    const claim = () => claimScript.run<string[]>(this.redis, [keys.versions, keys.values, keys.claim(key)], [key, token, leaseMs]);
    const [state, version, encoded] = await claim();
    if (state === 'none') return;
    if (state === 'busy') {
      await queue.add({ target: name, key }, { delay: BUSY_DELAY_MS });
      return;
    }
    const renew = setInterval(() => void claim().catch(() => undefined), leaseMs / 3);
    let persisted = '';
    try {
      await target.persist(this.codec.decode(encoded, key) as unknown[]);
      persisted = version;
    } finally {
      clearInterval(renew);
      await doneScript.run(this.redis, [keys.versions, keys.values, keys.claim(key), keys.since], [key, token, persisted]);
    }
  }

  /** Enqueues a job for every key pending on this instance's targets, about a thousand a step (ZSCAN: keys persisted meanwhile do not hide others). */
  private async sweep(): Promise<void> {
    for (const [name, { queue }] of this.targets) {
      const { since } = this.keysOf(name);
      let cursor = '0';
      do {
        const [next, flat] = await this.outage.guard(this.redis.zscan(since, cursor, 'COUNT', String(SWEEP_CHUNK)));
        cursor = next;
        const pending = flat.filter((_, index) => index % 2 === 0);
        if (pending.length > 0) await this.queueOf(queue).addMany(pending.map((key) => ({ target: name, key })));
      } while (cursor !== '0');
    }
  }

  /** The queue called `name`, made once (with its declared options, if any). */
  private queueOf(name: string): JobQueue {
    let queue = this.madeQueues.get(name);
    if (!queue) {
      queue = this.queues.queue<WriteBehindJob>(name);
      this.madeQueues.set(name, queue);
    }
    return queue;
  }

  /** The time (ms) on the master of the target's slot, whose clock times its pending writes. */
  private timeOf(name: string): Promise<number> {
    return this.outage.guard(timeScript.run<number>(this.redis, [this.keysOf(name).since]));
  }

  private keysOf(name: string): TargetKeys {
    const tag = ['wb', name];
    return {
      versions: this.keys.tagged(tag, 'versions'),
      values: this.keys.tagged(tag, 'values'),
      counter: this.keys.tagged(tag, 'counter'),
      since: this.keys.tagged(tag, 'since'),
      claim: (key) => this.keys.tagged(tag, 'claim', key),
    };
  }
}
