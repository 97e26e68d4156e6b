import { BadRequestException, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { InjectActivityTracker, InvalidOptionError, type ActivityTracker, type RetentionReport } from '../lib/index.js';

const DAY_MS = 86_400_000;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** A day given as `YYYY-MM-DD` (UTC noon of it), or today; anything else is a 400. */
function dayOf(day: string | undefined, name: string): number {
  if (day === undefined) return Date.now();
  const at = DATE.test(day) ? Date.parse(`${day}T12:00:00Z`) : Number.NaN;
  if (Number.isNaN(at)) throw new BadRequestException(`${name} must be a date as YYYY-MM-DD`);
  return at;
}

/** Bad ids or days are the caller's: 400 with what was wrong (Redis down answers 503 by itself). */
async function asBadRequest<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new BadRequestException(error.message);
    throw error;
  }
}

/**
 * Daily actives and retention (activity bitmaps): one bit per user per day, exact counts.
 * `curl -X POST http://127.0.0.1:3000/activity/ann` marks ann active today (`?day=2026-12-01` for
 * another retained day), `GET /activity/daily` counts the last 7 days, and
 * `GET /activity/retention?cohort=2026-11-28` says who came back 1 to 7 days later.
 */
@Controller('activity')
export class ActivityController {
  constructor(@InjectActivityTracker('users') private readonly users: ActivityTracker) {}

  @Post(':userId')
  @HttpCode(200)
  async mark(@Param('userId') userId: string, @Query('day') day?: string): Promise<{ newThatDay: boolean }> {
    const at = dayOf(day, 'day');
    return { newThatDay: await asBadRequest(() => this.users.mark(userId, at)) };
  }

  /** Actives of each of the last 7 days (oldest first), of the week (any day) and of every day. */
  @Get('daily')
  async daily(): Promise<{ days: { day: string; active: number }[]; weeklyActives: number; everyDay: number }> {
    const now = Date.now();
    const days = Array.from({ length: 7 }, (_, i) => now - (6 - i) * DAY_MS);
    const counts = await Promise.all(days.map((at) => this.users.count(at)));
    const [weeklyActives, everyDay] = await Promise.all([this.users.countAny(days), this.users.countAll(days)]);
    return { days: days.map((at, i) => ({ day: new Date(at).toISOString().slice(0, 10), active: counts[i] })), weeklyActives, everyDay };
  }

  /** Of the users active on `cohort` (7 days ago by default), how many came back 1 to 7 days later. */
  @Get('retention')
  async retention(@Query('cohort') cohort?: string): Promise<RetentionReport> {
    const at = cohort === undefined ? Date.now() - 7 * DAY_MS : dayOf(cohort, 'cohort');
    return asBadRequest(() => this.users.retention(at, [1, 2, 3, 4, 5, 6, 7]));
  }
}
