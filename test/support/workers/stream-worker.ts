import { startWorkerApp } from './worker-app.js';
import { RedisConnections, RedisKeys, StreamService, type RedisConnectionOptions } from '../../../lib/index.js';

/**
 * A stream consumer in its own process, for multi-process tests. Configured by WORKER_CONFIG
 * (JSON). In `record` mode it counts each handled event in `<prefix>handled` (event n -> times);
 * in `hang` mode it records the events it received and never finishes handling them.
 */
interface WorkerConfig {
  connection: RedisConnectionOptions;
  keyPrefix: string;
  stream: string;
  group: string;
  name: string;
  mode: 'record' | 'hang';
  claimIdle: string;
  batch: number;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as WorkerConfig;

const app = await startWorkerApp({}, [], ['error', 'warn']);
const redis = app.get(RedisConnections).get();
const keys = app.get(RedisKeys);

await app.get(StreamService).consume<{ n: number }>(
  config.stream,
  config.group,
  async (event) => {
    if (config.mode === 'hang') {
      await redis.rpush(keys.key('received', config.name), String(event.n));
      await new Promise(() => undefined);
    }
    await redis.hincrby(keys.key('handled'), String(event.n), 1);
    await redis.hincrby(keys.key('handled-by'), config.name, 1);
  },
  { consumer: config.name, claimIdle: config.claimIdle as '1s', batch: config.batch },
);
console.log('WORKER_READY');

process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
