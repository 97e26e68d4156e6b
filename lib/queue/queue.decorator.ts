import { Inject } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { QueueOptions } from './queue.options.js';

/** The injection token of the queue declared as `name` under `queues` in the module options. */
export function getQueueToken(name: string): string {
  return `RedisPatterns:Queue:${name}`;
}

/**
 * Injects a queue declared under `queues` in the module options.
 * @example
 * constructor(@InjectQueue('emails') private readonly emails: Queue<Email>) {}
 */
export function InjectQueue(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getQueueToken(name));
}

/** What an `@OnQueueJob` handler processes. */
export interface OnQueueJobTarget extends QueueOptions {
  queue: string;
}

/** The discoverable decorator behind {@link OnQueueJob}, for the explorer. */
export const ON_QUEUE_JOB = DiscoveryService.createDecorator<OnQueueJobTarget>();

/**
 * Processes the jobs of a queue from application start to shutdown: a worker is started at
 * bootstrap with the queue's declared options (under `queues`), overridden by `options`. The
 * method receives each payload and its `QueueJobInfo`; resolving acknowledges the job, throwing
 * retries it (see `Queue.process`). At shutdown, running jobs finish first.
 *
 * @example
 * @Injectable()
 * export class Mailer {
 *   @OnQueueJob('emails', { concurrency: 10, maxAttempts: 5 })
 *   async send(email: Email, { id, attempt }: QueueJobInfo) { ... }
 * }
 */
export const OnQueueJob = (queue: string, options: QueueOptions = {}): MethodDecorator => ON_QUEUE_JOB({ ...options, queue });
