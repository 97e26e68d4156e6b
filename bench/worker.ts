/**
 * The throughput groups, measured in processes of their own, one after the other: each process
 * sets up every suite afresh and measures every group in its share of the rounds. A process's
 * state (V8's choices of what to promote to its old generation, which move a loop's throughput by
 * half from one process to the next on this machine) then weighs on a row in one share of its
 * rounds, not in all of them. Run as `node worker.js '<job as JSON>'` by {@link measureInProcesses}.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { activityScenarios } from './activity.scenarios.js';
import { bloomScenarios } from './bloom.scenarios.js';
import { cacheScenarios } from './cache.scenarios.js';
import { coreScenarios } from './core.scenarios.js';
import { geoScenarios } from './geo.scenarios.js';
import { measureRounds, type BenchSettings, type RoundRates } from './harness.js';
import { leaderboardScenarios } from './leaderboard.scenarios.js';
import { lockScenarios } from './lock.scenarios.js';
import { metricsScenarios } from './metrics.scenarios.js';
import { NEAR_CACHE_GROUPS, nearCacheScenarios } from './near-cache.scenarios.js';
import { rateLimitScenarios } from './ratelimit.scenarios.js';
import { scheduleScenarios } from './schedule.scenarios.js';
import { sessionScenarios } from './session.scenarios.js';
import { transactionScenarios } from './transaction.scenarios.js';
import { uniqueScenarios } from './unique.scenarios.js';

/** What one bench process is asked to measure, passed to it as JSON on its command line. */
interface WorkerJob {
  url: string;
  bloomUrl?: string;
  /** A regular expression over group names: the groups to measure. */
  filter: string;
  settings: BenchSettings;
  /** This process's number (from 1) and how many take turns, for the progress line. */
  process: number;
  processes: number;
  /** Where the process writes what it measured (JSON of `RoundRates[]`). */
  out: string;
}

/**
 * Measures every group matching `filter` in `processes` processes one after the other, each
 * taking `settings.rounds` rounds; `reset` runs before each, so every process starts from the same
 * data in Redis (a miss scenario's keys, counted from 0 in each process, must be new).
 */
export async function measureInProcesses(job: Omit<WorkerJob, 'process' | 'out'>, reset: () => Promise<void>): Promise<RoundRates[]> {
  const folder = mkdtempSync(join(tmpdir(), 'bench-rounds-'));
  try {
    const measured: RoundRates[] = [];
    for (let turn = 1; turn <= job.processes; turn++) {
      const out = join(folder, `${turn}.json`);
      await reset();
      await runWorker({ ...job, process: turn, out });
      measured.push(...(JSON.parse(readFileSync(out, 'utf8')) as RoundRates[]));
    }
    return measured;
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function runWorker(job: WorkerJob): Promise<void> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), JSON.stringify(job)], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`bench process ${job.process} of ${job.processes} ended with ${signal ?? `code ${code}`}`)),
    );
  });
}

async function work(job: WorkerJob): Promise<void> {
  const filter = new RegExp(job.filter, 'i');
  const suites = [
    await coreScenarios(job.url),
    await cacheScenarios(job.url),
    await rateLimitScenarios(job.url),
    await lockScenarios(job.url),
    await sessionScenarios(job.url),
    await leaderboardScenarios(job.url),
    await bloomScenarios(job.url, job.bloomUrl),
    await uniqueScenarios(job.url),
    await geoScenarios(job.url),
    await activityScenarios(job.url),
    await transactionScenarios(job.url),
    await metricsScenarios(job.url),
    await scheduleScenarios(job.url),
    // Eight app instances, two of them tracking keys on the server: only when asked for.
    ...(NEAR_CACHE_GROUPS.slice(0, 2).some((group) => filter.test(group)) ? [await nearCacheScenarios(job.url)] : []),
  ];
  try {
    const scenarios = suites.flatMap((suite) => suite.scenarios).filter((scenario) => filter.test(scenario.group));
    const groups = [...new Set(scenarios.map((scenario) => scenario.group))];
    const measured: RoundRates[] = [];
    for (const [index, group] of groups.entries()) {
      const label = `\r[process ${job.process}/${job.processes}] [${index + 1}/${groups.length}] ${group}`;
      const inGroup = scenarios.filter((scenario) => scenario.group === group);
      measured.push(...(await measureRounds(inGroup, job.settings, (step) => process.stderr.write(`${label}: ${step}   `))));
      process.stderr.write('\r\x1b[K');
    }
    writeFileSync(job.out, JSON.stringify(measured));
  } finally {
    await Promise.all(suites.map((suite) => suite.close()));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await work(JSON.parse(process.argv[2]) as WorkerJob);
  // The measurements are written: end here, whatever a client may still hold open.
  process.exit(0);
}
