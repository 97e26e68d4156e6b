import 'reflect-metadata';
import { Controller, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { filter, firstValueFrom } from 'rxjs';
import { RedisConnections, RedisKeys, RedisPatternsModule, type RedisConnectionOptions } from '../../../lib/index.js';
import { RedisStreamsClient, RedisStreamsServer } from '../../../lib/microservices/index.js';
import { serveCommands } from './worker-app.js';

/**
 * An instance of a microservice on RedisStreamsServer in its own process (role `server`), or a
 * requester with a RedisStreamsClient (role `requester`). Configured by WORKER_CONFIG (JSON).
 * Each `job` event `{ n }` is counted in `<prefix>{mt}:handled` (n -> times) and
 * `<prefix>{mt}:handled-by` (name -> events) once its work (`workMs`) is done. With `hangAfter`,
 * every event after that many is counted, marked in `<prefix>{mt}:inflight` and then never
 * finished (so never acknowledged) until the process is killed. `whoami` answers `{ n, by }`,
 * `slow` answers `n` after 200ms. The requester answers `{ cmd: 'send', count }` by sending that
 * many `slow` requests without waiting for them.
 */
interface WorkerConfig {
  connection: RedisConnectionOptions;
  keyPrefix: string;
  role: 'server' | 'requester';
  name: string;
  concurrency: number;
  claimIdle: string;
  workMs: number;
  replyExpire: string;
  hangAfter?: number;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as WorkerConfig;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let started = 0;

@Controller()
class JobsController {
  constructor(
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
  ) {}

  @EventPattern('job')
  async job(@Payload() { n }: { n: number }): Promise<void> {
    const redis = this.connections.get();
    if (config.hangAfter !== undefined && ++started > config.hangAfter) {
      await redis
        .multi()
        .hincrby(this.keys.tagged('mt', 'handled'), String(n), 1)
        .sadd(this.keys.tagged('mt', 'inflight'), String(n))
        .exec();
      await new Promise(() => undefined);
    }
    await sleep(config.workMs);
    await redis
      .multi()
      .hincrby(this.keys.tagged('mt', 'handled'), String(n), 1)
      .hincrby(this.keys.tagged('mt', 'handled-by'), config.name, 1)
      .exec();
  }

  @MessagePattern('whoami')
  whoami(@Payload() { n }: { n: number }) {
    return { n, by: config.name };
  }

  @MessagePattern('slow')
  async slow(@Payload() { n }: { n: number }): Promise<number> {
    await sleep(200);
    return n;
  }
}

const redisModule = RedisPatternsModule.forRoot({ connection: config.connection, keyPrefix: config.keyPrefix });

if (config.role === 'server') {
  @Module({ imports: [redisModule], controllers: [JobsController] })
  class ServiceModule {}
  // The strategy exists before the app: it reaches the module through a function.
  const created: { app?: INestApplicationContext } = {};
  const server = new RedisStreamsServer({
    app: () => created.app as INestApplicationContext,
    service: 'jobs',
    concurrency: config.concurrency,
    claimIdle: config.claimIdle as '1s',
    replyExpire: config.replyExpire as '1s',
    retryBackoff: { min: '20ms', max: '200ms' },
  });
  const microservice = await NestFactory.createMicroservice(ServiceModule, { strategy: server, logger: ['error'] });
  created.app = microservice;
  await microservice.listen();
  await firstValueFrom(server.status.pipe(filter((status) => status === 'connected')));
  console.log('WORKER_READY');
  process.once('SIGTERM', () => {
    microservice.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
} else {
  @Module({ imports: [redisModule] })
  class RequesterModule {}
  const app = await NestFactory.createApplicationContext(RequesterModule, { logger: ['error'] });
  const client = new RedisStreamsClient({ app, timeout: '10s' });
  await client.connect();
  serveCommands<{ id: number; cmd: 'send'; count: number }>(app, async ({ count }) => {
    for (let n = 0; n < count; n++) client.send('slow', { n }).subscribe({ error: () => undefined });
    return 'sent';
  });
}
