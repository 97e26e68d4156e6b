import { Inject } from '@nestjs/common';

/** The injection token of the board registered as `name` under `leaderboards` in the module options. */
export function getLeaderboardToken(name: string): string {
  return `RedisPatterns:Leaderboard:${name}`;
}

/**
 * Injects a board registered under `leaderboards` in the module options.
 * @example
 * constructor(@InjectLeaderboard('weekly') private readonly weekly: Leaderboard) {}
 */
export function InjectLeaderboard(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getLeaderboardToken(name));
}
