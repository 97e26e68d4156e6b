import { Injectable } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { InjectRedis, RedisKeys, WriteBehind, WriteBehindService } from '../../../lib/index.js';
import { serveCommands, startWorkerApp } from './worker-app.js';

/**
 * An instance with a write-behind repository, in its own process. Its "database" is a Redis hash
 * (`{wbt}:db`, id -> n), and `{wbt}:started` records each persist begun (`id:n`). With `hang`,
 * every persist hangs forever once begun: the process is meant to be killed there. Commands:
 * {"op":"save","id":"k","n":1}, {"op":"flush"}, {"op":"lag"}.
 */
const { hang = false } = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as { hang?: boolean };

interface Profile {
  id: string;
  n: number;
}

@Injectable()
class Profiles {
  constructor(
    @InjectRedis() private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  @WriteBehind({ key: (profile: Profile) => `profile:${profile.id}`, name: 'profiles' })
  async save(profile: Profile): Promise<void> {
    await this.redis.sadd(this.keys.tagged('wbt', 'started'), `${profile.id}:${profile.n}`);
    if (hang) await new Promise(() => undefined);
    await this.redis.hset(this.keys.tagged('wbt', 'db'), profile.id, String(profile.n));
  }
}

const app = await startWorkerApp({ queues: { 'write-behind': { visibilityTimeout: '1s', backoff: { type: 'fixed', delay: '50ms' } } } }, [
  Profiles,
]);
type Command = { id: number; op: 'save' | 'flush' | 'lag'; key?: string; n?: number; profile?: string };

serveCommands<Command>(app, async (command) => {
  switch (command.op) {
    case 'save':
      return app.get(Profiles).save({ id: command.profile ?? '', n: command.n ?? 0 });
    case 'flush':
      return app.get(WriteBehindService).flush(20_000);
    case 'lag':
      return app.get(WriteBehindService).lag();
  }
});
