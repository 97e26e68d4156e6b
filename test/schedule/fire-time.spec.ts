import { CronTime } from 'cron';
import { describe, expect, it } from 'vitest';
import { fireAt } from '../../lib/schedule/schedule.fire-time.js';

const at = (iso: string) => Date.parse(iso);

describe('the scheduled instant a timer belongs to', () => {
  it('a cron expression: the latest date at or before now, in the job time zone, however late the timer', () => {
    const nightly = { cron: new CronTime('0 0 3 * * *', 'Europe/Paris') };
    expect(fireAt(nightly, at('2026-07-01T01:00:00.000Z'))).toBe(at('2026-07-01T01:00:00.000Z')); // 03:00 in Paris (summer)
    expect(fireAt(nightly, at('2026-07-01T01:00:04.321Z'))).toBe(at('2026-07-01T01:00:00.000Z')); // a late timer
    expect(fireAt(nightly, at('2026-07-02T00:59:00.000Z'))).toBe(at('2026-07-01T01:00:00.000Z')); // the day after, before 03:00
    expect(fireAt(nightly, at('2026-01-15T02:00:00.000Z'))).toBe(at('2026-01-15T02:00:00.000Z')); // 03:00 in Paris (winter)
    expect(fireAt(nightly, at('2026-07-01T00:59:59.950Z'))).toBe(at('2026-07-01T01:00:00.000Z')); // a clock a little behind
  });

  it('a fixed UTC offset, a yearly expression, and one that fires every second', () => {
    expect(fireAt({ cron: new CronTime('0 30 9 * * *', null, 330) }, at('2026-03-01T05:00:01Z'))).toBe(at('2026-03-01T04:00:00Z'));
    expect(fireAt({ cron: new CronTime('0 0 0 1 1 *', 'UTC') }, at('2026-11-30T12:00:00Z'))).toBe(at('2026-01-01T00:00:00Z'));
    expect(fireAt({ cron: new CronTime('* * * * * *', 'UTC') }, at('2026-03-01T05:00:01.700Z'))).toBe(at('2026-03-01T05:00:01Z'));
  });

  it('an interval: the start of the period now falls in', () => {
    expect(fireAt({ everyMs: 60_000 }, at('2026-01-01T10:00:42Z'))).toBe(at('2026-01-01T10:00:00Z'));
    expect(fireAt({ everyMs: 60_000 }, at('2026-01-01T10:01:00Z'))).toBe(at('2026-01-01T10:01:00Z'));
  });
});
