import 'reflect-metadata';
import { Controller, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import {
  Idempotent,
  InjectRedis,
  RedisKeys,
  RedisPatternsModule,
  type RedisClient,
  type RedisConnectionOptions,
} from '../../../lib/index.js';
import { serveCommands } from './worker-app.js';

/**
 * An HTTP app in its own process whose idempotent handler never finishes, for takeover tests:
 * `POST /jobs/hang` counts its start in `<prefix>idem-test:started` and then hangs, holding its
 * idempotency key (its lease renewed) until the process is killed. Configured by WORKER_CONFIG:
 * `{ connection, keyPrefix, lease }`. Answers {"op":"url"} with its base URL.
 */
const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as { connection: RedisConnectionOptions; keyPrefix: string; lease: number };

@Controller('jobs')
class HangingController {
  constructor(
    @InjectRedis() private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  @Post('hang')
  @Idempotent()
  async hang(): Promise<never> {
    await this.redis.incr(this.keys.key('idem-test', 'started'));
    return new Promise<never>(() => undefined);
  }
}

@Module({
  imports: [
    RedisPatternsModule.forRoot({ connection: config.connection, keyPrefix: config.keyPrefix, idempotency: { lease: config.lease } }),
  ],
  controllers: [HangingController],
})
class WorkerModule {}

const app = await NestFactory.create(WorkerModule, new ExpressAdapter(), { logger: ['error'] });
await app.listen(0, '127.0.0.1');
const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
serveCommands(app, async () => url);
