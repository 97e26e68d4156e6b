import { serveCommands, startWorkerApp } from './worker-app.js';
import { CacheService, type CacheOptions } from '../../../lib/index.js';

/**
 * A cache user in its own process, for multi-instance tests. Reads one JSON command per line on
 * stdin and answers one JSON line on stdout:
 * - {"op":"getOrSet","key":"k","value":1,"delayMs":100} loads `value` (after delayMs) on a miss;
 * - {"op":"get","key":"k"}; {"op":"set","key":"k","value":1}; {"op":"stats"};
 * - {"op":"peek","key":"k"}: `get` with L1, answering `{ value, fromL1 }` (whether L1 answered it).
 * The cache options are WORKER_CONFIG's `cache`, by default an L1 of one minute.
 */
const { cache: cacheOptions } = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as { cache?: CacheOptions };
const app = await startWorkerApp({ cache: cacheOptions ?? { l1: { ttl: '1m' } } });
const cache = app.get(CacheService);
let loaderCalls = 0;

type Command = { id: number; op: 'getOrSet' | 'get' | 'set' | 'stats' | 'peek'; key: string; value?: unknown; delayMs?: number };

async function run(command: Command): Promise<unknown> {
  switch (command.op) {
    case 'getOrSet':
      return cache.getOrSet(
        command.key,
        async () => {
          loaderCalls++;
          await new Promise((resolve) => setTimeout(resolve, command.delayMs ?? 0));
          return command.value;
        },
        { l1: true },
      );
    case 'get':
      return cache.get(command.key, { l1: true });
    case 'set':
      return cache.set(command.key, command.value, { l1: true });
    case 'stats':
      return { ...cache.stats(), loaderCalls };
    case 'peek': {
      const hits = cache.stats().l1.hits;
      const value = await cache.get(command.key, { l1: true });
      return { value, fromL1: cache.stats().l1.hits > hits };
    }
  }
}

serveCommands(app, run);
