import { Injectable } from '@nestjs/common';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { startWorkerApp } from './worker-app.js';
import {
  LeaderService,
  OncePerFire,
  RedisConnections,
  RedisKeys,
  ScheduledJobsService,
  type RedisConnectionOptions,
} from '../../../lib/index.js';

/**
 * An app instance with scheduled jobs in its own process, for multi-process tests. Configured by
 * WORKER_CONFIG (JSON). `mode: 'cron'`: a `@Cron` job every second with `@OncePerFire`, on a clock
 * `clockOffsetMs` off this host's; each run is noted in `<prefix>{st}:started` when it starts and
 * `<prefix>{st}:ended` when it ends (`<fire> <instance> <Date.now()>`), after `workMs`.
 * `mode: 'leader'`: takes part in electing `main`; each change is noted in `<prefix>{st}:leader`
 * (`<instance> <isLeader> <term> <Date.now()>`).
 */
interface WorkerConfig {
  connection: RedisConnectionOptions;
  keyPrefix: string;
  mode: 'cron' | 'leader';
  instance: string;
  clockOffsetMs?: number;
  workMs?: number;
  lease: string;
}

const config = JSON.parse(process.env.WORKER_CONFIG ?? '{}') as WorkerConfig;

@Injectable()
class EverySecond {
  constructor(
    private readonly jobs: ScheduledJobsService,
    private readonly connections: RedisConnections,
    private readonly keys: RedisKeys,
  ) {}

  @Cron('* * * * * *', { name: 'every-second' })
  @OncePerFire()
  async tick() {
    const redis = this.connections.get();
    const { fire } = this.jobs.current()!;
    await redis.rpush(this.keys.tagged('st', 'started'), `${fire} ${config.instance} ${Date.now()}`);
    await new Promise((resolve) => setTimeout(resolve, config.workMs ?? 0));
    await redis.rpush(this.keys.tagged('st', 'ended'), `${fire} ${config.instance} ${Date.now()}`);
  }
}

const schedule = { lease: config.lease as '1s', instance: config.instance, clock: { now: () => Date.now() + (config.clockOffsetMs ?? 0) } };
const app = await startWorkerApp(
  { schedule },
  config.mode === 'cron' ? [EverySecond] : [],
  ['error', 'warn'],
  config.mode === 'cron' ? [ScheduleModule.forRoot()] : [],
);
if (config.mode === 'leader') {
  const redis = app.get(RedisConnections).get();
  const log = app.get(RedisKeys).tagged('st', 'leader');
  const election = await app.get(LeaderService).elect('main', { lease: config.lease as '1s' });
  election.changes$.subscribe(({ isLeader, term }) => void redis.rpush(log, `${config.instance} ${isLeader} ${term} ${Date.now()}`));
}
console.log('WORKER_READY');

process.once('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
