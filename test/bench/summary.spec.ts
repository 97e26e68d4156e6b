import { describe, expect, it } from 'vitest';
import { kindOf, markdownSummary, svgChart, type RatioRow } from '../../bench/summary.js';

const rows: RatioRow[] = [
  { group: 'session read', name: 'SessionService.get', concurrency: 1, ratio: 0.8 },
  { group: 'session read', name: 'SessionService.get', concurrency: 64, ratio: 0.6 },
  { group: 'session read', name: 'connect-redis 8 RedisStore.get', concurrency: 1, ratio: 0.99 },
  { group: 'session read', name: 'connect-redis 8 RedisStore.get', concurrency: 64, ratio: 0.95 },
  { group: 'session read', name: 'bentocache stand-in', concurrency: 64, ratio: 0.5 },
  { group: 'geo', name: 'GeoIndex.near', concurrency: 64, ratio: 3.5 },
  { group: 'geo', name: 'raw GEOSEARCH <x>', concurrency: 64, ratio: 1 },
];

describe('bench summary', () => {
  it("tells ours from the peers' rows and the hand-written ones by the names the scenarios use", () => {
    expect(
      ['redlock v5 acquire', '@nestjs/throttler ThrottlerGuard', 'BullMQ 6 Queue + Worker', 'rate-limiter-flexible 11'].map(kindOf),
    ).toEqual(['peer', 'peer', 'peer', 'peer']);
    expect(kindOf('raw ioredis GET (nil) + SET PX')).toBe('raw');
    expect(kindOf('LockService.using (autoExtend on)')).toBe('ours');
    expect(kindOf('cache-manager 7 + RedisKeyvStore get')).toBe('ours');
    expect(kindOf('cache-manager 7 + @keyv/redis get')).toBe('peer');
    expect(kindOf('@nest-lab/throttler-storage-redis increment')).toBe('peer');
    expect(kindOf('ThrottlerGuard + RedisThrottlerStorage')).toBe('ours');
  });

  it('puts the best peer of the group (at the highest concurrency) beside each row of ours, and none where the group has none', () => {
    expect(markdownSummary(rows).split('\n')).toEqual([
      '| group | ours | c=1 | c=64 | best peer in the same run | c=1 | c=64 |',
      '|---|---|---|---|---|---|---|',
      '| session read | `SessionService.get` | 0.80x | 0.60x | connect-redis 8 RedisStore.get | 0.99x | 0.95x |',
      '| geo | `GeoIndex.near` |  | 3.50x | (none) |  |  |',
    ]);
  });

  it('charts only groups with a peer, cuts bars beyond 2x with a mark, and escapes names', () => {
    const svg = svgChart([...rows, { group: 'session read', name: 'a <fast> one', concurrency: 64, ratio: 7.25 }]);
    expect(svg).toContain('>session read</text>');
    expect(svg).not.toContain('GeoIndex.near');
    expect(svg).toContain('a &lt;fast&gt; one');
    expect(svg).toContain('7.25x ›');
    expect(svg.match(/<rect [^>]*fill="#2563eb"/g)).toHaveLength(2);
  });
});
