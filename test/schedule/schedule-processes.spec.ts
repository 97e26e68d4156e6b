import type { INestApplicationContext } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisConnections, RedisKeys, ScheduledJobsService } from '../../lib/index.js';
import { startContext, topologies } from '../support/testing-app.js';
import { WorkerProcess } from '../support/worker-process.js';

/** One line of the workers' logs (see schedule-worker.ts). */
interface Noted {
  fire: number;
  instance: string;
  at: number;
}

const parse = (lines: string[]): Noted[] =>
  lines.map((line) => {
    const [fire, instance, at] = line.split(' ');
    return { fire: Number(fire), instance, at: Number(at) };
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(topologies)('scheduled jobs in separate processes, on $topology', ({ topology, connection }) => {
  let app: INestApplicationContext;
  let keys: RedisKeys;
  beforeAll(async () => {
    app = await startContext({ connection: connection() });
    keys = app.get(RedisKeys);
  });
  afterAll(() => app.close());
  const redis = () => app.get(RedisConnections).get();
  const noted = async (list: 'started' | 'ended') => parse(await redis().lrange(keys.tagged('st', list), 0, -1));
  const config = (instance: string, extra: object) => ({
    connection: connection(),
    keyPrefix: keys.prefix,
    instance,
    lease: '1s',
    ...extra,
  });
  const reset = async () => {
    await redis().del(keys.tagged('st', 'started'), keys.tagged('st', 'ended'), keys.tagged('st', 'leader'));
    await redis().del(...['state', 'lease', 'runs', 'counts'].map((part) => keys.tagged(['sj', 'every-second'], part)));
  };

  it('3 instances, clocks up to 2s apart, a @Cron every second for 8s: each fire ran once, none missing', async () => {
    await reset();
    const offsets = { a: 0, b: 1_300, c: -2_000 };
    const workers = await Promise.all(
      Object.entries(offsets).map(([instance, clockOffsetMs]) =>
        WorkerProcess.start('schedule-worker', config(instance, { mode: 'cron', clockOffsetMs, workMs: 20 })),
      ),
    );
    try {
      await sleep(8_000);
      for (const worker of workers) worker.kill('SIGTERM');
      expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual([0, 0, 0]);
      const started = await noted('started');
      const fires = started.map((run) => run.fire).sort((a, b) => a - b);
      const twice = fires.filter((fire, at) => fire === fires[at - 1]);
      const missing = fires.slice(1).reduce((gaps, fire, at) => gaps + (fire - fires[at] - 1_000) / 1_000, 0);
      // Together, so that a failure shows the fires with what went wrong.
      expect({ twice, missing, ended: (await noted('ended')).length, fires }).toEqual({
        twice: [],
        missing: 0,
        ended: fires.length,
        fires,
      });
      expect(fires.length).toBeGreaterThanOrEqual(6);
      const byInstance = Object.fromEntries(
        Object.keys(offsets).map((name) => [name, started.filter((run) => run.instance === name).length]),
      );
      const counts = await app.get(ScheduledJobsService).counts('every-second');
      expect(counts.succeeded).toBe(fires.length);
      console.log(
        `[schedule ${topology}] 3 instances (clocks +0s, +1.3s, -2s), ${fires.length} fires, ${started.length} runs (by instance ${JSON.stringify(byInstance)}), 0 twice, ${missing} missing`,
      );
    } finally {
      for (const worker of workers) worker.kill('SIGKILL');
    }
  }, 30_000);

  it('a 2.5s job every second: never two runs at once; its winner killed with SIGKILL mid-run: the fire is recorded abandoned and another instance runs the next fire after the lease', async () => {
    await reset();
    const workers = await Promise.all(
      ['a', 'b', 'c'].map((instance) => WorkerProcess.start('schedule-worker', config(instance, { mode: 'cron', workMs: 2_500 }))),
    );
    try {
      // Let a run start, then kill its instance in the middle of it.
      await expect.poll(async () => (await noted('ended')).length, { timeout: 10_000, interval: 100 }).toBe(1);
      await expect.poll(async () => (await noted('started')).length, { timeout: 10_000, interval: 50 }).toBe(2);
      await sleep(500);
      const victim = (await noted('started'))[1];
      const killedAt = Date.now();
      workers[victim.instance.charCodeAt(0) - 97].kill('SIGKILL');
      await expect.poll(async () => (await noted('started')).length, { timeout: 10_000, interval: 50 }).toBe(3);
      const [, , next] = await noted('started');
      await sleep(1_500);
      for (const worker of workers) worker.kill('SIGTERM');
      await Promise.all(workers.map((worker) => worker.exited));

      const started = await noted('started');
      const ended = await noted('ended');
      // Never two runs at once: each run started after the one before ended (or its instance was killed).
      const endOf = (run: Noted) => ended.find((end) => end.fire === run.fire)?.at ?? killedAt;
      for (let at = 1; at < started.length; at++) expect(started[at].at).toBeGreaterThanOrEqual(endOf(started[at - 1]));
      expect(new Set(started.map((run) => run.fire)).size).toBe(started.length);
      expect(next.instance).not.toBe(victim.instance);
      const history = await app.get(ScheduledJobsService).runs('every-second');
      expect(history.filter((run) => run.outcome === 'abandoned')).toEqual([
        { fire: victim.fire, instance: victim.instance, startedAt: expect.any(Number), outcome: 'abandoned' },
      ]);
      const counts = await app.get(ScheduledJobsService).counts('every-second');
      expect(counts).toMatchObject({ abandoned: 1, succeeded: ended.length, failed: 0 });
      expect(counts.skipped).toBeGreaterThan(0);
      console.log(
        `[schedule ${topology}] 2.5s job every second over 3 instances: ${started.length} runs, ${counts.skipped} fires skipped for overlap, 0 at once; the winner killed 500ms into its run: next run ${next.at - killedAt}ms after the kill (lease 1s), the killed run recorded abandoned`,
      );
    } finally {
      for (const worker of workers) worker.kill('SIGKILL');
    }
  }, 40_000);

  it('leader: 3 instances, the leader killed with SIGKILL: exactly one new leader within the lease plus a third (1.33s) and 500ms, terms increase', async () => {
    await reset();
    const workers = await Promise.all(
      ['a', 'b', 'c'].map((instance) => WorkerProcess.start('schedule-worker', config(instance, { mode: 'leader' }))),
    );
    try {
      const changes = async () =>
        (await redis().lrange(keys.tagged('st', 'leader'), 0, -1)).map((line) => {
          const [instance, isLeader, term, at] = line.split(' ');
          return { instance, isLeader: isLeader === 'true', term: Number(term), at: Number(at) };
        });
      const leaders = async () => (await changes()).filter((change) => change.isLeader);
      await expect.poll(async () => (await leaders()).length, { timeout: 5_000 }).toBe(1);
      await sleep(1_000); // renewals: still one leader
      const [first] = await leaders();
      expect(await leaders()).toHaveLength(1);
      // Redis's view: the leader's lease key holds one holder's token at a time; watch it change hands.
      const leaseKey = `${keys.prefix}lock:{leader:main}`;
      const holders: (string | null)[] = [];
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const holder = await redis().get(leaseKey);
          if (holder !== holders.at(-1)) holders.push(holder);
          await sleep(10);
        }
      })();
      const killedAt = Date.now();
      workers[first.instance.charCodeAt(0) - 97].kill('SIGKILL');
      await expect.poll(async () => (await leaders()).length, { timeout: 1_000 + 333 + 500, interval: 20 }).toBe(2);
      await sleep(700);
      watching = false;
      await watch;
      // The killed leader's token, then (after its lease ran out, perhaps a moment with none) the new leader's, never back.
      const tokens = holders.filter((holder) => holder !== null);
      expect(tokens).toHaveLength(2);
      expect(holders.at(-1)).toBe(tokens[1]);
      expect(Number(await redis().get(`${keys.prefix}fence:{leader:main}`))).toBe((await leaders())[1].term);
      const [, second] = await leaders();
      expect(await leaders()).toHaveLength(2); // exactly one new leader
      expect(second.instance).not.toBe(first.instance);
      expect(second.term).toBeGreaterThan(first.term);
      expect(second.at).toBeGreaterThanOrEqual(killedAt);
      console.log(
        `[leader ${topology}] lease 1s: leader killed, new leader after ${second.at - killedAt}ms, terms ${first.term} -> ${second.term}`,
      );
      for (const worker of workers) worker.kill('SIGTERM');
      await Promise.all(workers.map((worker) => worker.exited));
    } finally {
      for (const worker of workers) worker.kill('SIGKILL');
    }
  }, 30_000);
});
