import { Controller, Injectable, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ClientProxyFactory, EventPattern, MessagePattern, Payload, Transport, type ClientProxy } from '@nestjs/microservices';
import { filter, firstValueFrom, lastValueFrom } from 'rxjs';
import { RedisPatternsModule } from '../lib/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../lib/microservices/index.js';
import { type MessageRun, messageRow, table } from './harness.js';

/** Counts the events the handler saw, so the run knows when every one has been handled. */
@Injectable()
class Received {
  count = 0;
}

@Controller()
class BenchController {
  constructor(private readonly received: Received) {}

  @EventPattern('bench.event')
  event(@Payload() _data: { i: number }): void {
    this.received.count++;
  }

  @MessagePattern('bench.echo')
  echo(@Payload() data: { i: number }): { i: number } {
    return data;
  }
}

interface Transporter {
  name: string;
  client: ClientProxy;
  received: Received;
  close(): Promise<void>;
}

/**
 * @nestjs/microservices transporters side by side: Nest's built-in Redis transporter (pub/sub:
 * nothing kept, every instance gets every message) and RedisStreamsServer/RedisStreamsClient
 * (XADD to a stream, XREADGROUP by the service's group, XACK after the handler; a request also
 * carries a reply stream and a deadline, and its reply is an XADD with MAXLEN and PEXPIRE).
 * Events: emit throughput with 64 in flight, until the handler has seen each. Requests: round
 * trips with 64 in flight, and their latency.
 */
export async function microservicesReport(url: string, events: number, requests: number): Promise<string> {
  const rows: string[][] = [];
  const builtIn = await nestRedis(url);
  // The default (4 handlers at a time per stream), and 16.
  const ours = [await redisStreams(url, 4), await redisStreams(url, 16)];
  try {
    const baseEvents = await emitRun(builtIn, events);
    rows.push(messageRow('events (emit to handler)', builtIn.name, baseEvents, baseEvents));
    for (const transporter of ours)
      rows.push(messageRow('events (emit to handler)', transporter.name, await emitRun(transporter, events), baseEvents));
    const baseRequests = await sendRun(builtIn, requests);
    rows.push(messageRow('request round trip', builtIn.name, baseRequests, baseRequests));
    for (const transporter of ours)
      rows.push(messageRow('request round trip', transporter.name, await sendRun(transporter, requests), baseRequests));
  } finally {
    await builtIn.close();
    for (const transporter of ours) await transporter.close();
  }
  return table(['group', 'transporter', 'msgs/s', 'p50 ms', 'p99 ms', 'vs built-in'], rows, 2);
}

/** Runs `work` `count` times with 64 calls in flight; returns calls per second and each call's latency. */
async function inFlight64(count: number, work: (i: number) => Promise<unknown>, done: () => boolean): Promise<MessageRun> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < count) {
        const i = next++;
        const sent = performance.now();
        await work(i);
        latencies.push(performance.now() - sent);
      }
    }),
  );
  while (!done()) await new Promise((resolve) => setImmediate(resolve));
  return { perSecond: count / ((performance.now() - started) / 1000), latencies };
}

async function emitRun({ client, received }: Transporter, events: number): Promise<MessageRun> {
  const before = received.count;
  const run = await inFlight64(
    events,
    (i) => lastValueFrom(client.emit('bench.event', { i }), { defaultValue: undefined }),
    () => received.count - before >= events,
  );
  // Emit latency only: how long the sender waits (Redis has the event), not the handling.
  return run;
}

async function sendRun({ client }: Transporter, requests: number): Promise<MessageRun> {
  return inFlight64(
    requests,
    async (i) => {
      const reply = await firstValueFrom(client.send<{ i: number }>('bench.echo', { i }));
      if (reply.i !== i) throw new Error(`reply ${reply.i} for request ${i}`);
    },
    () => true,
  );
}

async function nestRedis(url: string): Promise<Transporter> {
  const { hostname: host, port } = new URL(url);
  const options = { host, port: Number(port) };
  @Module({ controllers: [BenchController], providers: [Received] })
  class BuiltInModule {}
  const app = await NestFactory.createMicroservice(BuiltInModule, { transport: Transport.REDIS, options, logger: false });
  await app.listen();
  const client = ClientProxyFactory.create({ transport: Transport.REDIS, options });
  await client.connect();
  return {
    name: 'Nest built-in Transport.REDIS (pub/sub)',
    client,
    received: app.get(Received),
    close: async () => {
      await client.close();
      await app.close();
    },
  };
}

async function redisStreams(url: string, concurrency: number): Promise<Transporter> {
  @Module({
    imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: `bench-ms${concurrency}:` })],
    controllers: [BenchController],
    providers: [Received],
  })
  class StreamsModule {}
  const created: { app?: INestMicroservice } = {};
  const server = new RedisStreamsServer({ app: () => created.app as INestMicroservice, service: 'bench', concurrency });
  const app = await NestFactory.createMicroservice(StreamsModule, { strategy: server, logger: false });
  created.app = app;
  await app.listen();
  await firstValueFrom(server.status.pipe(filter((status) => status === 'connected')));
  const client = new RedisStreamsClient({ app, timeout: '30s' });
  await client.connect();
  return {
    name: `RedisStreamsServer/Client, concurrency ${concurrency}`,
    client,
    received: app.get(Received),
    close: async () => {
      await client.close();
      await app.close();
    },
  };
}
