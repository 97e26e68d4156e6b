import { Inject } from '@nestjs/common';

/** The injection token of the tracker declared as `name` under `activity` in the module options. */
export function getActivityTrackerToken(name: string): string {
  return `RedisPatterns:ActivityTracker:${name}`;
}

/**
 * Injects a tracker declared under `activity` in the module options.
 * @example
 * constructor(@InjectActivityTracker('users') private readonly users: ActivityTracker) {}
 */
export function InjectActivityTracker(name: string): ParameterDecorator & PropertyDecorator {
  return Inject(getActivityTrackerToken(name));
}
