import { Injectable, Logger, type INestApplicationContext } from '@nestjs/common';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  CodecError,
  InjectQueue,
  InvalidOptionError,
  MalformedTextError,
  OnQueueJob,
  Queue,
  QueueService,
  QueueShuttingDownError,
  RedisConnections,
  type QueueJobInfo,
} from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';
import { Redis, type RedisOptions } from 'ioredis';

@Injectable()
class Mailer {
  readonly sent: [unknown, QueueJobInfo][] = [];
  constructor(@InjectQueue('emails') readonly emails: Queue<{ to: string }>) {}

  @OnQueueJob('emails', { block: '50ms' })
  send(email: { to: string }, job: QueueJobInfo): void {
    this.sent.push([email, job]);
  }
}

/** A promise and the function that resolves it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

const EMPTY = { waiting: 0, active: 0, delayed: 0, dead: 0 };

describe.each(topologies)('work queues on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  let queues: QueueService;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), queues: { emails: { maxAttempts: 2 } } }, { providers: [Mailer] });
    queues = app.get(QueueService);
  });
  afterAll(() => app.close());
  afterEach(() => vi.restoreAllMocks());
  const redis = () => app.get(RedisConnections).get();
  /** Redis's clock, in ms. */
  const redisNow = async () => {
    const [seconds, micros] = await redis().time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };

  it('hands a job to a worker with its info, and removes it once handled', async () => {
    const queue = queues.queue<{ at: Date; tags: Set<string> }>('basic');
    const handled: [unknown, QueueJobInfo][] = [];
    const worker = queue.process((payload, job) => void handled.push([payload, job]), { block: '50ms' });
    const completed: string[] = [];
    worker.on('completed', (job) => completed.push(job.id));
    const id = await queue.add({ at: new Date(5), tags: new Set(['a']) });
    await expect.poll(() => completed).toEqual([id]);
    expect(handled).toEqual([
      [
        { at: new Date(5), tags: new Set(['a']) },
        { id, queue: 'basic', attempt: 1 },
      ],
    ]);
    expect(await queue.counts()).toEqual(EMPTY);
    expect(await redis().exists(queue.keys.jobs, queue.keys.attempts, queue.keys.leases)).toBe(0);
    await worker.stop();
  });

  it('@OnQueueJob processes a queue declared under queues, injected with @InjectQueue', async () => {
    const mailer = app.get(Mailer);
    expect(mailer.emails).toBeInstanceOf(Queue);
    expect(mailer.emails.options).toEqual({ maxAttempts: 2 });
    const id = await mailer.emails.add({ to: 'ada@example.com' });
    await expect.poll(() => mailer.sent).toEqual([[{ to: 'ada@example.com' }, { id, queue: 'emails', attempt: 1 }]]);
  });

  it('addMany adds in chunks, and every job is handled once by concurrent handlers', async () => {
    const queue = queues.queue<number>('many');
    const ids = await queue.addMany(Array.from({ length: 1_234 }, (_, i) => i));
    expect(new Set(ids).size).toBe(1_234);
    expect(await queue.counts()).toEqual({ ...EMPTY, waiting: 1_234 });
    const seen = new Map<number, number>();
    let running = 0;
    let mostRunning = 0;
    const worker = queue.process(
      async (n) => {
        mostRunning = Math.max(mostRunning, ++running);
        await new Promise((resolve) => setImmediate(resolve));
        seen.set(n, (seen.get(n) ?? 0) + 1);
        running--;
      },
      { concurrency: 8, block: '50ms' },
    );
    await expect.poll(() => seen.size, { timeout: 20_000 }).toBe(1_234);
    await expect.poll(() => queue.counts()).toEqual(EMPTY);
    expect([...seen.values()].every((times) => times === 1)).toBe(true);
    expect(mostRunning).toBe(8);
    await worker.stop();
  });

  it('a worker of concurrency 1,000 leases at most 100 jobs per take, and fills up over several takes', async () => {
    const queue = queues.queue<number>('wide');
    await queue.addMany(Array.from({ length: 250 }, (_, i) => i));
    const { opened, open } = gate();
    const started: number[] = [];
    const calls = vi.spyOn(redis(), 'call');
    const worker = queue.process(
      async (n) => {
        started.push(n);
        await opened;
      },
      { concurrency: 1_000, block: '50ms' },
    );
    await expect.poll(() => started.length).toBe(250);
    // The take script is the one called with 9 keys: each reply lists id, payload and attempts per
    // job. (An EVALSHA refused with NOSCRIPT, on a node that had not loaded it, is sent again as EVAL.)
    const takes = calls.mock.calls.flatMap(([, values], i) => (Array.isArray(values) && values[1] === 9 ? [calls.mock.results[i]] : []));
    const replies = await Promise.all(takes.map((result) => (result.value as Promise<unknown[]>).catch(() => [])));
    const sizes = replies.filter((reply) => reply.length > 1).map((reply) => reply.length / 3);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(250);
    open();
    await expect.poll(() => queue.counts()).toEqual(EMPTY);
    await worker.stop();
  });

  it("does not hand out a delayed job before its delay, on Redis's clock", async () => {
    const queue = queues.queue<string>('delays');
    const handledAt: number[] = [];
    const worker = queue.process(async () => void handledAt.push(await redisNow()), { block: '2s' });
    const before = await redisNow();
    await queue.add('later', { delay: '700ms' });
    await queue.add('now');
    expect((await queue.counts()).delayed).toBe(1);
    await expect.poll(() => handledAt.length, { timeout: 10_000 }).toBe(2);
    expect(handledAt[1] - before).toBeGreaterThanOrEqual(700);
    expect(await queue.counts()).toEqual(EMPTY);
    await worker.stop();
  });

  it('retries a failing job with exponential backoff, then moves it to the dead list after maxAttempts; retryDead brings it back', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const queue = queues.queue<{ n: number }>('retries');
    const attempts: [number, number][] = [];
    let fixed = false;
    const outcomes: string[] = [];
    const worker = queue.process(
      async (_payload, job) => {
        attempts.push([job.attempt, await redisNow()]);
        if (!fixed) throw new Error(`attempt ${job.attempt} failed`);
      },
      { maxAttempts: 3, backoff: { type: 'exponential', delay: '200ms' }, block: '50ms' },
    );
    worker.on('failed', (_job, _error, outcome) => outcomes.push(outcome));
    const id = await queue.add({ n: 1 });
    await expect.poll(() => queue.counts(), { timeout: 10_000 }).toEqual({ ...EMPTY, dead: 1 });
    expect(attempts.map(([attempt]) => attempt)).toEqual([1, 2, 3]);
    expect(outcomes).toEqual(['retry', 'retry', 'dead']);
    expect(attempts[1][1] - attempts[0][1]).toBeGreaterThanOrEqual(200);
    expect(attempts[2][1] - attempts[1][1]).toBeGreaterThanOrEqual(400);
    expect(await queue.deadLetters()).toEqual([{ id, payload: { n: 1 }, attempts: 3, error: 'attempt 3 failed' }]);
    expect(warn.mock.calls.map(([message]) => String(message))).toContain(
      `Job ${id} of queue "retries" failed 3 attempt(s); moved to the dead list: attempt 3 failed`,
    );

    fixed = true;
    expect(await queue.retryDead()).toBe(1);
    await expect.poll(() => attempts.length).toBe(4);
    expect(attempts[3][0]).toBe(1); // a fresh count of attempts
    await expect.poll(() => queue.counts()).toEqual(EMPTY);
    expect(await queue.deadLetters()).toEqual([]);
    await worker.stop();
  });

  it('a jobId makes add idempotent while the job is waiting, delayed, active or dead, and free again once it is handled', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const queue = queues.queue<string>('dedupe');
    expect(await queue.add('first', { jobId: 'order:7' })).toBe('order:7');
    expect(await queue.add('second', { jobId: 'order:7' })).toBe('order:7');
    await queue.add('delayed', { jobId: 'later', delay: '1h' });
    await queue.add('again', { jobId: 'later' });
    expect(await queue.counts()).toEqual({ ...EMPTY, waiting: 1, delayed: 1 });

    const { opened, open } = gate();
    const handled: string[] = [];
    const worker = queue.process(
      async (payload) => {
        handled.push(payload);
        await opened;
        if (payload === 'poison') throw new Error('no');
      },
      { maxAttempts: 1, block: '50ms' },
    );
    await expect.poll(() => handled).toEqual(['first']);
    await queue.add('while active', { jobId: 'order:7' });
    expect(await queue.counts()).toMatchObject({ active: 1, waiting: 0 });
    open();
    await expect.poll(() => queue.counts()).toEqual({ ...EMPTY, delayed: 1 });
    await queue.add('poison', { jobId: 'poison' });
    await expect.poll(() => queue.counts()).toEqual({ ...EMPTY, delayed: 1, dead: 1 });
    await queue.add('while dead', { jobId: 'poison' });
    expect(await queue.counts()).toEqual({ ...EMPTY, delayed: 1, dead: 1 });

    await queue.add('after', { jobId: 'order:7' });
    await expect.poll(() => handled).toEqual(['first', 'poison', 'after']);
    expect((await queue.deadLetters()).map((job) => job.payload)).toEqual(['poison']);
    await worker.stop();
  });

  it('a worker whose lease ran out cannot acknowledge the job another worker now holds', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const queue = queues.queue<string>('leases');
    const first = gate();
    const byWorker: string[] = [];
    const slow = queue.process(
      async () => {
        byWorker.push('slow');
        await first.opened;
      },
      { visibilityTimeout: '30s', block: '50ms' },
    );
    const events: string[] = [];
    slow.on('completed', () => events.push('slow completed'));
    slow.on('lease-lost', () => events.push('slow lost its lease'));
    const id = await queue.add('x');
    await expect.poll(() => byWorker).toEqual(['slow']);
    // The slow worker stalls past its lease: its deadline (Redis's clock) is in the past.
    await redis().zadd(queue.keys.active, 0, id);
    const fast = queue.process(() => void byWorker.push('fast'), { block: '50ms' });
    const fastDone: QueueJobInfo[] = [];
    fast.on('completed', (job) => fastDone.push(job));
    await expect.poll(() => fastDone).toEqual([{ id, queue: 'leases', attempt: 2 }]);
    first.open();
    await expect.poll(() => events).toEqual(['slow lost its lease']);
    expect(byWorker).toEqual(['slow', 'fast']);
    expect(await queue.counts()).toEqual(EMPTY);
    await Promise.all([slow.stop(), fast.stop()]);
  });

  it('extends the lease while a handler runs past visibilityTimeout: no other worker gets the job', async () => {
    const queue = queues.queue<string>('long');
    const handledBy: string[] = [];
    const slow = queue.process(
      async () => {
        handledBy.push('slow');
        // Three times its visibilityTimeout: only extensions keep the lease (a margin no event-loop stall breaks).
        await new Promise((resolve) => setTimeout(resolve, 3_000));
      },
      { visibilityTimeout: '1s', block: '50ms' },
    );
    const completed: string[] = [];
    slow.on('completed', (job) => completed.push(job.id));
    const id = await queue.add('long job');
    await expect.poll(() => handledBy).toEqual(['slow']);
    const other = queue.process(() => void handledBy.push('other'), { block: '50ms' });
    await expect.poll(() => completed, { timeout: 10_000 }).toEqual([id]);
    expect(handledBy).toEqual(['slow']);
    await Promise.all([slow.stop(), other.stop()]);
  });

  it('an extension sent while the ack is under way reports no lease-lost: every completed job has no lease-lost event', async () => {
    const queue = queues.queue<number>('settling');
    const client = redis();
    const call = client.call.bind(client) as (...args: unknown[]) => Promise<unknown>;
    // The ack's reply (the script of 5 keys) comes back 60ms after it ran: the lease timer (every
    // 10ms) fires meanwhile, and its extension finds the lease the ack removed.
    vi.spyOn(client, 'call').mockImplementation(((...args: unknown[]) => {
      const reply = call(...args);
      const values = args[1];
      if (!Array.isArray(values) || values[1] !== 5) return reply;
      return reply.then(async (value) => {
        await new Promise((resolve) => setTimeout(resolve, 60));
        return value;
      });
    }) as never);
    const worker = queue.process(() => undefined, { concurrency: 4, visibilityTimeout: '30ms', block: '50ms' });
    const completed: string[] = [];
    const lost: string[] = [];
    worker.on('completed', (job) => completed.push(`${job.id}#${job.attempt}`));
    worker.on('lease-lost', (job) => lost.push(`${job.id}#${job.attempt}`));
    await queue.addMany(Array.from({ length: 40 }, (_, i) => i));
    await expect.poll(() => queue.counts(), { timeout: 20_000 }).toEqual(EMPTY);
    await worker.stop();
    expect(completed.length).toBeGreaterThanOrEqual(40);
    expect(lost.filter((job) => completed.includes(job))).toEqual([]);
  });

  it('an ack that ran but whose reply was lost (a timeout) is retried and reported as completed, not lease-lost', async () => {
    vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const queue = queues.queue<string>('lost-reply');
    const client = redis();
    const call = client.call.bind(client) as (...args: unknown[]) => Promise<unknown>;
    let acks = 0;
    vi.spyOn(client, 'call').mockImplementation(((...args: unknown[]) => {
      const reply = call(...args);
      const values = args[1];
      if (!Array.isArray(values) || values[1] !== 5 || acks++ > 0) return reply;
      // The first ack runs, then its reply is lost as if it had timed out.
      return reply.then(() => {
        throw new Error('Command timed out');
      });
    }) as never);
    const worker = queue.process(() => undefined, { block: '50ms' });
    const events: string[] = [];
    worker.on('completed', () => events.push('completed'));
    worker.on('lease-lost', () => events.push('lease-lost'));
    await queue.add('x');
    await expect.poll(() => events).toEqual(['completed']);
    expect(acks).toBe(2);
    expect(await queue.counts()).toEqual(EMPTY);
    await worker.stop();
  });

  it('at stop, takes no more jobs and lets running handlers finish and acknowledge', async () => {
    const queue = queues.queue<number>('shutdown');
    await queue.addMany([1, 2, 3, 4, 5]);
    const { opened, open } = gate();
    const started: number[] = [];
    const finished: number[] = [];
    const worker = queue.process(
      async (n) => {
        started.push(n);
        await opened;
        finished.push(n);
      },
      { concurrency: 3, block: '50ms' },
    );
    await expect.poll(() => started.length).toBe(3);
    const stopped = worker.stop();
    setTimeout(open, 100);
    await stopped;
    expect(finished.sort()).toEqual([...started].sort());
    expect(await queue.counts()).toEqual({ ...EMPTY, waiting: 2 });
    const rest: number[] = [];
    const next = queue.process((n) => void rest.push(n), { block: '50ms' });
    await expect.poll(() => [...started, ...rest].sort()).toEqual([1, 2, 3, 4, 5]);
    await next.stop();
  });

  it('moves a job it cannot decode to the dead list at once, without logging its content', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const queue = queues.queue<string>('malformed');
    await redis().hset(queue.keys.jobs, 'bad', '{"card": 4111');
    await redis().lpush(queue.keys.ready, 'bad');
    const handled: string[] = [];
    const worker = queue.process((payload) => void handled.push(payload), { block: '50ms' });
    await queue.add('fine');
    await expect.poll(() => handled).toEqual(['fine']);
    await expect.poll(() => queue.counts()).toEqual({ ...EMPTY, dead: 1 });
    expect(await queue.deadLetters()).toEqual([{ id: 'bad', payload: undefined, attempts: 1, error: 'the payload could not be decoded' }]);
    expect(warn.mock.calls.map(([message]) => String(message)).join('\n')).not.toContain('4111');
    await worker.stop();
  });

  it('refuses bad names, payloads, job ids and options, naming them', async () => {
    const queue = queues.queue('valid');
    expect(() => queues.queue('')).toThrow(InvalidOptionError);
    expect(() => queues.queue('q\uD800')).toThrow(MalformedTextError);
    expect(() => queues.queue('x'.repeat(129))).toThrow(/Invalid option "name"/);
    expect(() => queues.queue('q', { concurrency: 0 })).toThrow(/Invalid option "queues.q.concurrency"/);
    expect(() => queues.queue('q', { concurrency: 1_001 })).toThrow(
      /Invalid option "queues.q.concurrency": expected an integer from 1 to 1000/,
    );
    expect(() => queue.process(() => undefined, { concurrency: 1_001 })).toThrow(/Invalid option "concurrency"/);
    expect(() => queue.process(() => undefined, { concurrency: 2.5 })).toThrow(/Invalid option "concurrency"/);
    expect(() => queues.queue('q', { retries: 3 } as never)).toThrow(/Invalid option "queues.q.retries"/);
    await expect(queue.add(() => 1)).rejects.toThrow(CodecError);
    await expect(queue.add(1, { jobId: 'a\uDC00' })).rejects.toMatchObject({ option: 'jobId' });
    await expect(queue.add(1, { jobId: '' })).rejects.toMatchObject({ option: 'jobId' });
    await expect(queue.add(1, { jobId: 'x'.repeat(257) })).rejects.toMatchObject({ option: 'jobId' });
    await expect(queue.add(1, { delay: -1 })).rejects.toMatchObject({ option: 'delay' });
    await expect(queue.add(1, { priority: 1 } as never)).rejects.toMatchObject({ option: 'options.priority' });
    await expect(queue.addMany('nope' as never)).rejects.toMatchObject({ option: 'payloads' });
    expect(() => queue.process('nope' as never)).toThrow(/Invalid option "handler"/);
    expect(() => queue.process(() => undefined, { visibilityTimeout: '10ms' })).toThrow(/Invalid option "visibilityTimeout"/);
    expect(() => queue.process(() => undefined, { maxAttempts: 1.5 })).toThrow(/Invalid option "maxAttempts"/);
    expect(() => queue.process(() => undefined, { backoff: { type: 'linear' } as never })).toThrow(/Invalid option "backoff.type"/);
    await expect(queue.deadLetters({ count: 0 })).rejects.toMatchObject({ option: 'count' });
    await expect(queue.deadLetters({ count: 1_001 })).rejects.toMatchObject({ option: 'count', expected: 'an integer from 1 to 1000' });
    expect((await queue.deadLetters({ count: 1_000 })).length).toBe(0);
    expect(await queue.counts()).toEqual(EMPTY);
  });
});

describe('work queues at application shutdown', () => {
  it('@OnQueueJob workers stop taking jobs, and the running ones finish and are acknowledged before the connections close', async () => {
    const { opened, open } = gate();
    const finished: number[] = [];
    const started: number[] = [];
    @Injectable()
    class Slow {
      @OnQueueJob('closing', { concurrency: 2, block: '50ms' })
      async work(n: number): Promise<void> {
        started.push(n);
        await opened;
        finished.push(n);
      }
    }
    const app = await startContext({ connection: topologies[0].connection() }, { providers: [Slow] });
    const queue = app.get(QueueService).queue<number>('closing');
    await queue.addMany([1, 2, 3]);
    await expect.poll(() => started.length).toBe(2);
    const admin = new Redis(topologies[0].connection() as RedisOptions);
    const closed = app.close();
    setTimeout(open, 100);
    await closed;
    expect(finished.sort()).toEqual([...started].sort());
    expect(await admin.llen(queue.keys.ready)).toBe(1);
    expect(await admin.zcard(queue.keys.active)).toBe(0);
    expect(await admin.hlen(queue.keys.jobs)).toBe(1);
    await admin.quit();
  });

  it('a handler that finishes after stop() gave up does not settle against closed connections: no outage logged, nothing kept running, its job comes back after its lease; process() is refused once shutdown began', async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const { opened, open } = gate();
    const app = await startContext({ connection: topologies[0].connection(), shutdownTimeout: '100ms' });
    const queue = app.get(QueueService).queue<number>('abandoned');
    const started: number[] = [];
    let finished = 0;
    const worker = queue.process(
      async (n) => {
        started.push(n);
        await opened;
        finished++;
      },
      { visibilityTimeout: '30s', block: '50ms' },
    );
    await queue.add(1);
    await expect.poll(() => started).toEqual([1]);
    await app.close();
    expect(() => queue.process(() => undefined)).toThrow(QueueShuttingDownError);
    open();
    await expect.poll(() => finished).toBe(1);
    // Its settle gives up at once rather than retrying for visibilityTimeout.
    await expect.poll(() => worker.busy).toBe(0);
    const messages = warn.mock.calls.map(([message]) => String(message));
    expect(messages.filter((message) => message.includes('unavailable to queues'))).toEqual([]);
    const admin = new Redis(topologies[0].connection() as RedisOptions);
    expect(await admin.zcard(queue.keys.active)).toBe(1);
    expect(await admin.hlen(queue.keys.jobs)).toBe(1);
    await admin.quit();
  });
});
