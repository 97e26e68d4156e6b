import { Injectable } from '@nestjs/common';
import { InvalidOptionError } from '../core/errors.js';
import { RedisKeys } from '../core/keys.js';
import { MaxmemoryPolicyCheck } from '../core/maxmemory-policy.check.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisConnections } from '../core/redis-connections.service.js';
import { Leaderboard } from './leaderboard.js';
import type { LeaderboardOptions } from './leaderboard.options.js';
import { resolveLeaderboardOptions } from './leaderboard.options-validator.js';

/** The longest board name, in characters. */
const MAX_NAME_LENGTH = 128;

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

  constructor(
    connections: RedisConnections,
    private readonly keys: RedisKeys,
    private readonly maxmemoryPolicy: MaxmemoryPolicyCheck,
  ) {
    this.redis = connections.get();
  }

  /**
   * The board called `name`. Its options are checked here; give the same options wherever the
   * board is used (they are not stored in Redis).
   */
  board(name: string, options: LeaderboardOptions = {}): Leaderboard {
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) throw new InvalidOptionError('name', `a board name of 1 to ${MAX_NAME_LENGTH} characters`, name);
    // Boards made at startup (registered ones) are checked against maxmemory-policy with the rest.
    this.maxmemoryPolicy.declare('leaderboards', 'durable');
    return new Leaderboard(name, this.redis, this.keys, resolveLeaderboardOptions(options, `leaderboard "${name}"`));
  }
}
