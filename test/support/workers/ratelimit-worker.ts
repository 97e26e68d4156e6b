import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RateLimitService, RedisPatternsModule, type RateLimitPolicy, type RedisConnectionOptions } from '../../../lib/index.js';
import { serveCommands } from './serve-commands.js';

/**
 * A rate-limited app instance in its own process, for multi-instance tests. Reads one JSON command
 * per line on stdin and answers one JSON line on stdout:
 * - {"op":"flood","key":"k","policy":{...},"count":300} sends `count` concurrent consumes and
 *   answers how many were allowed.
 */
interface WorkerConfig {
  connection: RedisConnectionOptions;
  keyPrefix: string;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as WorkerConfig;

@Module({ imports: [RedisPatternsModule.forRoot({ connection: config.connection, keyPrefix: config.keyPrefix })] })
class WorkerModule {}

const app = await NestFactory.createApplicationContext(WorkerModule, { logger: ['error'] });
const limits = app.get(RateLimitService);

type Command = { id: number; op: 'flood'; key: string; policy: RateLimitPolicy; count: number };

async function run(command: Command): Promise<unknown> {
  const decisions = await Promise.all(Array.from({ length: command.count }, () => limits.consume(command.key, command.policy)));
  return decisions.filter((decision) => decision.allowed).length;
}

serveCommands(app, run);
