import { DecoratedMethodsExplorer } from '../core/decorated-methods.explorer.js';
import { defineFeature } from '../core/feature.js';
import { LOCK_OPTIONS, type LockOptions } from './lock.options.js';
import { resolveLockOptions, type ResolvedLockOptions } from './lock.options-validator.js';
import { LockService } from './lock.service.js';

/**
 * Locks: `LockService` and `@WithLock`, with the `lock` section (whose Redlock connections must
 * be among the module's). Lock keys must not be evicted: the app uses them when it has a `lock`
 * section or a `@WithLock` method.
 */
export const lockFeature = defineFeature({
  name: 'locks',
  section: {
    name: 'lock',
    token: LOCK_OPTIONS,
    resolve: (given: LockOptions | undefined, core) => resolveLockOptions(given, [...core.connections.keys()]),
  },
  providers: [LockService],
  exports: [LockService],
  // An evicted lock key breaks exclusion; an evicted fence key resets the tokens; an evicted queue loses its order.
  keys: {
    durability: 'durable',
    inUse: (ref) => ref.get<ResolvedLockOptions>(LOCK_OPTIONS).configured || ref.get(DecoratedMethodsExplorer).usesService(LockService),
  },
  keySegments: ['lock', 'fence', 'rwlock', 'lock-queue', 'lock-heartbeat', 'sem'],
});
