import { BadRequestException, Controller, Get, Headers, Param } from '@nestjs/common';
import { CountUnique, InjectUniqueCounter, UniqueCounterService, type UniqueCounter } from '../lib/index.js';

const DAY_MS = 86_400_000;
const SLUG = /^[a-z0-9-]{1,64}$/;

/**
 * Unique visitors (HyperLogLog): per page per day and over the last 7 days, with a counter per
 * page made on demand, and site-wide per day with `@CountUnique` on a declared counter. The
 * visitor is whoever the `x-visitor` header names (a real app would take a user id or a cookie).
 */
@Controller('pages')
export class PagesController {
  constructor(
    private readonly uniques: UniqueCounterService,
    @InjectUniqueCounter('site-visitors') private readonly siteVisitors: UniqueCounter,
  ) {}

  /** `curl -H 'x-visitor: ann' http://127.0.0.1:3000/pages/home`: counts ann once a day on this page and on the site. */
  @Get(':slug')
  @CountUnique<[string, string | undefined]>('site-visitors', { by: (_slug, visitor) => visitor })
  async view(
    @Param('slug') slug: string,
    @Headers('x-visitor') visitor: string | undefined,
  ): Promise<{ page: string; today: number; last7Days: number }> {
    if (!SLUG.test(slug)) throw new BadRequestException('slug must be 1 to 64 of a-z, 0-9 and -');
    if (!visitor) throw new BadRequestException('the x-visitor header is required');
    const page = this.uniques.counter(`page:${slug}`, { period: 'day', retain: 6 });
    await page.add(visitor);
    const now = Date.now();
    const [today, last7Days] = await Promise.all([page.count(), page.count({ from: now - 6 * DAY_MS, to: now })]);
    return { page: slug, today, last7Days };
  }

  /** Distinct visitors of the whole site today. */
  @Get()
  async site(): Promise<{ today: number }> {
    return { today: await this.siteVisitors.count() };
  }
}
