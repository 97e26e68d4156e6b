import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { from, Observable, of } from 'rxjs';
import { RedisStreamsContext } from '../../lib/microservices/index.js';

/** What the handlers of the test service saw, for the tests to read. */
export class Seen {
  readonly events: { data: unknown; stream: string; entryId: string; group: string; deliveries: number; pattern: string }[] = [];
  readonly failures = new Map<number, number>();
}

/** Handlers in the shapes Nest's own transporter tests use: sync, async, observable, streaming, events, errors. */
@Controller()
export class MathController {
  constructor(private readonly seen: Seen) {}

  @MessagePattern({ cmd: 'sum' })
  sum(@Payload() numbers: number[]): number {
    return numbers.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('asyncSum')
  async asyncSum(@Payload() numbers: number[]): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return numbers.reduce((a, b) => a + b, 0);
  }

  @MessagePattern('streamSum')
  streamSum(@Payload() numbers: number[]): Observable<number> {
    return of(numbers.reduce((a, b) => a + b, 0));
  }

  @MessagePattern('streaming')
  streaming(@Payload() numbers: number[]): Observable<number> {
    return from(numbers);
  }

  @MessagePattern('nothing')
  nothing(): Observable<never> {
    return from([]);
  }

  @MessagePattern('refuse')
  refuse(@Payload() reason: { code: string }): never {
    throw new RpcException({ code: reason.code, message: 'refused' });
  }

  @MessagePattern('crash')
  crash(): never {
    throw new Error('secret internals');
  }

  @MessagePattern('never')
  never(): Promise<never> {
    return new Promise(() => undefined);
  }

  @MessagePattern('context')
  context(@Ctx() context: RedisStreamsContext) {
    return { pattern: context.getPattern(), stream: context.getStream(), group: context.getGroup(), deliveries: context.getDeliveries() };
  }

  @EventPattern<string>('notification')
  notified(@Payload() data: unknown, @Ctx() context: RedisStreamsContext): void {
    this.seen.events.push({
      data,
      stream: context.getStream(),
      entryId: context.getEntryId(),
      group: context.getGroup(),
      deliveries: context.getDeliveries(),
      pattern: context.getPattern(),
    });
  }

  /** Fails the first `failTimes` deliveries of each event, then records it. */
  @EventPattern<string>('flaky')
  async flaky(@Payload() event: { n: number; failTimes: number }, @Ctx() context: RedisStreamsContext): Promise<void> {
    const failed = this.seen.failures.get(event.n) ?? 0;
    if (failed < event.failTimes) {
      this.seen.failures.set(event.n, failed + 1);
      throw new Error(`flaky ${event.n} failed`);
    }
    this.seen.events.push({
      data: event,
      stream: context.getStream(),
      entryId: context.getEntryId(),
      group: context.getGroup(),
      deliveries: context.getDeliveries(),
      pattern: context.getPattern(),
    });
  }

  /** An event whose handler returns an observable: acknowledged once it completes. */
  @EventPattern('observed')
  observed(@Payload() n: number): Observable<number> {
    return new Observable((subscriber) => {
      const timer = setTimeout(() => {
        this.seen.events.push({ data: n, stream: '', entryId: '', group: '', deliveries: 0, pattern: 'observed' });
        subscriber.next(n);
        subscriber.complete();
      }, 20);
      return () => clearTimeout(timer);
    });
  }
}
