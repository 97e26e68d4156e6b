import 'reflect-metadata';
import { createInterface } from 'node:readline';
import { Module, type INestApplicationContext, type LogLevel, type ModuleMetadata, type Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  RedisPatternsModule,
  type RedisConnectionOptions,
  type RedisPatternsModuleExtras,
  type RedisPatternsModuleOptions,
} from '../../../lib/index.js';

/**
 * The app of a worker process: the module on the connection and key prefix the test passed in
 * WORKER_CONFIG (see ../worker-process.ts), with the module options it passed there (if any) and
 * `options`, plus `providers` and `imports`, logging `logLevels`.
 */
export async function startWorkerApp(
  options: Partial<RedisPatternsModuleOptions & RedisPatternsModuleExtras> = {},
  providers: Provider[] = [],
  logLevels: LogLevel[] = ['error'],
  imports: NonNullable<ModuleMetadata['imports']> = [],
): Promise<INestApplicationContext> {
  const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as {
    connection: RedisConnectionOptions;
    keyPrefix: string;
    options?: Partial<RedisPatternsModuleOptions>;
  };
  const given = { ...config.options, ...options, connection: config.connection, keyPrefix: config.keyPrefix };
  @Module({ imports: [RedisPatternsModule.forRoot(given), ...imports], providers })
  class WorkerModule {}
  return NestFactory.createApplicationContext(WorkerModule, { logger: logLevels });
}

/**
 * The protocol of worker processes (see ../worker-process.ts): one JSON command per line on
 * stdin, one JSON answer per line on stdout (`{"id", "result"}` or `{"id", "error"}`),
 * WORKER_READY once listening, and the app closed when stdin ends.
 */
export function serveCommands<C extends { id: number }>(app: INestApplicationContext, run: (command: C) => Promise<unknown>): void {
  createInterface({ input: process.stdin }).on('line', (line) => {
    const command = JSON.parse(line) as C;
    run(command).then(
      (result) => console.log(JSON.stringify({ id: command.id, result })),
      (error: Error) => console.log(JSON.stringify({ id: command.id, error: error.message })),
    );
  });
  console.log('WORKER_READY');
  process.stdin.once('end', () => {
    void app.close().then(() => process.exit(0));
  });
}
