import type { INestApplicationContext } from '@nestjs/common';
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CacheService, LockService, QueueService, RedisTracing, StreamService } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';

/** What an app with tracing would set up: a tracer provider and a context manager, global. */
const exported = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exported)] });
const contextManager = new AsyncLocalStorageContextManager();
const tracer = trace.getTracer('the-app');

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  trace.disable();
  context.disable();
  await provider.shutdown();
});
beforeEach(() => exported.reset());

/** Runs `work` in a span of the app's, as a request handler would; answers the span. */
async function inRequest(work: () => Promise<unknown>): Promise<Span> {
  return tracer.startActiveSpan('GET /products', async (span) => {
    try {
      await work().catch(() => undefined);
      return span;
    } finally {
      span.end();
    }
  });
}

const finished = (name: string): ReadableSpan[] => exported.getFinishedSpans().filter((span) => span.name === name);
const parentOf = (span: ReadableSpan | undefined) => span?.parentSpanContext?.spanId;

describe.each(topologies)('OpenTelemetry spans on $topology', ({ connection }) => {
  let app: INestApplicationContext;
  beforeAll(async () => {
    app = await startContext({ connection: connection(), metrics: { openTelemetry: true } });
  });
  afterAll(() => app?.close());

  it("puts a loader call in a span, a child of the caller's, with the loader's own spans inside it", async () => {
    const cache = app.get(CacheService);
    const request = await inRequest(() =>
      cache.getOrSet('product:1', () => tracer.startActiveSpan('SELECT', (span) => (span.end(), 'row'))),
    );
    const [load] = finished('redis-patterns cache.load');
    expect(load).toMatchObject({ kind: SpanKind.INTERNAL, status: { code: SpanStatusCode.UNSET }, attributes: {} });
    expect(load.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(parentOf(load)).toBe(request.spanContext().spanId);
    expect(parentOf(finished('SELECT')[0])).toBe(load.spanContext().spanId);
    // A hit calls no loader: no span.
    await inRequest(() => cache.getOrSet('product:1', () => 'again'));
    expect(finished('redis-patterns cache.load')).toHaveLength(1);
  });

  it('ends the span of a loader that throws with status ERROR and the exception recorded', async () => {
    await inRequest(() => app.get(CacheService).getOrSet('product:2', () => Promise.reject(new TypeError('db down'))));
    const [load] = finished('redis-patterns cache.load');
    expect(load.status).toEqual({ code: SpanStatusCode.ERROR, message: 'db down' });
    expect(load.events).toMatchObject([
      { name: 'exception', attributes: { 'exception.type': 'TypeError', 'exception.message': 'db down' } },
    ]);
  });

  it('puts a lock acquisition, its wait included, in a span; one not acquired says why, without the key', async () => {
    const locks = app.get(LockService);
    const request = await inRequest(async () => {
      const lock = await locks.acquire('otel:order-42');
      await expect(locks.acquire('otel:order-42', { wait: '40ms' })).rejects.toMatchObject({ reason: 'timeout' });
      await lock.release();
    });
    const [acquired, timedOut] = finished('redis-patterns lock.acquire');
    expect([parentOf(acquired), parentOf(timedOut)]).toEqual([request.spanContext().spanId, request.spanContext().spanId]);
    expect(acquired.status.code).toBe(SpanStatusCode.UNSET);
    expect(timedOut.status).toEqual({ code: SpanStatusCode.ERROR, message: 'not acquired (timeout)' });
    expect(timedOut.events[0].attributes).toEqual({
      'exception.type': 'LockNotAcquiredError',
      'exception.message': 'not acquired (timeout)',
    });
    expect(JSON.stringify([timedOut.attributes, timedOut.events])).not.toContain('order-42');
  });

  it('puts each stream handler call in a consumer span of a trace of its own, ERROR when the handler throws', async () => {
    const streams = app.get(StreamService);
    const handle = (event: { fail: boolean }) => {
      if (event.fail) throw new Error('not billed');
    };
    // Started inside a request: the handler spans are still not that request's.
    let request!: Span;
    const consumer = await tracer.startActiveSpan('POST /consumers', async (span) => {
      request = span;
      const started = await streams.consume('otel-orders', 'billing', handle, { block: '50ms' });
      span.end();
      return started;
    });
    await streams.add('otel-orders', { fail: false });
    await streams.add('otel-orders', { fail: true });
    await expect.poll(() => finished('redis-patterns stream.handle').length).toBe(2);
    await consumer.stop();
    const [ok, failed] = finished('redis-patterns stream.handle');
    expect(ok).toMatchObject({
      kind: SpanKind.CONSUMER,
      status: { code: SpanStatusCode.UNSET },
      attributes: {
        'messaging.system': 'redis',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'otel-orders',
        'messaging.consumer.group.name': 'billing',
      },
    });
    expect(ok.parentSpanContext).toBeUndefined();
    expect(ok.spanContext().traceId).not.toBe(request.spanContext().traceId);
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: 'not billed' });
  });

  it('puts each queue job handler call in a consumer span, ERROR when the handler throws', async () => {
    const queue = app.get(QueueService).queue<{ fail: boolean }>('otel-jobs');
    const worker = queue.process(
      (job) => {
        if (job.fail) throw new Error('not sent');
      },
      { block: '50ms', maxAttempts: 1 },
    );
    await queue.add({ fail: false });
    await queue.add({ fail: true });
    await expect.poll(() => finished('redis-patterns queue.handle').length).toBe(2);
    await worker.stop();
    const spans = finished('redis-patterns queue.handle');
    expect(spans.map((span) => span.status.code).sort()).toEqual([SpanStatusCode.UNSET, SpanStatusCode.ERROR].sort());
    expect(spans[0]).toMatchObject({
      kind: SpanKind.CONSUMER,
      attributes: { 'messaging.system': 'redis', 'messaging.operation.type': 'process', 'messaging.destination.name': 'otel-jobs' },
    });
    expect(spans[0].parentSpanContext).toBeUndefined();
  });
});

it('without metrics.openTelemetry, the library makes no span', async () => {
  const app = await startContext({ connection: topologies[0].connection() });
  expect(app.get(RedisTracing).active).toBe(false);
  await inRequest(() => app.get(CacheService).getOrSet('k', () => 1));
  await inRequest(async () => (await app.get(LockService).acquire('k')).release());
  expect(exported.getFinishedSpans().map((span) => span.name)).toEqual(['GET /products', 'GET /products']);
  await app.close();
});
