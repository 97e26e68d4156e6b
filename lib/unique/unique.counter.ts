import { assertRetained, periodsBetween, retained, retainedPeriodAt, toInstant } from '../core/calendar.js';
import { InvalidOptionError } from '../core/errors.js';
import type { RedisKeys } from '../core/keys.js';
import type { OutageLog } from '../core/outage-log.js';
import type { RedisClient } from '../core/redis-client.js';
import { RedisScript } from '../core/redis-script.js';
import { toTextArgument } from '../core/validation.js';
import type { PeriodRange } from './unique.options.js';
import type { ResolvedUniqueCounterOptions } from './unique.options-validator.js';

const addScript = RedisScript.fromFile(new URL('./unique-add.lua', import.meta.url));
const mergeScript = RedisScript.fromFile(new URL('./unique-merge.lua', import.meta.url));

/** How many items one PFADD carries. */
const ADD_CHUNK = 1_000;
/** The longest item and roll-up name, in characters. */
const MAX_ITEM_LENGTH = 1_024;

/** A period of a counter: its key's id, and when the key expires (never for `period: 'none'`). */
interface CounterPeriod {
  id: string;
  expiresAt?: number;
}

const ALL_TIME: CounterPeriod = { id: 'all' };

/**
 * Counts distinct items (visitors, searches, devices) in about 12 KB per period, whatever their
 * number, with a standard error of 0.81% (a Redis HyperLogLog per period). All keys of a counter
 * share a hash tag, so a range of periods is counted in one command on a Cluster too.
 *
 * @example
 * await visitors.add(userId);                                    // today's period
 * const today = await visitors.count();
 * const week = await visitors.count({ from: Date.now() - 6 * 86_400_000, to: Date.now() }); // the union of 7 days
 */
export class UniqueCounter {
  constructor(
    /** The counter's name, as given to `counter(name)`. */
    readonly name: string,
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: ResolvedUniqueCounterOptions,
    private readonly outage: OutageLog,
  ) {}

  /**
   * Adds one item or many (a thousand per command) to the period containing `at` (now by
   * default). Resolves true when the estimate changed (some item was new, probably). A past
   * period can be written while it is retained; an older one is refused.
   * @example
   * await searches.add(normalizedQuery);
   * await visitors.add(['u1', 'u2'], new Date('2026-12-01T10:00:00Z'));
   */
  async add(items: string | readonly string[], at?: Date | number): Promise<boolean> {
    const list = typeof items === 'string' ? [items] : items;
    if (!Array.isArray(list)) throw new InvalidOptionError('items', 'a string or an array of strings', items);
    list.forEach((item, index) => checkText(`items[${index}]`, item));
    const period = this.writablePeriod(at === undefined ? this.now() : toInstant('at', at));
    const key = this.keyOf(period);
    let changed = false;
    for (let from = 0; from < list.length; from += ADD_CHUNK) {
      const chunk = list.slice(from, from + ADD_CHUNK);
      const reply = await this.outage.guard(addScript.run<number>(this.redis, [key], [period.expiresAt ?? '', ...chunk]));
      changed ||= reply === 1;
    }
    return changed;
  }

  /**
   * The estimated number of distinct items in the period containing `at` (now by default), or in
   * the union of a range of periods (one PFCOUNT over their keys; at most `retain + 1` periods,
   * all a counter keeps). Expired periods count nothing.
   * @example
   * await visitors.count();                                         // this period
   * await visitors.count(new Date('2026-12-01'));                   // the period of that day
   * await visitors.count({ from: new Date('2026-12-01'), to: new Date('2026-12-07') });
   */
  async count(at?: Date | number | PeriodRange): Promise<number> {
    return this.outage.guard(this.redis.pfcount(...this.keysFor(at)));
  }

  /**
   * Stores the union of a range of periods as a roll-up called `as` (replacing one of that name),
   * and resolves with its count. The roll-up expires with the newest period it holds; read it
   * again with {@link rollup}.
   * @example
   * await visitors.merge({ from: weekStart, to: weekEnd }, 'week-49');
   * await visitors.rollup('week-49');
   */
  async merge(range: PeriodRange, as: string): Promise<number> {
    checkText('as', as);
    const periods = this.rangeOf(range);
    const expiresAt = periods[periods.length - 1].expiresAt ?? '';
    return this.outage.guard(mergeScript.run<number>(this.redis, [this.rollupKey(as), ...periods.map((p) => this.keyOf(p))], [expiresAt]));
  }

  /** The count of the roll-up called `as` ({@link merge}); 0 once it expired, or when there is none. */
  async rollup(as: string): Promise<number> {
    checkText('as', as);
    return this.outage.guard(this.redis.pfcount(this.rollupKey(as)));
  }

  /** The id of the period that `add` writes now (`all`, `h:2026-12-05T13:00Z`, `d:2026-12-05`, `w:2026-11-30`, `m:2026-12`). */
  get periodId(): string {
    return this.periodOf(this.now()).id;
  }

  /** The keys that `count(at)` reads. */
  private keysFor(at: Date | number | PeriodRange | undefined): string[] {
    if (at === undefined) return [this.keyOf(this.periodOf(this.now()))];
    if (typeof at === 'object' && !(at instanceof Date)) return this.rangeOf(at).map((period) => this.keyOf(period));
    return [this.keyOf(this.periodOf(toInstant('at', at)))];
  }

  private rangeOf(range: PeriodRange): CounterPeriod[] {
    if (typeof range !== 'object' || range === null) throw new InvalidOptionError('range', '{ from, to }', range);
    const { calendar, retain } = this.options;
    if (!calendar) throw new InvalidOptionError('range', `a single time: counter "${this.name}" has period: 'none'`, range);
    const from = toInstant('range.from', range.from);
    const to = toInstant('range.to', range.to);
    return periodsBetween(from, to, calendar, retain + 1, 'range').map((period) => retained(period, retain, calendar));
  }

  private periodOf(instant: number): CounterPeriod {
    const { calendar, retain } = this.options;
    return calendar ? retainedPeriodAt(instant, retain, calendar) : ALL_TIME;
  }

  /** The period to add to: a past one only while it is retained. */
  private writablePeriod(instant: number): CounterPeriod {
    const period = this.periodOf(instant);
    assertRetained(period, this.now(), 'at', `counter "${this.name}"`, this.options.retain);
    return period;
  }

  private keyOf(period: CounterPeriod): string {
    return this.keys.tagged(['uc', this.name], period.id);
  }

  private rollupKey(as: string): string {
    return this.keys.tagged(['uc', this.name], 'rollup', as);
  }

  private now(): number {
    const now = this.options.clock();
    if (!Number.isFinite(now))
      throw new InvalidOptionError(`uniqueCounters.${this.name}.clock`, 'a function returning ms since the epoch', now);
    return now;
  }
}

function checkText(argument: string, value: unknown): void {
  const text = toTextArgument(argument, value);
  if (text.length === 0 || text.length > MAX_ITEM_LENGTH)
    throw new InvalidOptionError(argument, `a string of 1 to ${MAX_ITEM_LENGTH} characters`, text.slice(0, 40));
}
