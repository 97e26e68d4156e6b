import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { PubSubService, RedisPatternsModule, StreamService } from '../lib/index.js';
import { type MessageRun, messageRow, table } from './harness.js';

/**
 * Pub/sub: publish-to-receive throughput and latency, with one and with many subscribers;
 * streams: add + consume (ack) throughput. Each beside the same thing done with raw ioredis.
 */
export async function messagingReport(url: string, messages: number): Promise<string> {
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench:' })] })
  class BenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  const rows: string[][] = [];
  for (const subscribers of [1, 10]) {
    const raw = await rawPubSub(url, subscribers, messages);
    const ours = await modulePubSub(app.get(PubSubService), subscribers, messages);
    rows.push(messageRow(`pub/sub, ${subscribers} subscriber(s)`, 'raw ioredis PUBLISH/SUBSCRIBE + JSON', raw, raw));
    rows.push(messageRow(`pub/sub, ${subscribers} subscriber(s)`, 'PubSubService', ours, raw));
  }
  const rawStream = await rawStreamRun(url, messages);
  const ourStream = await moduleStreamRun(app.get(StreamService), messages);
  rows.push(messageRow('stream add + consume + ack', 'raw ioredis XADD/XREADGROUP/XACK', rawStream, rawStream));
  rows.push(messageRow('stream add + consume + ack', 'StreamService', ourStream, rawStream));
  await app.close();
  return table(['group', 'scenario', 'msgs/s', 'p50 ms', 'p99 ms', 'vs baseline'], rows, 2);
}

/** Publishes `messages` with 64 publishers in flight, until every subscriber has received every message. */
async function publishAll(
  publish: (payload: { sentAt: number; i: number }) => Promise<unknown>,
  messages: number,
  received: () => number,
  expected: number,
): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < messages) await publish({ sentAt: performance.now(), i: next++ });
    }),
  );
  while (received() < expected) await new Promise((resolve) => setImmediate(resolve));
  return messages / ((performance.now() - started) / 1000);
}

async function rawPubSub(url: string, subscribers: number, messages: number): Promise<MessageRun> {
  const publisher = new Redis(url);
  const clients = Array.from({ length: subscribers }, () => new Redis(url));
  const latencies: number[] = [];
  for (const client of clients) {
    client.on('message', (_channel: string, raw: string) =>
      latencies.push(performance.now() - (JSON.parse(raw) as { sentAt: number }).sentAt),
    );
    await client.subscribe('bench:raw');
  }
  const perSecond = await publishAll(
    (payload) => publisher.publish('bench:raw', JSON.stringify(payload)),
    messages,
    () => latencies.length,
    messages * subscribers,
  );
  await Promise.all([publisher.quit(), ...clients.map((client) => client.quit())]);
  return { perSecond, latencies };
}

async function modulePubSub(pubsub: PubSubService, subscribers: number, messages: number): Promise<MessageRun> {
  const latencies: number[] = [];
  const subscriptions = Array.from({ length: subscribers }, () =>
    pubsub.subscribe<{ sentAt: number }>(`ours-${subscribers}`).subscribe((message) => latencies.push(performance.now() - message.sentAt)),
  );
  while ((await pubsub.publish(`ours-${subscribers}`, { sentAt: performance.now(), i: -1 })) === 0)
    await new Promise((resolve) => setTimeout(resolve, 10));
  latencies.length = 0;
  const perSecond = await publishAll(
    (payload) => pubsub.publish(`ours-${subscribers}`, payload),
    messages,
    () => latencies.length,
    messages * subscribers,
  );
  for (const subscription of subscriptions) subscription.unsubscribe();
  return { perSecond, latencies };
}

async function rawStreamRun(url: string, messages: number): Promise<MessageRun> {
  const producer = new Redis(url);
  const reader = new Redis(url);
  const key = 'bench:raw-stream';
  await producer.del(key);
  await producer.xgroup('CREATE', key, 'g', '$', 'MKSTREAM');
  const latencies: number[] = [];
  let done = false;
  const consuming = (async () => {
    while (!done) {
      const reply = (await reader.xreadgroup('GROUP', 'g', 'c', 'COUNT', 100, 'BLOCK', 100, 'STREAMS', key, '>')) as
        [string, [string, string[]][]][] | null;
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        const event = JSON.parse(fields[1]) as { sentAt: number };
        await producer.xack(key, 'g', id);
        latencies.push(performance.now() - event.sentAt);
      }
    }
  })();
  const perSecond = await publishAll(
    (payload) => producer.xadd(key, '*', 'd', JSON.stringify(payload)),
    messages,
    () => latencies.length,
    messages,
  );
  done = true;
  await consuming;
  await Promise.all([producer.quit(), reader.quit()]);
  return { perSecond, latencies };
}

async function moduleStreamRun(streams: StreamService, messages: number): Promise<MessageRun> {
  const latencies: number[] = [];
  const consumer = await streams.consume<{ sentAt: number }>(
    'bench-stream',
    'g',
    (event) => void latencies.push(performance.now() - event.sentAt),
    { batch: 100, block: '100ms', from: 'new' },
  );
  const perSecond = await publishAll(
    (payload) => streams.add('bench-stream', payload),
    messages,
    () => latencies.length,
    messages,
  );
  await consumer.stop();
  return { perSecond, latencies };
}
