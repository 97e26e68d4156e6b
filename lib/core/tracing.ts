import { Injectable } from '@nestjs/common';

/**
 * Attributes of a span: bounded values (the name of a stream or a queue, as your code gives it),
 * never a key, an id or anything a message carries.
 */
export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** How a span of the library relates to the work around it. */
export interface SpanOptions {
  /**
   * `'internal'` (the default): a child of the caller's active span (a loader call, a lock wait).
   * `'consumer'`: the handling of a message, which starts a trace of its own: the loop that reads
   * messages is no caller's work.
   */
  kind?: 'internal' | 'consumer';
  attributes?: SpanAttributes;
  /**
   * What the span records as the message of an error the work threw, when the error's own message
   * may name a key (a lock's). Without it, the error is recorded as it is.
   */
  describeError?: (error: unknown) => string;
}

/** What a tracer (OpenTelemetry) implements to put the library's slow paths in spans. */
export interface SpanRunner {
  /**
   * Runs `work` in a span called `name`, ended when the work settles; when it throws, the span's
   * status is ERROR and the exception is recorded.
   */
  run<T>(name: string, options: SpanOptions, work: () => Promise<T>): Promise<T>;
}

/** Before the name of every span of the library: `redis-patterns cache.load`. */
export const SPAN_NAME_PREFIX = 'redis-patterns ';

/** The options of the span around each message a consumer of `destination` (a stream or a queue) handles. */
export function consumerSpan(destination: string, group?: string): SpanOptions {
  const attributes: Record<string, string> = {
    'messaging.system': 'redis',
    'messaging.operation.type': 'process',
    'messaging.destination.name': destination,
  };
  if (group !== undefined) attributes['messaging.consumer.group.name'] = group;
  return { kind: 'consumer', attributes };
}

/**
 * The one place features put their slow paths in spans (a loader call, a lock wait, a message
 * handler); a tracer attaches to it. With no tracer attached, `span()` only calls the work.
 *
 * @example
 * // in a feature
 * const value = await tracing.span('cache.load', () => loader());
 * // in an exporter
 * tracing.attach({ run: (name, options, work) => myTracer.inSpan(name, work) });
 */
@Injectable()
export class RedisTracing {
  private runner: SpanRunner | undefined;

  /** Whether a tracer is attached: skip work that only a span would use when it is not. */
  get active(): boolean {
    return this.runner !== undefined;
  }

  /** Runs `work` in a span `redis-patterns <name>` while a tracer is attached, else just runs it. */
  span<T>(name: string, work: () => Promise<T>, options: SpanOptions = {}): Promise<T> {
    return this.runner === undefined ? work() : this.runner.run(SPAN_NAME_PREFIX + name, options, work);
  }

  /** Attaches the tracer that makes the spans (replacing one attached before). */
  attach(runner: SpanRunner): void {
    this.runner = runner;
  }
}
