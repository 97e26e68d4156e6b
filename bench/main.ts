import 'reflect-metadata';
import { Redis } from 'ioredis';
import { RedisServer } from '../test/support/redis-server.js';
import { bloomScenarios } from './bloom.scenarios.js';
import { cacheScenarios } from './cache.scenarios.js';
import { coreScenarios, KEY_COUNT, seed } from './core.scenarios.js';
import { report, runAll } from './harness.js';
import { httpReport } from './http.scenarios.js';
import { leaderboardScenarios } from './leaderboard.scenarios.js';
import { lockScenarios } from './lock.scenarios.js';
import { messagingReport } from './messaging.scenarios.js';
import { rateLimitScenarios } from './ratelimit.scenarios.js';
import { sessionScenarios } from './session.scenarios.js';

/**
 * `npm run bench`: starts its own redis-server, seeds KEY_COUNT keys of about 1 KB, and measures
 * every scenario at concurrency 1 and 64. BENCH_SECONDS sets the time per measurement (default 3),
 * taken in 5 turns interleaved with the other scenarios (rate-limit decisions, locks, sessions and leaderboards included).
 * Then the messaging scenarios (pub/sub, streams), BENCH_MESSAGES messages each (default 20000).
 * Then HTTP routes under autocannon ('http'). REDIS_BLOOM_MODULE adds RedisBloom to the Bloom filter scenarios.
 * BENCH_FILTER (a regular expression over group names) runs a subset, e.g. BENCH_FILTER='cache hit', 'lock', 'session' or 'leaderboard'.
 */
const seconds = Number(process.env.BENCH_SECONDS ?? 3);
/** BENCH_FILTER: a regular expression; only the groups it matches run ('messaging' for pub/sub and streams). */
const filter = new RegExp(process.env.BENCH_FILTER ?? '.', 'i');
const server = await RedisServer.start();
/** REDIS_BLOOM_MODULE: a RedisBloom module to load into a second server, for the BF.* scenarios. */
const bloomModule = process.env.REDIS_BLOOM_MODULE;
const moduleServer = bloomModule ? await RedisServer.start({ args: ['--loadmodule', bloomModule] }) : undefined;
try {
  const admin = new Redis(server.address);
  await seed(admin);
  await admin.quit();

  const suites = [await coreScenarios(server.url), await cacheScenarios(server.url), await rateLimitScenarios(server.url), await lockScenarios(server.url), await sessionScenarios(server.url), await leaderboardScenarios(server.url), await bloomScenarios(server.url, moduleServer?.url)];
  const results = await runAll(
    suites.flatMap((suite) => suite.scenarios).filter((scenario) => filter.test(scenario.group)),
    { seconds, warmupSeconds: Math.min(1, seconds / 3), concurrencies: [1, 64], rounds: 5 },
  );
  console.log(`redis-server ${server.url}, ${KEY_COUNT} keys of ~1 KB, ${seconds}s per measurement, Node ${process.version}\n`);
  console.log(report(results));
  await Promise.all(suites.map((suite) => suite.close()));

  const messages = Number(process.env.BENCH_MESSAGES ?? 20_000);
  if (filter.test('http')) {
    console.log(`\nHTTP: Nest + Express, autocannon with 64 connections, ${seconds}s per route\n`);
    console.log(await httpReport(server.url, seconds));
  }
  if (filter.test('messaging')) {
    console.log(`\nMessaging: ${messages} messages per run, 64 publishers in flight; latency from publish to handler\n`);
    console.log(await messagingReport(server.url, messages));
  }
} finally {
  await server.destroy();
  await moduleServer?.destroy();
}
