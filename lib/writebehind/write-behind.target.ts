import { DiscoveryService } from '@nestjs/core';

/** What `@WriteBehind` leaves on a method, for the service to find its original at startup. */
export interface WriteBehindTarget {
  name: string;
  queue: string;
  /** The method as written: what the persisting worker runs. */
  original: (...args: unknown[]) => unknown;
}

/** The discoverable decorator behind `@WriteBehind`. */
export const WRITE_BEHIND = DiscoveryService.createDecorator<WriteBehindTarget>();

/** The queue write-behind jobs go to unless `queue` names another. */
export const DEFAULT_WRITE_BEHIND_QUEUE = 'write-behind';
