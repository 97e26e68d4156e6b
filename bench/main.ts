import 'reflect-metadata';
import { Redis } from 'ioredis';
import { RedisTestServer } from '../lib/testing/index.js';
import { bulkReport } from './bulk.scenarios.js';
import { KEY_COUNT, seed } from './core.scenarios.js';
import { combineRounds, report } from './harness.js';
import { HTTP_ROUNDS, httpReport } from './http.scenarios.js';
import { lockHandOffReport } from './lock-handoff.scenarios.js';
import { messagingReport } from './messaging.scenarios.js';
import { microservicesReport } from './microservices.scenarios.js';
import { invalidationDelayReport } from './near-cache.scenarios.js';
import { queueReport } from './queue.scenarios.js';
import { scaleReport } from './scale.scenarios.js';
import { ratioRows, writeSummary, type RatioRow } from './summary.js';
import { measureInProcesses } from './worker.js';

/**
 * `npm run bench`: starts its own redis-server, seeds KEY_COUNT keys of about 1 KB, and measures
 * every scenario at concurrency 1 and 64. BENCH_SECONDS sets the time per measurement (default 3),
 * taken in 2 rounds interleaved with the other scenarios of its group, in each of BENCH_PROCESSES
 * processes (default 3) run one after the other (rate-limit decisions, locks, sessions, leaderboards, unique counts,
 * geo indexes and activity bitmaps included): a row's ratio is the median over all the rounds.
 * Then the messaging scenarios (pub/sub, streams), BENCH_MESSAGES messages each (default 20000), and
 * the work queues ('queue': add + process + ack against a raw LMOVE loop and BullMQ), BENCH_JOBS jobs each (default 20000),
 * and the microservices transporters ('microservices': RedisStreamsServer/Client against Nest's built-in Transport.REDIS,
 * BENCH_MESSAGES events and BENCH_REQUESTS requests each, default 10000).
 * Then HTTP routes under autocannon ('http'), the bulk invalidation scale group ('bulk'; BENCH_SCALE_MAX
 * caps its sizes, default 10^6). REDIS_BLOOM_MODULE adds RedisBloom to the Bloom filter scenarios.
 * BENCH_FILTER (a regular expression over group names) runs a subset, e.g. BENCH_FILTER='cache hit', 'lock', 'session', 'leaderboard',
 * 'unique', 'geo', 'activity', 'queue', 'transaction', 'scheduled job', 'auto-pipelining', 'lock hand-off' (how soon a waiter
 * has a lock its holder released) or 'near cache|invalidation delay' (L1 with the bus against L1 with Redis's tracking,
 * and how long a write takes to reach another instance's L1).
 * A run of every group (no BENCH_FILTER), or any run with BENCH_SUMMARY=1, writes bench/results.svg
 * (a chart of ours against the peers at c=64) and bench/results.md (every row of ours with the
 * best peer of its group beside it).
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
/** BENCH_FILTER: a regular expression; only the groups it matches run ('messaging' for pub/sub and streams). */
const filter = new RegExp(process.env.BENCH_FILTER ?? '.', 'i');
const server = await RedisTestServer.start();
/** REDIS_BLOOM_MODULE: a RedisBloom module to load into a second server, for the BF.* scenarios. */
const bloomModule = process.env.REDIS_BLOOM_MODULE;
const moduleServer = bloomModule ? await RedisTestServer.start({ args: ['--loadmodule', bloomModule] }) : undefined;
try {
  const admin = new Redis(server.address);
  const moduleAdmin = moduleServer && new Redis(moduleServer.address);
  /** Every process of the throughput groups starts from an empty server but for the seeded keys. */
  const reset = async () => {
    await Promise.all([admin.flushall(), moduleAdmin?.flushall()]);
    await seed(admin);
  };

  const processes = Number(process.env.BENCH_PROCESSES ?? 3);
  if (!Number.isInteger(processes) || processes < 1)
    throw new Error(`BENCH_PROCESSES must be a whole number of processes, 1 or more, not "${process.env.BENCH_PROCESSES}"`);
  const rounds = 2;
  const settings = {
    roundSeconds: seconds / (processes * rounds),
    warmupSeconds: Math.min(0.5, seconds / 6),
    concurrencies: [1, 64],
    rounds,
  };
  console.log(
    `redis-server ${server.url}, ${KEY_COUNT} keys of ~1 KB, ${seconds}s per measurement in ${rounds} rounds in each of ${processes} process${processes === 1 ? '' : 'es'}, ratios are medians of the ${processes * rounds} rounds, Node ${process.version}`,
  );
  const measured = await measureInProcesses(
    { url: server.url, bloomUrl: moduleServer?.url, filter: filter.source, settings, processes },
    reset,
  );
  await Promise.all([admin.quit(), moduleAdmin?.quit()]);
  const summary: RatioRow[] = [];
  for (const group of new Set(measured.map((row) => row.scenario.group))) {
    const results = combineRounds(measured.filter((row) => row.scenario.group === group));
    console.log(`\n${report(results)}`);
    summary.push(...ratioRows(results));
  }

  const messages = Number(process.env.BENCH_MESSAGES ?? 20_000);
  if (filter.test('http')) {
    console.log(
      `\nHTTP: Nest on Express and on Fastify, autocannon with 64 connections, ${seconds}s per route in each of ${HTTP_ROUNDS} rounds; the server's CPU per request too\n`,
    );
    const http = await httpReport(server.url, seconds);
    console.log(http.text);
    // Each platform's routes beside its raw-GET route, a cached route among the cached ones and a
    // limited one among the limited ones, by req/s and again by the server's CPU per request; the
    // plain route (no Redis) is no one's row.
    for (const { group, name, ratio, spread, cpuRatio, cpuSpread } of http.rows)
      if (!/baseline|plain route/.test(name)) {
        const kind = /RateLimit|Throttler/.test(name) ? 'rate limit' : 'cache';
        summary.push({ group: `${group}: ${kind}`, name, concurrency: 64, ratio, spread });
        summary.push({ group: `${group}: ${kind}, CPU per request`, name, concurrency: 64, ratio: cpuRatio, spread: cpuSpread });
      }
  }
  if (filter.test('bulk')) {
    console.log(`\nBulk invalidation: one tag over N entries, against UNLINK of the same keys (1,000 a command, pipelined)\n`);
    console.log(await bulkReport(server.url));
  }
  if (filter.test('scale')) {
    console.log(`\nHow cost grows: each operation at c=1 as its data grows (median of 300 calls, in µs)\n`);
    console.log(await scaleReport(server.url));
  }
  if (filter.test('lock hand-off')) {
    console.log(`\nLock hand-off: from a release to a waiting caller's grant, each library's default retry pauses (a hold of 100 ms)\n`);
    console.log(await lockHandOffReport(server.url));
  }
  if (filter.test('invalidation delay')) {
    console.log(`\nInvalidation delay: from a write to another instance's L1 dropping the old value (500 writes each)\n`);
    console.log(await invalidationDelayReport(server.url));
  }
  if (filter.test('messaging')) {
    console.log(`\nMessaging: ${messages} messages per run, 64 publishers in flight; latency from publish to handler\n`);
    console.log(await messagingReport(server.url, messages));
  }
  if (filter.test('microservices')) {
    const requests = Number(process.env.BENCH_REQUESTS ?? 10_000);
    console.log(
      `\nMicroservices: ${messages} events and ${requests} requests per transporter, 64 in flight, one server instance; latency of emit (until Redis has it) and of the round trip\n`,
    );
    console.log(await microservicesReport(server.url, messages, requests));
  }
  if (filter.test('queue')) {
    const jobs = Number(process.env.BENCH_JOBS ?? 20_000);
    console.log(
      `\nWork queues: ${jobs} jobs per run, 64 producers in flight, one worker with concurrency 16; latency from add to handler\n`,
    );
    console.log(await queueReport(server.url, jobs));
  }
  if (process.env.BENCH_FILTER === undefined || process.env.BENCH_SUMMARY === '1') {
    // From .build/bench/ to the sources' bench/, where the chart is committed.
    writeSummary(summary, new URL('../../bench/', import.meta.url));
    console.log('\nWrote bench/results.svg and bench/results.md');
  }
} finally {
  await server.destroy();
  await moduleServer?.destroy();
}
