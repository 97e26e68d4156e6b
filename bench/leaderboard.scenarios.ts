import { Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { Leaderboard as RedisRankLeaderboard } from 'redis-rank';
import { LeaderboardService, RedisPatternsModule } from '../lib/index.js';
import type { Scenario } from './harness.js';

const SUBMIT = 'leaderboard submit';
const RANK = 'leaderboard rank';
const AROUND = 'leaderboard around';
/** Players on every board before anything is measured. */
export const PLAYER_COUNT = 10_000;
const MAX_SCORE = 1_000_000;

const player = (i: number) => `player-${i % PLAYER_COUNT}`;
/** A score that moves with the counter, so 'best' submissions sometimes improve and sometimes do not. */
const scoreOf = (i: number) => (i * 7919) % MAX_SCORE;

/**
 * Leaderboards over PLAYER_COUNT players (each flavour its own board, filled alike):
 * - 'leaderboard submit': raw `ZADD key GT` (keep the best; the baseline), `Leaderboard.submit`
 *   in 'best' mode with first-come ties (one script: the sequence, the encoded score, the rank
 *   back) and with shared ties, and redis-rank's `updateOne` with its 'best' policy;
 * - 'leaderboard rank': raw `ZREVRANK` + 1 (the baseline), `Leaderboard.rank` (first-come and
 *   shared), and redis-rank's `rank`;
 * - 'leaderboard around': raw `ZREVRANK` then `ZRANGE REV WITHSCORES` (two round trips, the
 *   baseline), `Leaderboard.around(member, 5)` (one script), and redis-rank's `around(id, 5)`.
 * Every rank read must find its player: anything else throws and stops the run.
 */
export async function leaderboardScenarios(url: string): Promise<{ scenarios: Scenario[]; close(): Promise<void> }> {
  const raw = new Redis(url);
  const redisRankClient = new Redis(url);
  @Module({ imports: [RedisPatternsModule.forRoot({ connection: { url }, keyPrefix: 'bench-lb:' })] })
  class LeaderboardBenchModule {}
  const app: INestApplicationContext = await NestFactory.createApplicationContext(LeaderboardBenchModule, { logger: false });
  const leaderboards = app.get(LeaderboardService);
  const firstCome = leaderboards.board('first-come');
  const shared = leaderboards.board('shared', { ties: 'shared' });
  const redisRank = new RedisRankLeaderboard(redisRankClient, 'bench-redis-rank', { sortPolicy: 'high-to-low', updatePolicy: 'best' });
  const RAW_KEY = 'bench-raw-lb';

  for (let i = 0; i < PLAYER_COUNT; i += 500) {
    const batch = Array.from({ length: 500 }, (_, k) => i + k);
    await raw.zadd(RAW_KEY, ...batch.flatMap((k) => [scoreOf(k), player(k)]));
    await redisRank.update(batch.map((k) => ({ id: player(k), value: scoreOf(k) })));
    await Promise.all(batch.flatMap((k) => [firstCome.submit(player(k), scoreOf(k)), shared.submit(player(k), scoreOf(k))]));
  }
  const found = <T>(value: T | null | undefined): T => {
    if (value === null || value === undefined) throw new Error('a rank read did not find its player');
    return value;
  };

  const scenarios: Scenario[] = [
    {
      group: SUBMIT,
      name: 'raw ioredis ZADD GT (best score)',
      baseline: true,
      run: (i) => raw.call('ZADD', RAW_KEY, 'GT', scoreOf(i), player(i)),
    },
    { group: SUBMIT, name: "Leaderboard.submit 'best', first-come ties", run: (i) => firstCome.submit(player(i), scoreOf(i)) },
    { group: SUBMIT, name: "Leaderboard.submit 'best', shared ties", run: (i) => shared.submit(player(i), scoreOf(i)) },
    { group: SUBMIT, name: "redis-rank 2 updateOne 'best'", run: (i) => redisRank.updateOne(player(i), scoreOf(i)) },
    { group: RANK, name: 'raw ioredis ZREVRANK + 1', baseline: true, run: async (i) => found(await raw.zrevrank(RAW_KEY, player(i))) + 1 },
    { group: RANK, name: 'Leaderboard.rank, first-come ties', run: async (i) => found(await firstCome.rank(player(i))) },
    { group: RANK, name: 'Leaderboard.rank, shared ties', run: async (i) => found(await shared.rank(player(i))) },
    { group: RANK, name: 'redis-rank 2 rank', run: async (i) => found(await redisRank.rank(player(i))) },
    {
      group: AROUND,
      name: 'raw ioredis ZREVRANK, then ZRANGE REV WITHSCORES',
      baseline: true,
      run: async (i) => {
        const at = found(await raw.zrevrank(RAW_KEY, player(i)));
        return raw.call('ZRANGE', RAW_KEY, Math.max(0, at - 5), at + 5, 'REV', 'WITHSCORES');
      },
    },
    { group: AROUND, name: 'Leaderboard.around(member, 5)', run: (i) => firstCome.around(player(i), 5) },
    { group: AROUND, name: 'redis-rank 2 around(id, 5)', run: (i) => redisRank.around(player(i), 5) },
  ];
  return {
    scenarios,
    async close() {
      await Promise.all([raw.quit(), redisRankClient.quit(), app.close()]);
    },
  };
}
