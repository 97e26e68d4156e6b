import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Logger, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisTestServer } from '../lib/testing/index.js';
import { startFulfilmentService } from './fulfilment.microservice.js';
import { AppModule } from './app.module.js';

export interface RunningSample {
  app: INestApplication;
  url: string;
  /** The redis-server the sample started itself, when REDIS_URL was not given. */
  ownRedis?: RedisTestServer;
  close(): Promise<void>;
}

/**
 * Starts the sample app. Without `redisUrl` it starts its own redis-server (from PATH, on a free
 * port) and stops it again in `close()`.
 *
 * `sessionSecret` (SESSION_SECRET in main.ts) signs the session cookie; at least 32 characters.
 * Without it, a random secret is made at startup: fine for trying the sample, but then the
 * cookies of one run are rejected by the next (everyone is logged out by a restart), and
 * instances behind one load balancer reject each other's cookies. Production must set
 * SESSION_SECRET (the same on every instance, from a secret store, e.g. `openssl rand -base64 48`).
 */
export async function startSample(
  options: { port?: number; redisUrl?: string; databaseUrl?: string; sessionSecret?: string; logger?: LoggerService | false } = {},
): Promise<RunningSample> {
  const logger = new Logger('Sample');
  let sessionSecret = options.sessionSecret;
  if (sessionSecret === undefined) {
    sessionSecret = randomBytes(32).toString('base64url');
    if (options.logger !== false)
      logger.warn(
        'SESSION_SECRET is not set: signing session cookies with a random secret, so they do not outlive this run; production must set it',
      );
  }
  let redisUrl = options.redisUrl;
  let ownRedis: RedisTestServer | undefined;
  if (!redisUrl) {
    ownRedis = await RedisTestServer.start();
    redisUrl = ownRedis.url;
    if (options.logger !== false) logger.log(`REDIS_URL is not set: started redis-server at ${redisUrl}; it stops when the app stops`);
  }
  // The fulfilment microservice, started on its own: the orders app emits `order.placed` to it.
  const fulfilment = await startFulfilmentService(redisUrl, options.logger);
  const app = await NestFactory.create(AppModule.forRedis(redisUrl, options.databaseUrl, sessionSecret), { logger: options.logger });
  await app.listen(options.port ?? 3000, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    app,
    url,
    ownRedis,
    async close() {
      await app.close();
      await fulfilment.close();
      await ownRedis?.destroy();
    },
  };
}
