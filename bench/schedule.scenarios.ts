import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { RedisPatternsModule, ScheduledJobsService, type OncePerFireTick } from '../lib/index.js';
import type { Scenario } from './harness.js';

const FIRE = 'scheduled job fire';
/** Jobs the fires are spread over, so that no two fires in flight at c=64 belong to one job (which would skip one). */
const JOBS = 256;

/**
 * The cost `@OncePerFire` adds to a fire, against the bare handler (the baseline: one `INCR`, as a
 * small job would do). A won fire is the claim (one script, the only round trip before the
 * handler starts), the handler, and the record of its end (one script, after it); a fire another
 * instance already claimed is the claim alone. Each call is a new fire: the app's clock moves one
 * second per reading (`serverClock: false`), so no claim finds its fire done.
 */
export async function scheduleScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  let now = Date.now();
  const moving = await appWith(url, 'bench-sj:', () => (now += 1_000));
  const fixed = await appWith(url, 'bench-sj-done:', () => 0);
  const handler = () => raw.incr('bench-sj-handler');
  const jobs = moving.get(ScheduledJobsService);
  const ticks: OncePerFireTick[] = Array.from({ length: JOBS }, (_, job) => jobs.oncePerFire(`job-${job}`, handler, { interval: '1s' }));
  const claimed = fixed.get(ScheduledJobsService).oncePerFire('claimed', handler, { interval: '1s' });
  await claimed(); // its one fire is claimed: every later call finds it done

  const scenarios: Scenario[] = [
    { group: FIRE, name: 'bare handler (one INCR)', baseline: true, run: () => handler() },
    { group: FIRE, name: '@OncePerFire, fire won: claim + handler + record', run: (i) => ticks[i % JOBS].fire() },
    { group: FIRE, name: '@OncePerFire, fire already claimed: claim only', run: () => claimed.fire() },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), moving.close(), fixed.close()]);
    },
  };
}

async function appWith(url: string, keyPrefix: string, now: () => number): Promise<INestApplicationContext> {
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix, schedule: { clock: { now }, serverClock: false } })] })
  class ScheduleBenchModule {}
  return NestFactory.createApplicationContext(ScheduleBenchModule, { logger: false });
}
