import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { wrapMethod } from '../core/method-wrapper.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { WithLockOptions } from './lock.options.js';
import { LockService, noteWithLock } from './lock.service.js';
import { resolveAcquireOptions } from './lock.options-validator.js';

/**
 * Runs the method holding a distributed lock, renewed every ttl/3 while it runs (unless
 * `autoExtend: false`) and released when it ends. Inside, `LockService.current()` is the lock
 * (for its `fencingToken` and `signal`). When the lock is busy the call throws
 * `LockNotAcquiredError` (HTTP 409 on a controller), or with `onBusy: 'skip'` is not run and
 * returns undefined. Redis unreachable always throws (reason `'store-unavailable'`): the method
 * never runs unlocked. The decorated method returns a Promise; `this` and its metadata are kept.
 *
 * @example
 * @WithLock<[string]>({ key: (orderId) => `order:${orderId}`, wait: '5s' })
 * async pay(orderId: string) { ... }
 *
 * @Cron('0 3 * * *')
 * @WithLock({ key: 'nightly-report', ttl: '1m', onBusy: 'skip' })
 * async nightlyReport() { ... }
 */
export function WithLock<A extends unknown[] = unknown[]>(options: WithLockOptions<A>): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const where = `@WithLock on ${(target as { constructor: { name: string } }).constructor.name}.${String(propertyKey)}`;
    const { key, onBusy = 'throw' } = options ?? ({} as WithLockOptions<A>);
    if (typeof key !== 'string' && typeof key !== 'function' && !Array.isArray(key)) throw new InvalidOptionError(`${where}.key`, 'a string, an array of strings, or a function of the arguments', key);
    if (onBusy !== 'throw' && onBusy !== 'skip') throw new InvalidOptionError(`${where}.onBusy`, "'throw' or 'skip'", onBusy);
    // Durations are checked now against the defaults' shape; the module's defaults apply at the call.
    resolveAcquireOptions(options, { configured: false, ttlMs: 1, waitMs: 0, retry: { minDelayMs: 1, maxDelayMs: 1 }, redlock: undefined }, true, where, ['ttl', 'wait', 'autoExtend', 'key', 'onBusy']);
    noteWithLock();
    return wrapMethod('WithLock', LockService, target, propertyKey, descriptor, async (locks, call, args) => {
      const keys = lockKeysOf(key, args as A, where);
      let lock;
      try {
        lock = await locks.take(keys, locks.acquireOptions(options, where));
      } catch (error) {
        if (onBusy === 'skip' && error instanceof LockNotAcquiredError && error.reason !== 'store-unavailable') return undefined;
        throw error;
      }
      return locks.runHolding(lock, call);
    });
  };
}

function lockKeysOf<A extends unknown[]>(key: WithLockOptions<A>['key'], args: A, where: string): string | readonly string[] {
  if (typeof key !== 'function') return key;
  try {
    return key(...args);
  } catch (error) {
    throw new RedisPatternsError(`${where}: the key function threw: ${(error as Error)?.message ?? error}`, { cause: error });
  }
}
