import 'reflect-metadata';
import { Logger, type INestApplication, type LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisServer } from '../test/support/redis-server.js';
import { AppModule } from './app.module.js';

export interface RunningSample {
  app: INestApplication;
  url: string;
  /** The redis-server the sample started itself, when REDIS_URL was not given. */
  ownRedis?: RedisServer;
  close(): Promise<void>;
}

/**
 * Starts the sample app. Without `redisUrl` it starts its own redis-server (from PATH, on a free
 * port) and stops it again in `close()`.
 */
export async function startSample(options: { port?: number; redisUrl?: string; databaseUrl?: string; logger?: LoggerService | false } = {}): Promise<RunningSample> {
  const logger = new Logger('Sample');
  let redisUrl = options.redisUrl;
  let ownRedis: RedisServer | undefined;
  if (!redisUrl) {
    ownRedis = await RedisServer.start();
    redisUrl = ownRedis.url;
    if (options.logger !== false) logger.log(`REDIS_URL is not set: started redis-server at ${redisUrl}; it stops when the app stops`);
  }
  const app = await NestFactory.create(AppModule.forRedis(redisUrl, options.databaseUrl), { logger: options.logger });
  await app.listen(options.port ?? 3000, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    app,
    url,
    ownRedis,
    async close() {
      await app.close();
      await ownRedis?.destroy();
    },
  };
}
