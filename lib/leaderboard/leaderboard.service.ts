import { Injectable, Logger } from '@nestjs/common';
import { RedisKeys } from '../core/keys.js';
import { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { toInstanceName } from '../core/validation.js';
import { Leaderboard } from './leaderboard.js';
import type { LeaderboardOptions } from './leaderboard.options.js';
import { resolveLeaderboardOptions } from './leaderboard.options-validator.js';

/**
 * Leaderboards on Redis sorted sets: 1-based ranks, first-come or shared ties, best/replace/
 * increment updates, pages, around-me, and daily, weekly or monthly boards.
 *
 * @example
 * const board = this.leaderboards.board('arcade', { period: 'week', timeZone: 'Europe/Paris' });
 * await board.submit(playerId, score);             // keeps the best score of the week
 * const [me] = await board.around(playerId, 0);    // { member, score, rank }
 */
@Injectable()
export class LeaderboardService {
  private readonly redis: RedisClient;
  private boardsMade = 0;
  private readonly outage = new OutageLog(
    new Logger('RedisPatterns:Leaderboard'),
    'leaderboards',
    'calls reject with RedisUnavailableError (503)',
  );

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
  ) {
    this.redis = connections.get();
  }

  /** Whether a board was made (registered boards are made at startup). */
  get inUse(): boolean {
    return this.boardsMade > 0;
  }

  /**
   * The board called `name`. Its options are checked here; give the same options wherever the
   * board is used (they are not stored in Redis).
   */
  board(name: string, options: LeaderboardOptions = {}): Leaderboard {
    toInstanceName(name, 'a board');
    this.boardsMade++;
    return new Leaderboard(name, this.redis, this.keys, resolveLeaderboardOptions(options, `leaderboard "${name}"`), this.outage);
  }
}
