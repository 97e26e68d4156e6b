import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import type { RedisKeys } from '../core/keys.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { assertRetained, retainedPeriodAt } from '../core/calendar.js';
import { toMemberArgument } from '../core/validation.js';
import { MAX_FIRST_COME_SCORE, type LeaderboardEntry, type SubmitMode } from './leaderboard.options.js';
import type { ResolvedLeaderboardOptions } from './leaderboard.options-validator.js';

const submitScript = RedisScript.fromFile(new URL('./leaderboard-submit.lua', import.meta.url));
const readScript = RedisScript.fromFile(new URL('./leaderboard-read.lua', import.meta.url));

/** Stored first-come scores are score * 2^28 + a tie-break (see leaderboard-submit.lua). */
const SEQUENCE = 2 ** 28;
/** The longest member id, in bytes. */
const MAX_MEMBER_BYTES = 512;
const SUBMIT_MODES: readonly SubmitMode[] = ['best', 'replace', 'increment'];
const ALL_TIME: Period = { id: 'all' };

/** One period of a board: its id (part of the key) and when its keys expire (`retain` periods after its end; never for 'all'). */
interface Period {
  id: string;
  expiresAt?: number;
}

/** The period of a board that contains `instant`. */
function boardPeriodAt(instant: number, options: ResolvedLeaderboardOptions): Period {
  if (options.period === 'all') return ALL_TIME;
  return retainedPeriodAt(instant, options.retain, { unit: options.period, timeZone: options.timeZone, weekStart: options.weekStart });
}

/**
 * A first-come board has taken 2^28 - 1 score changes in one period (each submit or increment
 * that changes a score takes one): it accepts no more until `reset()`. Use `ties: 'shared'`, or
 * a periodic board, where that many changes are possible.
 */
export class LeaderboardFullError extends RedisPatternsError {}

/**
 * One leaderboard on a Redis sorted set. Every read is one command or one script, so `rank`,
 * `top`, `page` and `around` agree with each other at any moment; every write is one script too.
 *
 * @example
 * const board = this.leaderboards.board('arcade', { period: 'week' });
 * await board.submit('ada', 4200, { mode: 'best' });        // { member: 'ada', score: 4200, rank: 1 }
 * await board.around('ada', 5);                             // ada and up to ten neighbours
 */
export class Leaderboard {
  /** The keys of the period used last: built once per period, not per call. */
  private lastKeys?: { periodId: string; keys: [string, string] };

  constructor(
    readonly name: string,
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedLeaderboardOptions,
    /** The feature's outage log: a call Redis cannot answer rejects with RedisUnavailableError (503). */
    private readonly outage: OutageLog,
    /** A fixed period (for `at(date)`); otherwise the current one, by the board's clock. */
    private readonly fixedPeriod?: Period,
  ) {}

  /**
   * Records a score: `'best'` (the default) keeps the better of the old and new one, `'replace'`
   * sets it, `'increment'` adds to it. Resolves with the member's entry afterwards (rank null
   * when `maxSize` left it off the board).
   * @example
   * await board.submit('ada', 120, { mode: 'increment' });
   */
  async submit(member: string, score: number, { mode = 'best' }: { mode?: SubmitMode } = {}): Promise<LeaderboardEntry> {
    checkMember(member);
    if (!SUBMIT_MODES.includes(mode)) throw new InvalidOptionError('mode', "'best', 'replace' or 'increment'", mode);
    this.checkScore(score, mode === 'increment' ? 'by' : 'score');
    const period = this.writablePeriod();
    const [key, sequenceKey] = this.keysOf(period);
    const [status, stored, rank] = await this.outage.guard(
      submitScript.run<[number, string | null, number]>(
        this.redis,
        [key, sequenceKey],
        [mode, member, score, this.options.order, this.options.ties, period.expiresAt ?? 0, this.options.maxSize],
      ),
    );
    if (status === -1)
      throw new InvalidOptionError(
        mode === 'increment' ? 'by' : 'score',
        this.options.ties === 'first-come'
          ? `a result within ±${MAX_FIRST_COME_SCORE} (the exact range of 'first-come' ties)`
          : 'a finite result',
        score,
      );
    if (status === -2)
      throw new LeaderboardFullError(
        `Leaderboard "${this.name}" has taken ${SEQUENCE - 1} first-come submissions in period "${period.id}"; reset it, or use ties: 'shared'`,
      );
    return { member, score: this.decode(stored!), rank: rank < 0 ? null : rank };
  }

  /** Adds `by` to the member's score (a new member starts from 0). */
  async increment(member: string, by: number): Promise<LeaderboardEntry> {
    return this.submit(member, by, { mode: 'increment' });
  }

  /** The member's 1-based rank, or null when it is not on the board. */
  async rank(member: string): Promise<number | null> {
    checkMember(member);
    const [key] = this.keysOf(this.period());
    if (this.options.ties === 'shared') {
      // A shared rank counts the better scores: the read script's ZSCORE and ZCOUNT, answering a number.
      const rank = await this.outage.guard(
        readScript.run<number>(this.redis, [key], [this.options.order, this.options.ties, 'rank', member]),
      );
      return rank < 0 ? null : rank;
    }
    // First-come ranks are positions: one command.
    const position = await this.outage.guard(
      this.options.order === 'desc' ? this.redis.zrevrank(key, member) : this.redis.zrank(key, member),
    );
    return position === null ? null : position + 1;
  }

  /** The member's score, or null when it is not on the board. */
  async score(member: string): Promise<number | null> {
    checkMember(member);
    const stored = await this.outage.guard(this.redis.zscore(this.keysOf(this.period())[0], member));
    return stored === null ? null : this.decode(stored);
  }

  /** The member's score and rank, or null when it is not on the board. */
  async entry(member: string): Promise<LeaderboardEntry | null> {
    checkMember(member);
    const [entry] = await this.read('entry', member);
    return entry ?? null;
  }

  /** The best `n` entries. */
  async top(n: number): Promise<LeaderboardEntry[]> {
    checkCount(n, 'n');
    return this.read('range', 0, n - 1);
  }

  /**
   * Page `page` (1-based) of `size` entries.
   * @example
   * await board.page(2, 20); // ranks 21 to 40
   */
  async page(page: number, size: number): Promise<LeaderboardEntry[]> {
    checkCount(page, 'page');
    checkCount(size, 'size');
    if (page * size > Number.MAX_SAFE_INTEGER)
      throw new InvalidOptionError('page', `a page whose last entry is at most ${Number.MAX_SAFE_INTEGER}`, page);
    return this.read('range', (page - 1) * size, page * size - 1);
  }

  /**
   * The member and up to `radius` entries on each side: `2 * radius + 1` entries when the board
   * has them, shifted inwards at the top or bottom. Empty when the member is not on the board.
   * With `ties: 'shared'`, entries of one score are listed in Redis's order (by member; reversed
   * on a 'desc' board).
   */
  async around(member: string, radius: number): Promise<LeaderboardEntry[]> {
    checkMember(member);
    if (!Number.isSafeInteger(radius) || radius < 0) throw new InvalidOptionError('radius', 'an integer of at least 0', radius);
    return this.read('around', member, radius);
  }

  /** Takes the member off the board. Resolves with whether it was on it. */
  async remove(member: string): Promise<boolean> {
    checkMember(member);
    return (await this.outage.guard(this.redis.zrem(this.keysOf(this.writablePeriod())[0], member))) === 1;
  }

  /** How many members are on the board. */
  async count(): Promise<number> {
    return this.outage.guard(this.redis.zcard(this.keysOf(this.period())[0]));
  }

  /** Empties the board (the current period's, for a periodic board). */
  async reset(): Promise<void> {
    await this.outage.guard(this.redis.del(...this.keysOf(this.writablePeriod())));
  }

  /**
   * The board of the period that contained `date` (for periodic boards; the same board for
   * `period: 'all'`). Past periods are readable for `retain` periods after they end, and can be
   * written until then (to correct a result); later, writes throw.
   * @example
   * const lastWeek = board.at(new Date(Date.now() - 7 * 86_400_000));
   */
  at(date: Date | number): Leaderboard {
    const instant = typeof date === 'number' ? date : date?.getTime?.();
    if (typeof instant !== 'number' || !Number.isFinite(instant))
      throw new InvalidOptionError('date', 'a Date or ms since the epoch', date);
    return new Leaderboard(this.name, this.redis, this.keys, this.options, this.outage, boardPeriodAt(instant, this.options));
  }

  /** The id of the period this board reads and writes now (`all`, `d:2026-11-25`, `w:2026-11-23`, `m:2026-11`). */
  get periodId(): string {
    return this.period().id;
  }

  /** Rows of the read script, ranked from the first row's rank (see leaderboard-read.lua). */
  private async read(op: 'range' | 'around' | 'entry', ...args: (string | number)[]): Promise<LeaderboardEntry[]> {
    const [first, firstRank, rows] = await this.outage.guard(
      readScript.run<[number, number, string[]]>(
        this.redis,
        [this.keysOf(this.period())[0]],
        [this.options.order, this.options.ties, op, ...args],
      ),
    );
    const entries: LeaderboardEntry[] = [];
    const shared = this.options.ties === 'shared';
    for (let i = 0, rank = firstRank; i < rows.length; i += 2) {
      // A row ranks by its position, unless it shares the score (and so the rank) of the row before.
      if (i > 0 && !(shared && rows[i + 1] === rows[i - 1])) rank = first + i / 2 + 1;
      entries.push({ member: rows[i], score: this.decode(rows[i + 1]), rank });
    }
    return entries;
  }

  private period(): Period {
    if (this.fixedPeriod) return this.fixedPeriod;
    return this.options.period === 'all' ? ALL_TIME : boardPeriodAt(this.now(), this.options);
  }

  /** The period to write to: a past one (from `at`) only while it is retained. */
  private writablePeriod(): Period {
    const period = this.period();
    assertRetained(period, this.now(), 'date', `board "${this.name}"`, this.options.retain);
    return period;
  }

  private now(): number {
    const now = this.options.clock();
    if (!Number.isFinite(now))
      throw new InvalidOptionError(`leaderboard "${this.name}".clock`, 'a function returning ms since the epoch', now);
    return now;
  }

  /**
   * The board's sorted set and its sequence, in one slot per board and period. Order and ties
   * are part of the key, as they decide how scores are stored: a board opened with other ones
   * is another board, never a misread one.
   */
  private keysOf(period: Period): [string, string] {
    if (this.lastKeys?.periodId !== period.id) {
      const encoding = `${this.options.order}-${this.options.ties}`;
      this.lastKeys = {
        periodId: period.id,
        keys: [this.keys.tagged(['lb', this.name, period.id], encoding), this.keys.tagged(['lb', this.name, period.id], encoding, 'seq')],
      };
    }
    return this.lastKeys.keys;
  }

  private decode(stored: string): number {
    const value = Number(stored);
    return this.options.ties === 'first-come' ? Math.floor(value / SEQUENCE) : value;
  }

  private checkScore(score: number, argument: string): void {
    if (typeof score !== 'number' || !Number.isFinite(score)) throw new InvalidOptionError(argument, 'a finite number', score);
    if (this.options.ties === 'first-come' && (!Number.isInteger(score) || Math.abs(score) > MAX_FIRST_COME_SCORE)) {
      throw new InvalidOptionError(
        argument,
        `an integer within ±${MAX_FIRST_COME_SCORE} (with ties: 'first-come'; use ties: 'shared' for fractions)`,
        score,
      );
    }
  }
}

function checkMember(member: unknown): asserts member is string {
  toMemberArgument('member', member, MAX_MEMBER_BYTES);
}

function checkCount(value: unknown, argument: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new InvalidOptionError(argument, 'a positive integer', value);
}
