import { DiscoveryService } from '@nestjs/core';
import type { OncePerFireOptions } from './schedule.options.js';

/** What `@OncePerFire` records of a method: where it is (for errors), its options, the method before and after wrapping. */
export interface OncePerFireTarget {
  where: string;
  options: OncePerFireOptions;
  /** The method as it runs unclaimed (for a catch-up at startup, already claimed). */
  original: (...args: unknown[]) => unknown;
  /** The method as @nestjs/schedule calls it: it carries the `@Cron` / `@Interval` metadata. */
  wrapped: object;
}

/** The discoverable decorator behind `@OncePerFire`, for the explorer. */
export const ONCE_PER_FIRE = DiscoveryService.createDecorator<OncePerFireTarget>();

/** The metadata keys of @nestjs/schedule's decorators (stable strings: read without importing it). */
export const SCHEDULE_METADATA = {
  name: 'SCHEDULER_NAME',
  cron: 'SCHEDULE_CRON_OPTIONS',
  interval: 'SCHEDULE_INTERVAL_OPTIONS',
} as const;

/** What the explorer found of a `@OncePerFire` method, from @nestjs/schedule's metadata. */
export type ScheduledMethod = { name: string | undefined; cron: boolean; intervalMs: number | undefined };

/** Reads the `@Cron` / `@Interval` metadata of a method. */
export function scheduledMethodOf(method: object): ScheduledMethod {
  const name = Reflect.getMetadata(SCHEDULE_METADATA.name, method) as string | undefined;
  const interval = Reflect.getMetadata(SCHEDULE_METADATA.interval, method) as { timeout?: number } | undefined;
  return { name, cron: Reflect.getMetadata(SCHEDULE_METADATA.cron, method) !== undefined, intervalMs: interval?.timeout };
}
