import { defineFeature } from '../core/feature.js';
import { getLeaderboardToken } from './leaderboard.decorator.js';
import type { LeaderboardOptions } from './leaderboard.options.js';
import { LeaderboardService } from './leaderboard.service.js';

/** Leaderboards: `LeaderboardService`, and boards declared by name under `leaderboards` for `@InjectLeaderboard`. Their keys must not be evicted. */
export const leaderboardFeature = defineFeature({
  name: 'leaderboards',
  providers: [LeaderboardService],
  exports: [LeaderboardService],
  named: {
    extra: 'leaderboards',
    provider: (name, options: LeaderboardOptions) => ({
      provide: getLeaderboardToken(name),
      inject: [LeaderboardService],
      useFactory: (boards: LeaderboardService) => boards.board(name, options),
    }),
  },
  keys: { durability: 'durable', inUse: (ref) => ref.get(LeaderboardService).inUse },
  keySegments: ['lb'],
});
