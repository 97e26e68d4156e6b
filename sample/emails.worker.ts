import { BadRequestException, Body, Controller, Get, HttpCode, Injectable, Post } from '@nestjs/common';
import { InjectQueue, OnQueueJob, type Queue, type QueueCounts, type QueueJobInfo } from '../lib/index.js';

export interface Email {
  to: string;
  subject: string;
}

/** Sends the queued emails (here: records them), one job at a time per instance, on any instance. */
@Injectable()
export class EmailsWorker {
  readonly sent: { to: string; subject: string; attempt: number }[] = [];

  @OnQueueJob('emails', { concurrency: 4 })
  async send(email: Email, { attempt }: QueueJobInfo): Promise<void> {
    this.sent.push({ ...email, attempt });
  }
}

/**
 * A work queue: `curl -X POST -H 'content-type: application/json' -d '{"to":"ann@example.com","subject":"Welcome","jobId":"welcome:ann"}' http://127.0.0.1:3000/queue/emails`
 * enqueues an email (the same `jobId` again while it lives is not enqueued twice; `delayMs` waits);
 * `GET /queue/emails` answers the queue's counts and how many this instance has sent.
 */
@Controller('queue/emails')
export class EmailsController {
  constructor(
    @InjectQueue('emails') private readonly emails: Queue<Email>,
    private readonly worker: EmailsWorker,
  ) {}

  @Post()
  @HttpCode(202)
  async enqueue(@Body() body: { to?: unknown; subject?: unknown; jobId?: unknown; delayMs?: unknown } = {}): Promise<{ id: string }> {
    const { to, subject = 'Hello', jobId, delayMs = 0 } = body;
    if (typeof to !== 'string' || !/^[^@\s]{1,64}@[^@\s]{1,190}$/.test(to)) throw new BadRequestException('to must be an email address');
    if (typeof subject !== 'string' || subject.length > 200)
      throw new BadRequestException('subject must be a string of at most 200 characters');
    if (jobId !== undefined && (typeof jobId !== 'string' || jobId.length === 0 || jobId.length > 256))
      throw new BadRequestException('jobId must be a string of 1 to 256 characters');
    if (typeof delayMs !== 'number' || !Number.isSafeInteger(delayMs) || delayMs < 0 || delayMs > 86_400_000)
      throw new BadRequestException('delayMs must be an integer from 0 to 86400000');
    // A jobId that is not well-formed text is a MalformedTextError: a 400 by itself; Redis away is a 503.
    return { id: await this.emails.add({ to, subject }, { delay: delayMs, jobId }) };
  }

  @Get()
  async counts(): Promise<QueueCounts & { sentHere: number }> {
    return { ...(await this.emails.counts()), sentHere: this.worker.sent.length };
  }
}
