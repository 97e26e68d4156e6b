import { InvalidOptionError, RedisPatternsError } from '../core/errors.js';
import { wrapMethod, type TypedMethodDecorator } from '../core/method-wrapper.js';
import { LockNotAcquiredError } from './lock.exception.js';
import type { WithLockOptions } from './lock.options.js';
import { LockService } from './lock.service.js';
import { resolveAcquireOptions } from './lock.options-validator.js';

/**
 * Runs the method holding a distributed lock, renewed every ttl/3 while it runs (unless
 * `autoExtend: false`) and released when it ends. Inside, `LockService.current()` is the lock
 * (for its `fencingToken` and `signal`). When the lock is busy the call throws
 * `LockNotAcquiredError` (HTTP 409 on a controller), or with `onBusy: 'skip'` is not run and
 * returns undefined. Redis unreachable always throws (reason `'store-unavailable'`): the method
 * never runs unlocked. Any other error of Redis (a lock key holding another type) is thrown as it is. The decorated method returns a Promise; `this` and its metadata are kept.
 * With `mode: 'read'` or `'write'`, the method holds that side of the read-write lock on its one
 * key (`LockService.readWrite`) instead of a plain lock.
 *
 * @example
 * @WithLock<[string]>({ key: (orderId) => `order:${orderId}`, wait: '5s' })
 * async pay(orderId: string) { ... }
 *
 * @Cron('0 3 * * *')
 * @WithLock({ key: 'nightly-report', ttl: '1m', onBusy: 'skip' })
 * async nightlyReport() { ... }
 *
 * @WithLock<[string]>({ key: (name) => `config:${name}`, mode: 'read', wait: '2s' })
 * async readConfig(name: string) { ... }
 */
export function WithLock<A extends unknown[] = never[]>(options: WithLockOptions<A>): TypedMethodDecorator<A> {
  return (target, propertyKey, descriptor) => {
    const where = `@WithLock on ${(target as { constructor: { name: string } }).constructor.name}.${String(propertyKey)}`;
    const { key, onBusy = 'throw', mode } = options ?? ({} as WithLockOptions<A>);
    if (typeof key !== 'string' && typeof key !== 'function' && !Array.isArray(key))
      throw new InvalidOptionError(`${where}.key`, 'a string, an array of strings, or a function of the arguments', key);
    if (onBusy !== 'throw' && onBusy !== 'skip') throw new InvalidOptionError(`${where}.onBusy`, "'throw' or 'skip'", onBusy);
    if (mode !== undefined && mode !== 'read' && mode !== 'write') throw new InvalidOptionError(`${where}.mode`, "'read' or 'write'", mode);
    if (mode !== undefined && Array.isArray(key)) throw new InvalidOptionError(`${where}.key`, 'one key with a mode', key);
    // Durations are checked now against the defaults' shape; the module's defaults apply at the call.
    resolveAcquireOptions(options, { ttlMs: 1, waitMs: 0 }, true, where, ['ttl', 'wait', 'autoExtend', 'fair', 'key', 'onBusy', 'mode']);
    return wrapMethod('WithLock', LockService, target, propertyKey, descriptor, async (locks, call, args) => {
      const keys = lockKeysOf(key, args as A, where);
      let lock;
      try {
        const resolved = locks.acquireOptions(options, where);
        lock = await (mode ? locks.readWrite(keys as string)[mode].take(resolved) : locks.take(keys, resolved));
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
