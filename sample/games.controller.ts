import { BadRequestException, Body, Controller, Get, NotFoundException, Param, Post, Query } from '@nestjs/common';
import { InjectLeaderboard, InvalidOptionError, type Leaderboard, type LeaderboardEntry } from '../lib/index.js';

/** A positive whole number from a query string, else `fallback`. */
function positive(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1 || number > max)
    throw new BadRequestException(`${name} must be a whole number from 1 to ${max}`);
  return number;
}

/** Bad input the library refused (a fractional or out-of-range score, an empty player) is the client's mistake: 400. */
async function clientError<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new BadRequestException(`${error.option}: expected ${error.expected}`);
    throw error;
  }
}

/**
 * A game's leaderboards: every score goes to an all-time board and to this week's board (weeks
 * begin on Monday in UTC), keeping each player's best. Equal scores rank by who reached them
 * first. Both boards are registered in the module options and injected by name.
 *
 * `curl -X POST -H 'content-type: application/json' -d '{"player":"ada","score":4200}' http://127.0.0.1:3000/games/scores`
 */
@Controller('games')
export class GamesController {
  constructor(
    @InjectLeaderboard('arcade') private readonly allTime: Leaderboard,
    @InjectLeaderboard('arcade-weekly') private readonly weekly: Leaderboard,
  ) {}

  /** Records a score on both boards; each keeps the player's best. */
  @Post('scores')
  async submit(@Body() body: { player?: unknown; score?: unknown }): Promise<{ allTime: LeaderboardEntry; weekly: LeaderboardEntry }> {
    if (typeof body?.player !== 'string' || typeof body.score !== 'number')
      throw new BadRequestException('player (a string) and score (a number) are required');
    const { player, score } = body as { player: string; score: number };
    const [allTime, weekly] = await clientError(() => Promise.all([this.allTime.submit(player, score), this.weekly.submit(player, score)]));
    return { allTime, weekly };
  }

  /** `curl http://127.0.0.1:3000/games/top`: the all-time and weekly top 10. */
  @Get('top')
  async top(): Promise<{ allTime: LeaderboardEntry[]; weekly: LeaderboardEntry[]; week: string }> {
    const [allTime, weekly] = await Promise.all([this.allTime.top(10), this.weekly.top(10)]);
    return { allTime, weekly, week: this.weekly.periodId };
  }

  /** `curl http://127.0.0.1:3000/games/players/ada`: the player's all-time rank and the five players on each side. */
  @Get('players/:player')
  async player(@Param('player') player: string): Promise<{ me: LeaderboardEntry; around: LeaderboardEntry[] }> {
    const around = await clientError(() => this.allTime.around(player, 5));
    const me = around.find((entry) => entry.member === player);
    if (!me) throw new NotFoundException(`No score for ${player}`);
    return { me, around };
  }

  /** `curl 'http://127.0.0.1:3000/games/leaderboard?page=2&size=20'`: the all-time board, a page at a time. */
  @Get('leaderboard')
  async page(
    @Query('page') page?: string,
    @Query('size') size?: string,
  ): Promise<{ page: number; size: number; total: number; entries: LeaderboardEntry[] }> {
    const [pageNumber, pageSize] = [positive(page, 'page', 1, 1_000_000), positive(size, 'size', 20, 100)];
    const [entries, total] = await Promise.all([this.allTime.page(pageNumber, pageSize), this.allTime.count()]);
    return { page: pageNumber, size: pageSize, total, entries };
  }
}
