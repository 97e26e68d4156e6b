/**
 * Options of one leaderboard, given to `LeaderboardService.board(name, options)` or registered
 * under `leaderboards` in the module options.
 *
 * @example
 * RedisPatternsModule.forRoot({ connection, leaderboards: { weekly: { period: 'week', timeZone: 'Europe/Paris', retain: 4 } } });
 */
export interface LeaderboardOptions {
  /** `'desc'`: the highest score ranks first; `'asc'`: the lowest (times, golf). @default 'desc' */
  order?: 'desc' | 'asc';
  /**
   * `'first-come'`: equal scores rank by who reached them first (scores must then be integers
   * within ±{@link MAX_FIRST_COME_SCORE}); `'shared'`: equal scores share a rank, competition
   * style (1, 2, 2, 4), and any finite number is a score. @default 'first-come'
   */
  ties?: 'first-come' | 'shared';
  /** One board for all time, or a new board every day, week or month. @default 'all' */
  period?: 'all' | 'day' | 'week' | 'month';
  /** The IANA time zone in which periods begin at midnight. @default 'UTC' */
  timeZone?: string;
  /** The day weeks begin on, 0 (Sunday) to 6 (Saturday). @default 1 (Monday) */
  weekStart?: number;
  /** How many past periods stay readable through `at(date)`; older ones expire. @default 1 */
  retain?: number;
  /** Keep only the best `maxSize` entries; others are dropped as they fall out. @default no limit */
  maxSize?: number;
  /** The clock that decides the current period (ms since the epoch). @default Date.now */
  clock?: () => number;
}

/** How `submit` changes a member's score. */
export type SubmitMode = 'best' | 'replace' | 'increment';

/** A member's place on a board. `rank` is 1-based, and null when the member is not on the board. */
export interface LeaderboardEntry {
  member: string;
  score: number;
  rank: number | null;
}

/** With `ties: 'first-come'`, scores are integers from -MAX_FIRST_COME_SCORE to MAX_FIRST_COME_SCORE. */
export const MAX_FIRST_COME_SCORE = 2 ** 25 - 1;
