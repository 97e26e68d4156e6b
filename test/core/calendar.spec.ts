import { describe, expect, it } from 'vitest';
import { periodAt, periodsBetween, retained, type CalendarOptions } from '../../lib/core/calendar.js';

// Paris moves to summer time on Sunday 2026-03-29 at 01:00 UTC: that day is 23 hours long.
const days: CalendarOptions = { unit: 'day', timeZone: 'Europe/Paris', weekStart: 1 };
const hours: CalendarOptions = { unit: 'hour', timeZone: 'Europe/Paris', weekStart: 1 };

describe('calendar periods', () => {
  it('cuts days at local midnight across a DST change', () => {
    const week = periodsBetween(Date.UTC(2026, 2, 27, 12), Date.UTC(2026, 2, 30, 12), days, 8, 'range');
    expect(week).toEqual([
      { id: 'd:2026-03-27', start: Date.UTC(2026, 2, 26, 23) },
      { id: 'd:2026-03-28', start: Date.UTC(2026, 2, 27, 23) },
      { id: 'd:2026-03-29', start: Date.UTC(2026, 2, 28, 23) },
      { id: 'd:2026-03-30', start: Date.UTC(2026, 2, 29, 22) },
    ]);
  });

  it('keeps a period until `retain` periods after it end, for each retain asked of the same period', () => {
    const saturday = periodAt(Date.UTC(2026, 2, 28, 12), days);
    for (let round = 0; round < 2; round++) {
      expect(retained(saturday, 0, days)).toEqual({
        id: 'd:2026-03-28',
        start: Date.UTC(2026, 2, 27, 23),
        expiresAt: Date.UTC(2026, 2, 28, 23),
      });
      expect(retained(saturday, 1, days).expiresAt).toBe(Date.UTC(2026, 2, 29, 22));
      expect(retained(periodAt(Date.UTC(2026, 2, 28, 12), days), 7, days).expiresAt).toBe(Date.UTC(2026, 3, 4, 22));
    }
    const hour = periodAt(Date.UTC(2026, 2, 28, 12, 30), hours);
    expect(retained(hour, 2, hours)).toEqual({
      id: 'h:2026-03-28T12:00Z',
      start: Date.UTC(2026, 2, 28, 12),
      expiresAt: Date.UTC(2026, 2, 28, 15),
    });
  });
});
